"""Several ``grantline serve`` processes on one instance: the same data directory (so the same
``grantline.toml`` and ``secret.key``) and the same database, each on its own port.

This is how Grantline runs behind a load balancer, so the issuer is a front-door URL that none of
the processes listens on: a request may reach any of them and must be answered the same way.
Like ``support``, nothing here imports the ``grantline`` package.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.integration.support import (
    CLI_TIMEOUT,
    HTTP_TIMEOUT,
    METADATA_PATH,
    SHUTDOWN_TIMEOUT,
    STARTUP_TIMEOUT,
    CliError,
    DevCredentials,
    ServerStartError,
    clean_environment,
    free_port,
    grantline_command,
    json_lines,
)

#: The URL a load balancer in front of every process would have (loopback, so plain http is
#: allowed); no process listens on it, and nothing in a flow needs to reach it.
FRONT_DOOR_ISSUER = "http://localhost"


# -- a PostgreSQL database per test -----------------------------------------------------------


def _admin(admin_url: str, sql: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``; its URL, dropped afterwards."""
    name = f"grantline_it_{secrets.token_hex(6)}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        base, _, _ = admin_url.rpartition("/")
        yield f"{base}/{name}"
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the processes ----------------------------------------------------------------------------


@dataclass
class Node:
    """One ``grantline serve`` process of a cluster."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """``path`` (absolute, e.g. ``/token`` or ``/interaction/...``) on this process."""
        assert path.startswith("/"), path
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, then SIGKILL after SHUTDOWN_TIMEOUT; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=SHUTDOWN_TIMEOUT)
        return self.process.returncode


@dataclass
class Cluster:
    """An instance directory, the environment every process gets, and the running nodes."""

    data_dir: Path
    issuer: str
    env: dict[str, str]
    credentials: DevCredentials
    nodes: list[Node] = field(default_factory=list)

    @property
    def dev_redirect_uri(self) -> str:
        return self.issuer + "/dev/callback"

    def cli(self, *args: str) -> str:
        """``grantline WORDS... --data-dir DIR OPTIONS...`` with the cluster's environment (its
        database URL); stdout, failing on a nonzero exit."""
        words = list(args)
        split = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
        full = [*words[:split], "--data-dir", str(self.data_dir), *words[split:]]
        return run_cli_ok(full, self.env)

    def audit_events(self, lines: int = 500) -> list[dict[str, Any]]:
        """``grantline audit tail --json -n LINES``: one JSON object per event, oldest first."""
        return json_lines(self.cli("audit", "tail", "--json", "-n", str(lines)))

    def stop(self) -> list[str]:
        """Stop every node; the problems found: a traceback or an unexpected error in a log, or
        a shutdown that was not graceful."""
        problems: list[str] = []
        while self.nodes:
            node = self.nodes.pop()
            status = node.stop()
            log = node.log()
            if "Traceback" in log or "unexpected error" in log:
                problems.append(f"node {node.name} ({node.base_url}) logged an error:\n{log}")
            # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
            elif status not in (0, -signal.SIGTERM) or "Application shutdown complete" not in log:
                problems.append(
                    f"node {node.name} ({node.base_url}) did not shut down cleanly "
                    f"(status {status}):\n{log}"
                )
        return problems


def run_cli_ok(args: Sequence[str], env: Mapping[str, str]) -> str:
    done = subprocess.run(
        [*grantline_command(), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if done.returncode != 0:
        raise CliError(args, done)
    return done.stdout


def cluster_environment(database_url: str | None) -> dict[str, str]:
    """What every process of the cluster (and every CLI call) runs with."""
    env = clean_environment()
    if database_url is not None:
        env["GRANTLINE_DATABASE_URL"] = database_url
    return env


def init_cluster(data_dir: Path, database_url: str | None) -> Cluster:
    """``grantline init --dev`` with the front-door issuer, on SQLite in the data directory or,
    with ``database_url``, on that PostgreSQL database."""
    env = cluster_environment(database_url)
    out = run_cli_ok(
        ["init", "--data-dir", str(data_dir), "--issuer", FRONT_DOOR_ISSUER, "--dev"], env
    )
    assert "dev-agent" in out, out
    creds = json.loads((data_dir / "dev-credentials.json").read_text())
    return Cluster(
        data_dir=data_dir,
        issuer=FRONT_DOOR_ISSUER,
        env=env,
        credentials=DevCredentials(
            client_id=creds["client_id"],
            client_secret=creds["client_secret"],
            username=creds["username"],
            password=creds["password"],
        ),
    )


def _spawn(cluster: Cluster, name: str) -> Node:
    port = free_port()
    log_path = cluster.data_dir / f"node-{name}-{port}.log"
    # The child writes to its own copy of the descriptor; ours is closed at once.
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                *grantline_command(),
                "serve",
                "--data-dir",
                str(cluster.data_dir),
                "--port",
                str(port),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=cluster.env,
        )
    return Node(name=name, port=port, process=process, log_path=log_path)


def _answers(probe: httpx.Client, node: Node, issuer: str) -> bool:
    try:
        response = probe.get(node.url(METADATA_PATH))
        return response.status_code == 200 and response.json().get("issuer") == issuer
    except (httpx.TransportError, ValueError):
        return False


def start_nodes(cluster: Cluster, names: Sequence[str], *, attempts: int = 3) -> None:
    """Start one ``grantline serve`` per name, all at once, and wait until each answers its
    metadata with the cluster's issuer. A node that lost its port to another process (the port
    is chosen before the server binds it) is started again on a new one."""
    pending = {name: _spawn(cluster, name) for name in names}
    tries = dict.fromkeys(names, 1)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    try:
        with httpx.Client(timeout=1.0) as probe:
            while pending:
                for name, node in list(pending.items()):
                    if node.process.poll() is not None:
                        log = node.log()
                        if "address already in use" in log.lower() and tries[name] < attempts:
                            tries[name] += 1
                            pending[name] = _spawn(cluster, name)
                            continue
                        raise ServerStartError(
                            f"node {name} exited with status {node.process.returncode}", log
                        )
                    # Our process must be alive and be the one answering on the port.
                    if _answers(probe, node, cluster.issuer) and node.process.poll() is None:
                        cluster.nodes.append(node)
                        del pending[name]
                if pending and time.monotonic() > deadline:
                    name, node = next(iter(pending.items()))
                    raise ServerStartError(f"node {name}: no answer on {node.base_url}", node.log())
                time.sleep(0.05)
    finally:
        for node in pending.values():
            node.stop()


@contextlib.contextmanager
def running_cluster(
    parent: Path, *, database_url: str | None, names: Sequence[str] = ("a", "b")
) -> Iterator[Cluster]:
    """Init one instance under ``parent`` and serve it from one process per name. Every process
    is stopped afterwards; a traceback in a log, or a shutdown that was not graceful, is raised
    as an ``AssertionError`` once the body has finished without one of its own."""
    cluster = init_cluster(parent / "instance", database_url)
    try:
        start_nodes(cluster, names)
        yield cluster
    except BaseException as exc:
        for problem in cluster.stop():
            exc.add_note(problem)
        raise
    problems = cluster.stop()
    if problems:
        raise AssertionError("\n\n".join(problems))


# -- firing requests together -----------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """One form POST of a burst."""

    url: str
    data: Mapping[str, str]
    auth: tuple[str, str] | None = None


def post_all_at_once(
    posts: Sequence[Post], *, cookies: httpx.Cookies | None = None
) -> list[httpx.Response]:
    """Send every POST concurrently, each on its own connection, redirects not followed; the
    responses in the order of ``posts``. Fails if any request got no response at all."""

    async def burst() -> list[httpx.Response | BaseException]:
        limits = httpx.Limits(max_connections=len(posts), max_keepalive_connections=len(posts))
        async with httpx.AsyncClient(
            timeout=HTTP_TIMEOUT, follow_redirects=False, limits=limits, cookies=cookies
        ) as client:
            return await asyncio.gather(
                *(
                    client.post(p.url, data=dict(p.data), auth=p.auth or httpx.USE_CLIENT_DEFAULT)
                    for p in posts
                ),
                return_exceptions=True,
            )

    outcomes = asyncio.run(burst())
    failed = [
        f"{p.url}: {o!r}"
        for p, o in zip(posts, outcomes, strict=True)
        if not isinstance(o, httpx.Response)
    ]
    assert not failed, "requests without a response:\n" + "\n".join(failed)
    return [o for o in outcomes if isinstance(o, httpx.Response)]
