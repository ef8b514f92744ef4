"""Machinery for the integration tests: a real ``grantline serve`` process, its CLI, and the
two sides of an authorization (the client's back channel and the person's browser) over HTTP.

Nothing here imports the ``grantline`` package: the server is reached only through its command
line and its HTTP interface, and PKCE is computed here rather than with the server's own code.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

#: Bounded waits, in seconds.
STARTUP_TIMEOUT = 20.0
SHUTDOWN_TIMEOUT = 10.0
CLI_TIMEOUT = 60.0
HTTP_TIMEOUT = 10.0

METADATA_PATH = "/.well-known/oauth-authorization-server"
REQUIRE_PAR_LINE = "require_pushed_authorization_requests = true"


# -- the command line -------------------------------------------------------------------------


def grantline_command() -> list[str]:
    """The ``grantline`` console script beside this interpreter, else ``python -m grantline``."""
    script = Path(sys.executable).parent / "grantline"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "grantline"]


def clean_environment() -> dict[str, str]:
    """This process's environment without GRANTLINE_* variables, which would override the
    instance's own configuration (issuer, database, secret key, data dir)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRANTLINE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``grantline ARGS``; the caller checks the return code."""
    return subprocess.run(
        [*grantline_command(), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_environment(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


class CliError(AssertionError):
    """A ``grantline`` command exited nonzero; the message carries its output."""

    def __init__(self, args: Sequence[str], done: subprocess.CompletedProcess[str]) -> None:
        super().__init__(
            f"`grantline {' '.join(args)}` exited {done.returncode}\n"
            f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
        )
        self.returncode = done.returncode
        self.stderr = done.stderr


def run_cli_ok(*args: str) -> str:
    """Run ``grantline ARGS``; its stdout, or ``CliError`` unless it exits 0."""
    done = run_cli(*args)
    if done.returncode != 0:
        raise CliError(args, done)
    return done.stdout


def json_lines(text: str) -> list[dict[str, Any]]:
    """One JSON object per non-empty line."""
    objects = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all(isinstance(o, dict) for o in objects), text
    return objects


# -- the server -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevCredentials:
    """What ``grantline init --dev`` wrote to DIR/dev-credentials.json."""

    client_id: str
    client_secret: str
    username: str
    password: str


@dataclass(frozen=True)
class RegisteredClient:
    """A client registered with ``grantline clients add --json``."""

    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    description: dict[str, Any]


class ServerStartError(RuntimeError):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(f"{message}\n--- server log ---\n{log}")
        self.log = log


@dataclass
class GrantlineServer:
    """A running ``grantline serve`` on 127.0.0.1 and its instance directory."""

    base_url: str
    data_dir: Path
    port: int
    credentials: DevCredentials
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def issuer(self) -> str:
        return self.base_url

    @property
    def dev_redirect_uri(self) -> str:
        return self.issuer + "/dev/callback"

    def url(self, path: str) -> str:
        return self.base_url + path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(self, *args: str) -> str:
        """``grantline SUBCOMMAND... --data-dir DIR ARGS``: stdout, failing on a nonzero exit.

        ``args`` is the subcommand path and its options, e.g. ``("audit", "tail", "--json")``;
        ``--data-dir`` is inserted after the leading words that are not options.
        """
        words = list(args)
        split = next((i for i, w in enumerate(words) if w.startswith("-")), len(words))
        return run_cli_ok(*words[:split], "--data-dir", str(self.data_dir), *words[split:])

    def add_client(
        self,
        *,
        name: str,
        redirect_uris: Sequence[str],
        auth_method: str = "client_secret_basic",
        require_par: bool | None = None,
    ) -> RegisteredClient:
        """Register a client through ``grantline clients add --json``."""
        args = ["clients", "add", "--name", name, "--auth-method", auth_method, "--json"]
        for uri in redirect_uris:
            args += ["--redirect-uri", uri]
        if require_par is not None:
            args.append("--require-par" if require_par else "--no-require-par")
        out = json.loads(self.cli(*args))
        return RegisteredClient(
            client_id=out["client_id"],
            client_secret=out["client_secret"],
            redirect_uris=tuple(out["redirect_uris"]),
            description=out,
        )

    def audit_events(self, lines: int = 1000) -> list[dict[str, Any]]:
        """``grantline audit tail --json``: one JSON object per line, oldest first."""
        return json_lines(self.cli("audit", "tail", "--json", "--lines", str(lines)))

    def is_running(self) -> bool:
        return self.process.poll() is None

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def init_instance(data_dir: Path, issuer: str, *, require_par: bool = True) -> DevCredentials:
    """``grantline init --dev``; optionally switch the server-wide PAR requirement off."""
    out = run_cli_ok("init", "--data-dir", str(data_dir), "--issuer", issuer, "--dev")
    assert "dev-agent" in out, out
    if not require_par:
        config = data_dir / "grantline.toml"
        text = config.read_text()
        assert REQUIRE_PAR_LINE in text, f"unexpected config written by init:\n{text}"
        config.write_text(
            text.replace(REQUIRE_PAR_LINE, "require_pushed_authorization_requests = false")
        )
    creds = json.loads((data_dir / "dev-credentials.json").read_text())
    return DevCredentials(
        client_id=creds["client_id"],
        client_secret=creds["client_secret"],
        username=creds["username"],
        password=creds["password"],
    )


def edit_config(data_dir: Path, edits: Mapping[str, str]) -> None:
    """Replace text in the grantline.toml that init wrote; each old text must be there once."""
    config = data_dir / "grantline.toml"
    text = config.read_text()
    for old, new in edits.items():
        assert text.count(old) == 1, f"{old!r} is not once in the config init wrote:\n{text}"
        text = text.replace(old, new)
    config.write_text(text)


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, deadline: float) -> None:
    """Poll the metadata endpoint until it names our issuer, or the process dies, or time's up."""
    with httpx.Client(timeout=1.0) as probe:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with status {process.returncode}")
            try:
                response = probe.get(base_url + METADATA_PATH)
                ours = response.status_code == 200 and response.json().get("issuer") == base_url
            except (httpx.TransportError, ValueError):
                ours = False
            # Another process could hold the port: ours must be the one alive and answering.
            if ours and process.poll() is None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer from {base_url}{METADATA_PATH}")
            time.sleep(0.05)


def start_server(
    parent: Path,
    *,
    require_par: bool = True,
    edits: Mapping[str, str] | None = None,
    startup_timeout: float = STARTUP_TIMEOUT,
    attempts: int = 3,
) -> GrantlineServer:
    """Init a fresh dev instance under ``parent``, apply ``edits`` (see ``edit_config``) to its
    grantline.toml, and serve it on a free port.

    The port is chosen before the server binds it, so another process can take it in between;
    the issuer (and the dev client's redirect_uri) contain the port, so a retry starts over with
    a new instance.
    """
    last_error: ServerStartError | None = None
    for attempt in range(attempts):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        data_dir = parent / f"instance-{port}-{attempt}"
        credentials = init_instance(data_dir, base_url, require_par=require_par)
        if edits:
            edit_config(data_dir, edits)
        log_path = data_dir / "serve.log"
        # The child writes to its own copy of the descriptor; ours is closed at once.
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [*grantline_command(), "serve", "--data-dir", str(data_dir), "--port", str(port)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=clean_environment(),
            )
        server = GrantlineServer(
            base_url=base_url,
            data_dir=data_dir,
            port=port,
            credentials=credentials,
            process=process,
            log_path=log_path,
        )
        try:
            _wait_until_ready(process, base_url, time.monotonic() + startup_timeout)
        except (RuntimeError, TimeoutError) as exc:
            server.stop()
            last_error = ServerStartError(str(exc), server.log())
            if "address already in use" in last_error.log.lower():
                continue
            raise last_error from None
        except BaseException:
            server.stop()
            raise
        return server
    assert last_error is not None
    raise last_error


class ServerFactory:
    """Starts servers on demand and stops all of them on ``close``."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.servers: list[GrantlineServer] = []

    def __call__(
        self, *, require_par: bool = True, edits: Mapping[str, str] | None = None
    ) -> GrantlineServer:
        server = start_server(self.parent, require_par=require_par, edits=edits)
        self.servers.append(server)
        return server

    def close(self) -> list[str]:
        """Stop every server; returns the problems found: a traceback or an unexpected error in
        its log, or a shutdown that was not graceful."""
        problems: list[str] = []
        while self.servers:
            server = self.servers.pop()
            status = server.stop()
            log = server.log()
            if "Traceback" in log or "unexpected error" in log:
                problems.append(f"server on {server.base_url} logged an error:\n{log}")
            # uvicorn re-raises the SIGTERM it handled once shutdown is complete.
            elif status not in (0, -signal.SIGTERM) or "Application shutdown complete" not in log:
                problems.append(
                    f"server on {server.base_url} did not shut down cleanly (status {status}):\n"
                    + log
                )
        return problems


# -- OAuth helpers ----------------------------------------------------------------------------


def new_verifier() -> str:
    """An RFC 7636 4.1 code_verifier: 64 characters of base64url."""
    return secrets.token_urlsafe(48)


def s256(verifier: str) -> str:
    """RFC 7636 4.2 S256, computed independently of the server's implementation."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url``, each of which must appear once."""
    parsed = parse_qs(urlsplit(url).query, keep_blank_values=True)
    assert all(len(v) == 1 for v in parsed.values()), f"repeated parameter in {url}"
    return {k: v[0] for k, v in parsed.items()}


@dataclass(frozen=True)
class Form:
    action: str
    method: str
    inputs: dict[str, str]
    buttons: list[tuple[str, str]]


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower(), {}, []))
        elif self.forms and tag == "input" and "name" in a:
            self.forms[-1].inputs[a["name"]] = a.get("value", "")
        elif self.forms and tag == "button" and "name" in a:
            self.forms[-1].buttons.append((a["name"], a.get("value", "")))


