"""The servers under load: Grantline (SQLite or PostgreSQL, 1 or 2 workers), node-oidc-provider
(in memory or on SQLite; one process, or node:cluster with 2 workers), the minimal-handler
ceiling, and a resource server using the Grantline SDK. Each starts fresh, on its own port and
data, every round.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
from pathlib import Path

from suite.browser import AuthServer, Endpoints
from suite.jws import EcKey
from suite.process import REPO, ServerProcess, clean_env, free_port, run_checked

__all__ = [
    "BENCH_CLIENT",
    "JWT_CLIENT",
    "REDIRECT_URI",
    "RS_RESOURCE",
    "CeilingTarget",
    "GrantlineTarget",
    "OidcProviderTarget",
    "ResourceTarget",
    "Target",
]

BENCH_CLIENT = "bench"
JWT_CLIENT = "bench-jwt"
REDIRECT_URI = "https://bench.example/cb"
RS_RESOURCE = "https://api.bench.example/"
USERNAME = "bench-user"
VENV_BIN = REPO / ".venv" / "bin"
OIDC_DIR = REPO / "benchmarks" / "oidc-provider"
GRANTLINE_ENDPOINTS = Endpoints("/par", "/authorize", "/token", "/introspect")
OIDC_ENDPOINTS = Endpoints("/request", "/auth", "/token", "/token/introspection")
# Budgets far above what one machine serves: the limiter still counts every request.
_UNLIMITED = '"1000000/s"'
_LIMITED_ENDPOINT = re.compile(r"^((?:par|token|introspect)\s*=.*)$", re.MULTILINE)
_BUDGET = re.compile(r'"\d+\s*/\s*[a-z]+"')
_ADMISSION = re.compile(r"^max_concurrent_requests\s*=.*$", re.MULTILINE)


class Target:
    """One server. ``family`` groups the rows of the table; ``key`` names one configuration."""

    family = ""
    key = ""
    label = ""
    database = ""
    scenarios: frozenset[str] = frozenset()

    #: The resource to ask tokens for when they are to be introspected.
    introspection_resource: str | None = None
    #: The server gives a browser a new session id at the end of each authorization: a run
    #: that ends with a flow in flight leaves that browser signed out, so every run of the
    #: flow starts from browsers signed in afresh.
    rotates_sessions = False

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.port = 0
        self.server: ServerProcess | None = None
        self.auth: AuthServer | None = None
        self.jwt_key = EcKey.generate()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.server is not None
        return self.server.pid

    def start(self, workdir: Path) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def database_pids(self) -> list[int]:
        """Processes outside the server's tree that do its work (PostgreSQL backends)."""
        return []


def _configure_for_load(config: Path) -> None:
    """Rate-limit budgets far above the load, and no admission bound: the suite measures what
    a request costs at saturation, and one client's closed loop of 64 connections is not the
    abuse or overload those policies are for. Their code still runs on every request."""
    from grantline.settings import Settings

    text = _LIMITED_ENDPOINT.sub(lambda m: _BUDGET.sub(_UNLIMITED, m.group(1)), config.read_text())
    if _ADMISSION.search(text):
        text = _ADMISSION.sub("max_concurrent_requests = 0", text)
    elif "max_concurrent_requests" in Settings.__dataclass_fields__:
        # Top-level keys must come before the first table.
        text = "max_concurrent_requests = 0\n" + text
    config.write_text(text)


