"""``benchmarks/run.sh --profile``: where a Grantline worker spends its time on the PAR and
token paths, sampled by py-spy under wrk load, written to benchmarks/profiles/ as text.

One worker on SQLite (the process that serves is the one sampled). PAR: ``par.lua`` with
client_secret_basic. Token: ``token_refresh.lua``, each request spending its own refresh token
minted by ``mint_refresh_tokens.py``, so that every request does the whole refresh (client
authentication, rotation, an ES256 JWT, two inserts and the audit event).

py-spy is not a project dependency: ``.venv/bin/pip install py-spy`` for the run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from suite.jws import pkce_pair
from suite.process import REPO, clean_env, run_checked
from suite.scenarios import Load, Prepared, build_job
from suite.snapshot import frozen_grantline
from suite.targets import GrantlineTarget

__all__ = ["summarize_collapsed"]

PROFILES = REPO / "benchmarks" / "profiles"
VENV_BIN = REPO / ".venv" / "bin"
RATE = 200
_LINE = re.compile(r" \(([^():]+):\d+\)$")
_TOP = 35


def _frame(raw: str) -> str:
    """``handler (grantline/endpoints/par.py:42)`` -> ``handler (grantline/endpoints/par.py)``:
    one entry per function, whatever line it was on."""
    name = _LINE.sub(lambda m: f" ({_short(m.group(1))})", raw)
    return name


def _short(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def summarize_collapsed(collapsed: str, title: str) -> str:
    """Top functions by own and by cumulative share of the samples, from py-spy's raw
    (collapsed stacks) output."""
    own: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    cumulative: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        raw = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not raw:
            continue
        frames = [_frame(f) for f in raw]
        total += count
        own[frames[-1]] += count
        own_lines[_short(raw[-1])] += count
        for frame in set(frames):
            cumulative[frame] += count
    lines = [title, f"{total} samples of a busy worker (py-spy, {RATE} Hz, idle excluded)", ""]
    sections = (
        ("own time", own),
        ("own time, by line", own_lines),
        ("cumulative time", cumulative),
    )
    for heading, counter in sections:
        lines += [f"top {_TOP} by {heading}:", f"{'%':>6}  function (file)"]
        for frame, count in counter.most_common(_TOP):
            lines.append(f"{100 * count / max(total, 1):6.1f}  {frame}")
        lines.append("")
    return "\n".join(lines)


def _record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy", path=str(VENV_BIN)) or shutil.which("py-spy")
    assert py_spy is not None
    return subprocess.Popen(
        [py_spy, "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
        + ["--duration", f"{seconds:g}", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _profile(pid: int, seconds: float, wrk_args: list[str], env: dict[str, str]) -> tuple[str, str]:
    """The collapsed stacks of ``pid`` under the load, and wrk's own summary line."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.txt"
        recorder = _record(pid, seconds, out)
        time.sleep(0.5)
        load = subprocess.run(
            ["wrk", "-t2", "-c64", f"-d{seconds + 1:g}s", *wrk_args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        _, err = recorder.communicate(timeout=120)
        if recorder.returncode != 0:
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
        summary = load.stdout.strip().splitlines()[-1] if load.stdout.strip() else ""
        return out.read_text(), summary


def _write(name: str, title: str, profiled: tuple[str, str]) -> None:
    stacks, wrk_summary = profiled
    text = summarize_collapsed(stacks, title)
    (PROFILES / name).write_text(f"{text}\nwrk under py-spy: {wrk_summary}\n")


def main() -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/run.sh --profile")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    if shutil.which("py-spy", path=str(VENV_BIN)) is None and shutil.which("py-spy") is None:
        print("py-spy is needed for the run: .venv/bin/pip install py-spy", file=sys.stderr)
        return 1
    PROFILES.mkdir(exist_ok=True)
    with frozen_grantline():
        _profile_both(args.seconds)
    print(f"profiles written to {PROFILES}/par_push.txt and token_refresh.txt")
    return 0


def _profile_both(seconds: float) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="grantline-profile-"))
    target = GrantlineTarget(1)
    try:
        target.start(workdir)
        assert target.auth is not None
        load = Load(seconds, 0, 64, 1)
        prepared = Prepared(*pkce_pair())
        par = build_job("par_basic", target, prepared, load, seconds, workdir / "par")
        par_args = ["-s", f"benchmarks/lua/{par.script}", par.url]
        _write(
            "par_push.txt",
            "POST /par, client_secret_basic, 1 worker, SQLite",
            _profile(target.pid, seconds, par_args, par.env),
        )
        tokens = workdir / "refresh-tokens.txt"
        mint = [str(VENV_BIN / "python"), "benchmarks/mint_refresh_tokens.py"]
        count = str(int(seconds * 4000) + 1000)
        tokens.write_text(run_checked([*mint, str(workdir / target.key), count], env=clean_env()))
        env = clean_env(
            CLIENT_ID=target.auth.client_id,
            CLIENT_SECRET=target.auth.client_secret,
            TOKENS_FILE=str(tokens),
            WRK_THREADS="2",
        )
        token_args = ["-s", "benchmarks/token_refresh.lua", target.auth.url("/token")]
        _write(
            "token_refresh.txt",
            "POST /token, grant_type=refresh_token, 1 worker, SQLite",
            _profile(target.pid, seconds, token_args, env),
        )
    finally:
        target.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
