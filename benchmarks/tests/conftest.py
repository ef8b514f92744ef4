"""The suite's own checks (not part of ``make test``): ``.venv/bin/pytest benchmarks/tests``."""

from __future__ import annotations

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1]
for folder in (BENCHMARKS, BENCHMARKS / "ceiling"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