class GrantlineTarget(Target):
    family = "grantline"
    scenarios = frozenset({"par_basic", "par_jwt", "token", "flow", "introspect"})

    def __init__(self, workers: int, postgres_admin_url: str | None = None) -> None:
        super().__init__(workers)
        self.postgres_admin_url = postgres_admin_url
        self.database = "PostgreSQL" if postgres_admin_url else "SQLite"
        self.key = f"grantline-{self.database.lower()}-{workers}"
        self.label = f"Grantline, {self.database}, {workers} worker{'s' if workers > 1 else ''}"
        self.pg_database: str | None = None
        #: The instance's data directory, and the environment its CLI (and the scripts that
        #: write into its database) runs with: set by ``start``.
        self.data_dir: Path | None = None
        self.env: dict[str, str] = {}

    def start(self, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / self.key
        env = clean_env()
        if self.postgres_admin_url:
            self.pg_database = f"grantline_bench_{os.getpid()}_{self.port}"
            self._admin(f'CREATE DATABASE "{self.pg_database}"')
            env["GRANTLINE_DATABASE_URL"] = (
                self.postgres_admin_url.rsplit("/", 1)[0] + "/" + self.pg_database
            )
        self.data_dir, self.env = data, env
        grantline = str(VENV_BIN / "grantline")
        where = ["--data-dir", str(data)]
        run_checked([grantline, "init", *where, "--issuer", self.base_url], env=env)
        _configure_for_load(data / "grantline.toml")
        added = run_checked(
            [grantline, "clients", "add", *where, "--name", "bench", "--client-id", BENCH_CLIENT]
            + ["--redirect-uri", REDIRECT_URI, "--resource", RS_RESOURCE, "--json"],
            env=env,
        )
        jwks = data / "bench-jwt.jwks.json"
        jwks.write_text(json.dumps({"keys": [self.jwt_key.public_jwk()]}))
        run_checked(
            [grantline, "clients", "add", *where, "--name", "bench-jwt", "--client-id", JWT_CLIENT]
            + ["--auth-method", "private_key_jwt", "--jwks", str(jwks)]
            + ["--redirect-uri", REDIRECT_URI, "--json"],
            env=env,
        )
        password = secrets.token_urlsafe(16)
        run_checked(
            [grantline, "users", "add", USERNAME, *where, "--password-stdin"],
            env=env,
            stdin=password + "\n",
        )
        self.auth = AuthServer(
            self.base_url,
            GRANTLINE_ENDPOINTS,
            BENCH_CLIENT,
            json.loads(added)["client_secret"],
            REDIRECT_URI,
            USERNAME,
            password,
        )
        self.server = ServerProcess(
            [grantline, "serve", *where, "--port", str(self.port), "--workers", str(self.workers)],
            env=env,
            log_path=data / "serve.log",
            ready_url=self.base_url + "/.well-known/oauth-authorization-server",
        )
        self.server.start()

    def stop(self) -> None:
        super().stop()
        if self.pg_database:
            self._admin(f'DROP DATABASE IF EXISTS "{self.pg_database}" WITH (FORCE)')
            self.pg_database = None

    def database_pids(self) -> list[int]:
        if not (self.postgres_admin_url and self.pg_database):
            return []
        import psycopg

        with psycopg.connect(self.postgres_admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.pg_database,)
            ).fetchall()
        return [int(row[0]) for row in rows]

    def _admin(self, statement: str) -> None:
        import psycopg

        assert self.postgres_admin_url is not None
        with psycopg.connect(self.postgres_admin_url, autocommit=True) as conn:
            conn.execute(statement.encode())


