"""Fixtures for the ``grantline`` command-line tests; their helpers are in ``support.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.support import init_instance

#: Variables through which the caller's environment could choose or configure an instance.
GRANTLINE_ENVIRONMENT = (
    "GRANTLINE_DATA_DIR",
    "GRANTLINE_DATABASE_URL",
    "GRANTLINE_SECRET_KEY",
    "GRANTLINE_ISSUER",
    "GRANTLINE_SERVE_URL",
    # `serve` points prometheus_client at a directory; it must not outlive the test.
    "PROMETHEUS_MULTIPROC_DIR",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance comes from --data-dir alone, never from the caller's environment."""
    for name in GRANTLINE_ENVIRONMENT:
        # Setting first makes monkeypatch restore the variable (or its absence) afterwards,
        # even when a command such as `serve` sets it during the test.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh instance made by ``grantline init``."""
    return init_instance(tmp_path / "instance")
