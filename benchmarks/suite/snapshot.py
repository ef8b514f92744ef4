"""The code under measurement, frozen: a copy of grantline/ taken when the suite starts.

Several engineers change grantline/ in this working tree while a run lasts twenty minutes;
every Grantline process the suite starts (servers, CLI, the resource server) imports this
copy instead (it comes first on PYTHONPATH), so all rounds measure one version of the code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from suite.machine import source_digest
from suite.process import REPO

__all__ = ["frozen_grantline"]


@contextmanager
def frozen_grantline() -> Iterator[str]:
    """Copy grantline/ aside and put the copy first on PYTHONPATH for every child process;
    yields the copy's digest (``machine.source_digest`` of what was copied)."""
    parent = Path(tempfile.mkdtemp(prefix="grantline-measured-"))
    previous = os.environ.get("PYTHONPATH")
    try:
        shutil.copytree(
            REPO / "grantline", parent / "grantline", ignore=shutil.ignore_patterns("__pycache__")
        )
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(parent), previous]))
        yield source_digest(parent / "grantline")
    finally:
        if previous is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = previous
        shutil.rmtree(parent, ignore_errors=True)