class OidcProviderTarget(Target):
    """server.js on the library's in-memory adapter (``adapter="memory"``) or on our SQLite
    adapter (``adapter="sqlite"``, one database file shared by every worker)."""

    family = "oidc-provider"
    # server.js issues opaque access tokens for this resource: the provider does not
    # introspect JWT ones.
    introspection_resource = "https://opaque.bench.example/"
    # Its resume step calls session.resetIdentifier() (a defence against session fixation).
    rotates_sessions = True

    def __init__(self, workers: int, node: str, adapter: str = "memory") -> None:
        super().__init__(workers)
        if adapter not in ("memory", "sqlite"):
            raise ValueError(f"unknown oidc-provider adapter {adapter!r}")
        self.node = node
        self.adapter = adapter
        self.database = "SQLite" if adapter == "sqlite" else "memory"
        self.key = (
            f"oidc-provider-{workers}"
            if adapter == "memory"
            else f"oidc-provider-{adapter}-{workers}"
        )
        store = "SQLite" if adapter == "sqlite" else "in memory"
        self.label = (
            f"oidc-provider, {store}, 1 process"
            if workers == 1
            else f"oidc-provider, {store}, cluster of {workers} workers"
        )
        # In memory, each cluster worker has its own store: a request_uri pushed to one worker
        # is unknown to the others, so only single-request scenarios run across workers. On
        # SQLite every worker reads what any of them wrote.
        shared = workers == 1 or adapter == "sqlite"
        self.scenarios = frozenset(
            {"par_basic", "par_jwt", "flow", "introspect"} if shared else {"par_basic", "par_jwt"}
        )

    def start(self, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / self.key
        data.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(32)
        password = secrets.token_urlsafe(16)
        common = {
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            # The provider signs with one ES256 key, like Grantline's default.
            "id_token_signed_response_alg": "ES256",
        }
        config = {
            "clients": [
                {
                    "client_id": BENCH_CLIENT,
                    "client_secret": secret,
                    "token_endpoint_auth_method": "client_secret_basic",
                    **common,
                },
                {
                    "client_id": JWT_CLIENT,
                    "token_endpoint_auth_method": "private_key_jwt",
                    "token_endpoint_auth_signing_alg": "ES256",
                    "jwks": {"keys": [self.jwt_key.public_jwk()]},
                    **common,
                },
            ],
            "signing_key": EcKey.generate().private_jwk(),
            "username": USERNAME,
            "password": password,
        }
        config_path = data / "config.json"
        config_path.write_text(json.dumps(config))
        store: dict[str, str] = {}
        if self.adapter == "sqlite":
            # A fresh database every round (the workdir is too, but not when reused).
            db = data / "oidc-provider.db"
            for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                stale.unlink(missing_ok=True)
            store["SQLITE_PATH"] = str(db)
        self.auth = AuthServer(
            self.base_url, OIDC_ENDPOINTS, BENCH_CLIENT, secret, REDIRECT_URI, USERNAME, password
        )
        self.server = ServerProcess(
            [self.node, "server.js"],
            env=clean_env(
                PORT=str(self.port),
                WORKERS=str(self.workers),
                BENCH_CONFIG=str(config_path),
                NODE_ENV="production",
                ADAPTER=self.adapter,
                **store,
            ),
            log_path=data / "server.log",
            ready_url=self.base_url + "/.well-known/openid-configuration",
            cwd=OIDC_DIR,
        )
        self.server.start()


def _ceiling_module() -> object:
    spec = importlib.util.spec_from_file_location(
        "ceiling_app", REPO / "benchmarks" / "ceiling" / "par_ceiling.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _uvicorn(app_dir: str, module: str, port: int, workers: int) -> list[str]:
    return [
        str(VENV_BIN / "python"),
        "-m",
        "uvicorn",
        "--factory",
        "--app-dir",
        str(REPO / "benchmarks" / app_dir),
        f"{module}:app_from_environment",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


class CeilingTarget(Target):
    family = "ceiling"
    key = "ceiling-1"
    label = "minimal handler (raw ASGI), 1 worker"
    database = "SQLite"
    scenarios = frozenset({"par_basic"})

    def start(self, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / self.key
        data.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        secret = secrets.token_urlsafe(32)
        db = data / "ceiling.db"
        _ceiling_module().init_database(  # type: ignore[attr-defined]
            str(db), key, BENCH_CLIENT, secret, [REDIRECT_URI]
        )
        self.auth = AuthServer(
            self.base_url, GRANTLINE_ENDPOINTS, BENCH_CLIENT, secret, REDIRECT_URI, "", ""
        )
        self.server = ServerProcess(
            _uvicorn("ceiling", "par_ceiling", self.port, self.workers),
            env=clean_env(CEILING_DB=str(db), CEILING_KEY=key.hex()),
            log_path=data / "server.log",
            ready_url=self.base_url + "/par",
            ready=lambda r: r.status_code == 405,
        )
        self.server.start()


class ResourceTarget(Target):
    """``benchmarks/resource/resource_server.py``, trusting the Grantline instance ``issuer``."""

    family = "resource"
    database = "-"
    scenarios = frozenset({"rs"})

    def __init__(self, workers: int, issuer: GrantlineTarget) -> None:
        super().__init__(workers)
        self.issuer = issuer
        self.key = f"resource-{workers}"
        plural = "s" if workers > 1 else ""
        self.label = f"resource server (grantline.rs, Starlette), {workers} worker{plural}"

    def start(self, workdir: Path) -> None:
        self.port = free_port()
        data = workdir / self.key
        data.mkdir(parents=True, exist_ok=True)
        self.server = ServerProcess(
            _uvicorn("resource", "resource_server", self.port, self.workers),
            env=clean_env(
                RS_ISSUER=self.issuer.base_url,
                RS_RESOURCE=RS_RESOURCE,
                RS_PUBLIC_URL=self.base_url,
            ),
            log_path=data / "server.log",
            ready_url=self.base_url + "/resource",
            ready=lambda r: r.status_code == 401,
        )
        self.server.start()
