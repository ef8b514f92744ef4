"""The SDK's public surface, and what importing it drags in."""

from __future__ import annotations

import subprocess
import sys

import grantline.rs


def test_the_public_api_is_importable_from_the_package() -> None:
    for name in grantline.rs.__all__:
        assert getattr(grantline.rs, name) is not None
    assert "GrantlineResource" in (grantline.rs.__doc__ or "")


def test_the_sdk_imports_no_storage_or_server_internals() -> None:
    code = (
        "import sys\n"
        "import grantline.rs\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlite3', "
        "'alembic', 'asyncpg', 'psycopg', 'jinja2') or m.startswith(('grantline.storage', "
        "'grantline.endpoints', 'grantline.grants', 'grantline.tokens', 'grantline.app', "
        "'grantline.audit', 'grantline.web'))]\n"
        "print(','.join(sorted(bad)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
