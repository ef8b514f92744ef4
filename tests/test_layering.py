"""Protocol rules stay pure: importing them pulls in no web framework and no database."""

from __future__ import annotations

import subprocess
import sys

PURE = [
    "grantline.protocol.params",
    "grantline.protocol.pkce",
    "grantline.protocol.redirect_uri",
    "grantline.protocol.scope",
    "grantline.protocol.authorization_request",
    "grantline.protocol.par",
    "grantline.protocol.metadata",
    "grantline.protocol.rar",
    "grantline.protocol.resource",
    "grantline.protocol.jose",
    "grantline.protocol.dpop",
    "grantline.protocol.client_assertion",
    "grantline.protocol.request_object",
    "grantline.policy.par",
    "grantline.consent",
]


def test_protocol_modules_import_no_framework_or_database() -> None:
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in PURE)
        + "bad = [m for m in sys.modules if m.split('.')[0] in "
        + "('starlette', 'sqlalchemy', 'sqlite3', 'alembic', 'uvicorn', 'httpx')]\n"
        + "print(','.join(sorted(bad)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
