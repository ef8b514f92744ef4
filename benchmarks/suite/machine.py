"""What the figures were measured on: the machine, the software, the commit."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from suite.process import REPO

__all__ = ["describe", "source_digest"]


def _first(path: str, prefix: str) -> str:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def _output(*args: str) -> str:
    try:
        done = subprocess.run(
            list(args), cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return ""
    return (done.stdout or done.stderr).strip()


def source_digest(package: Path = REPO / "grantline") -> str:
    """SHA-256 over a copy of the grantline package's files (committed or not), so that two
    runs can tell whether they measured the same code."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def describe(node: str | None, oidc_version: str | None) -> dict[str, Any]:
    mem_kib = _first("/proc/meminfo", "MemTotal").split()[0]
    # Uncommitted changes under grantline/ are measured too; say so next to the commit.
    dirty = _output("git", "status", "--porcelain", "--untracked-files=all", "--", "grantline")
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "ram_gib": round(int(mem_kib) / 2**20, 1) if mem_kib.isdigit() else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _output(node, "--version") if node else None,
        "oidc_provider": oidc_version,
        "wrk": _output("wrk", "-v").splitlines()[0] if _output("wrk", "-v") else None,
        "commit": _output("git", "rev-parse", "--short", "HEAD"),
        "grantline_changes_uncommitted": bool(dirty),
        "load_average": os.getloadavg(),
    }