def only_form(html: str) -> Form:
    """The page's single form; fails when there is none or more than one."""
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    assert len(parser.forms) == 1, f"expected one form, found {len(parser.forms)}:\n{html}"
    return parser.forms[0]


@dataclass(frozen=True)
class Pushed:
    request_uri: str
    expires_in: int
    verifier: str
    state: str
    redirect_uri: str


def push(
    agent: httpx.Client,
    server: GrantlineServer,
    *,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    scope: str = "inbox.read",
) -> Pushed:
    """POST /par with Basic authentication and PKCE S256; asserts 201."""
    verifier = new_verifier()
    state = secrets.token_urlsafe(16)
    response = agent.post(
        server.url("/par"),
        auth=(client_id, client_secret),
        data={
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": s256(verifier),
            "code_challenge_method": "S256",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Pushed(body["request_uri"], body["expires_in"], verifier, state, redirect_uri)


def push_dev(agent: httpx.Client, server: GrantlineServer, scope: str = "inbox.read") -> Pushed:
    creds = server.credentials
    return push(
        agent,
        server,
        client_id=creds.client_id,
        client_secret=creds.client_secret,
        redirect_uri=server.dev_redirect_uri,
        scope=scope,
    )


def browser(server: GrantlineServer) -> httpx.Client:
    """A person's browser: its own cookie jar, redirects observed one at a time."""
    return httpx.Client(base_url=server.base_url, timeout=HTTP_TIMEOUT, follow_redirects=False)


def agent_client() -> httpx.Client:
    """The client's back channel: no cookies are ever shared with a browser."""
    return httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)


def authorize_url(server: GrantlineServer, client_id: str, request_uri: str) -> str:
    """The URL a client sends the browser to: only client_id and request_uri (RFC 9126 4)."""
    return server.url(
        "/authorize?" + urlencode({"client_id": client_id, "request_uri": request_uri})
    )


def sign_in_and_approve(
    person: httpx.Client, server: GrantlineServer, client_id: str, request_uri: str
) -> str:
    """Drive /authorize, login and consent; returns the redirect (callback) URL."""
    return approve_at(person, server, authorize_url(server, client_id, request_uri))


def open_interaction(person: httpx.Client, url: str) -> str:
    """Open the authorization URL; returns the interaction URL it redirects to."""
    opened = person.get(url)
    assert opened.status_code == 303, opened.text
    return str(opened.headers["location"])


def sign_in(person: httpx.Client, server: GrantlineServer, login_form: Form) -> None:
    """Submit the login form as the dev user; asserts the redirect that follows."""
    creds = server.credentials
    logged_in = person.post(
        login_form.action,
        data={
            "csrf_token": login_form.inputs["csrf_token"],
            "username": creds.username,
            "password": creds.password,
        },
    )
    assert logged_in.status_code == 303, logged_in.text


def approve_at(person: httpx.Client, server: GrantlineServer, url: str) -> str:
    """Open the authorization URL in a new browser, sign in as the dev user and approve;
    returns the redirect (callback) URL."""
    interaction = open_interaction(person, url)
    login_form = only_form(person.get(interaction).text)
    assert login_form.action == f"{interaction}/login", "expected the login page (new browser)"
    sign_in(person, server, login_form)
    consent = person.get(interaction)
    assert consent.status_code == 200, consent.text
    consent_form = only_form(consent.text)
    decided = person.post(
        consent_form.action,
        data={"csrf_token": consent_form.inputs["csrf_token"], "decision": "approve"},
    )
    assert decided.status_code == 303, decided.text
    return str(decided.headers["location"])


def exchange_code(
    agent: httpx.Client,
    server: GrantlineServer,
    code: str,
    pushed: Pushed,
    *,
    client_id: str,
    client_secret: str,
) -> httpx.Response:
    return agent.post(
        server.url("/token"),
        auth=(client_id, client_secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": pushed.verifier,
            "redirect_uri": pushed.redirect_uri,
        },
    )


@contextlib.contextmanager
def clients_for(server: GrantlineServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """(agent, person): the two HTTP clients of one authorization, closed afterwards."""
    with agent_client() as agent, browser(server) as person:
        yield agent, person
