"""HTML pages rendered with Jinja2, autoescaped: every value a client controls is escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

__all__ = ["render"]

_ENV = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,
)

#: Pages that carry codes, request_uris or CSRF tokens must neither be cached nor leak a referrer.
PAGE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def render(template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = _ENV.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
