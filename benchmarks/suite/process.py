"""Starting and stopping one server process, with its log, on a local port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from suite import proc

__all__ = ["REPO", "ServerProcess", "clean_env", "free_port", "run_checked", "stop_on_sigterm"]

REPO = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without GRANTLINE_* (which would override an instance's own
    configuration), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    return env | extra


def run_checked(
    args: Sequence[str], *, env: Mapping[str, str], stdin: str | None = None, timeout: float = 120
) -> str:
    done = subprocess.run(
        list(args),
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return done.stdout


def stop_on_sigterm() -> None:
    """SIGTERM (and SIGINT, ignored in background jobs) unwinds like Ctrl-C, so that every
    server is stopped and any throw-away PostgreSQL database dropped."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


class ServerProcess:
    """One server: its command, its log file, and the URL that answers once it is ready."""

    def __init__(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        ready_url: str,
        cwd: Path = REPO,
        ready: Callable[[httpx.Response], bool] = lambda r: r.status_code == 200,
    ) -> None:
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.ready_url = ready_url
        self.cwd = cwd
        self.ready = ready
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with httpx.Client(timeout=2.0) as probe:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.args[0]} exited:\n{self.log_tail()}")
                try:
                    if self.ready(probe.get(self.ready_url)):
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"no answer from {self.ready_url}:\n{self.log_tail()}")
                time.sleep(0.1)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the server, then SIGKILL to whatever is left of its tree."""
        if self.process is None or self.process.poll() is not None:
            return
        tree = [(pid, proc.start_time(pid)) for pid in proc.descendants(self.process.pid)[1:]]
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)
        for pid, started in tree:
            # Only a process still the one we saw: its pid could have been reused.
            if started is not None and proc.start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
