"""The scenarios, and what each needs prepared before wrk can run it against a target."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from suite.browser import Browser, obtain_tokens
from suite.jws import EcKey
from suite.process import REPO, clean_env, run_checked
from suite.targets import (
    BENCH_CLIENT,
    JWT_CLIENT,
    RS_RESOURCE,
    VENV_BIN,
    GrantlineTarget,
    ResourceTarget,
    Target,
)

__all__ = [
    "SCENARIOS",
    "Job",
    "Load",
    "Prepared",
    "Scenario",
    "build_job",
    "mint_refresh_tokens",
    "prepare",
]

MINT_REFRESH_TOKENS = REPO / "benchmarks" / "mint_refresh_tokens.py"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    #: What one operation is (the table's ops/s).
    unit: str


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("par_basic", "PAR push, client_secret_basic", "pushes"),
        Scenario("par_jwt", "PAR push, private_key_jwt", "pushes"),
        Scenario("token", "token refresh, client_secret_basic", "refreshes"),
        Scenario("flow", "whole flow: push, authorize, consent (signed in), token", "flows"),
        Scenario("introspect", "token introspection (own access token)", "introspections"),
        Scenario("rs", "resource server: JWT + DPoP verification", "verified requests"),
    )
}

#: Guesses of ops/s per worker, to mint enough single-use values before any rate is known.
_GUESS = {
    ("par_jwt", "grantline"): 5000,
    ("par_jwt", "oidc-provider"): 10000,
    ("token", "grantline"): 6000,
    ("rs", ""): 3000,
}


@dataclass(frozen=True)
class Load:
    seconds: float
    warmup: float
    connections: int
    flow_connections: int
    threads: int = 2


@dataclass
class Prepared:
    """Per target and round: what its scenarios reuse (browsers, tokens, the PKCE pair)."""

    verifier: str
    challenge: str
    cookies_file: Path | None = None
    access_token: str | None = None
    dpop_key: EcKey | None = None
    #: scenario -> fastest ops/s seen, for sizing the single-use fixtures.
    rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    script: str
    url: str
    threads: int
    connections: int
    env: dict[str, str]


def prepare(scenario: str, target: Target, prepared: Prepared, load: Load, workdir: Path) -> None:
    """What ``scenario`` needs that ``prepared`` lacks, each obtained through a whole
    authorization over HTTP: signed-in browsers for the flow, an access token to introspect,
    a DPoP-bound token for the resource server (fresh each round, well within its lifetime)."""
    if scenario == "rs" and prepared.access_token is None:
        assert isinstance(target, ResourceTarget) and target.issuer.auth is not None
        prepared.dpop_key = EcKey.generate()
        browser = Browser(target.issuer.auth)
        try:
            tokens = obtain_tokens(browser, dpop_key=prepared.dpop_key, resource=RS_RESOURCE)
        finally:
            browser.close()
        prepared.access_token = str(tokens["access_token"])
    elif scenario == "flow" and prepared.cookies_file is None:
        assert target.auth is not None
        cookies = []
        for _ in range(load.flow_connections):
            browser = Browser(target.auth)
            try:
                obtain_tokens(browser)
                cookies.append(browser.cookie_header())
            finally:
                browser.close()
        prepared.cookies_file = workdir / f"{target.key}.cookies"
        prepared.cookies_file.write_text("\n".join(cookies) + "\n")
    elif scenario == "introspect" and prepared.access_token is None:
        assert target.auth is not None
        browser = Browser(target.auth)
        try:
            tokens = obtain_tokens(browser, resource=target.introspection_resource)
            prepared.access_token = str(tokens["access_token"])
        finally:
            browser.close()


def _single_use_count(scenario: str, target: Target, prepared: Prepared, seconds: float) -> int:
    # Rounds differ by half on this shared machine: an exhausted file would end a run in
    # refusals, so mint well past both the guess and the fastest rate seen.
    family = "" if scenario == "rs" else target.family
    guess = _GUESS.get((scenario, family), 3000) * target.workers
    rate = max(guess, 2.5 * prepared.rates.get(scenario, 0.0))
    return math.ceil(rate * seconds) + 500


def mint_refresh_tokens(target: GrantlineTarget, count: int, path: Path) -> None:
    """``count`` refresh tokens of the benchmark client, each on its own grant, written
    straight into ``target``'s database (SQLite or PostgreSQL: the instance's own settings,
    with the target's environment) by ``benchmarks/mint_refresh_tokens.py``; one per line
    into ``path``."""
    assert target.data_dir is not None, "the target has not been started"
    python = str(VENV_BIN / "python")
    tokens = run_checked(
        [python, str(MINT_REFRESH_TOKENS), str(target.data_dir), str(count)], env=target.env
    )
    path.write_text(tokens)


def build_job(
    scenario: str, target: Target, prepared: Prepared, load: Load, seconds: float, path: Path
) -> Job:
    """The wrk run of ``scenario`` against ``target`` for ``seconds``; single-use values
    (client assertions, refresh tokens, DPoP proofs) are minted into ``path`` first."""
    auth = target.auth
    env = clean_env(CODE_CHALLENGE=prepared.challenge, CODE_VERIFIER=prepared.verifier)
    if auth is not None:
        env |= {
            "CLIENT_ID": auth.client_id,
            "CLIENT_SECRET": auth.client_secret,
            "REDIRECT_URI": auth.redirect_uri,
        }
    if scenario == "par_basic":
        assert auth is not None
        return Job("par.lua", auth.url(auth.endpoints.par), load.threads, load.connections, env)
    if scenario == "par_jwt":
        assert auth is not None
        count = _single_use_count(scenario, target, prepared, seconds)
        assertions = target.jwt_key.client_assertions(JWT_CLIENT, target.base_url, count)
        path.write_text("\n".join(assertions) + "\n")
        env |= {"AUTH": "jwt", "CLIENT_ID": JWT_CLIENT, "ASSERTIONS_FILE": str(path)}
        return Job("par.lua", auth.url(auth.endpoints.par), load.threads, load.connections, env)
    if scenario == "token":
        # Each request spends its own refresh token (rotation makes them single use), minted
        # for the client the script authenticates as.
        assert auth is not None and isinstance(target, GrantlineTarget)
        assert auth.client_id == BENCH_CLIENT
        count = _single_use_count(scenario, target, prepared, seconds)
        mint_refresh_tokens(target, count, path)
        env["TOKENS_FILE"] = str(path)
        url = auth.url(auth.endpoints.token)
        return Job("token.lua", url, load.threads, load.connections, env)
    if scenario == "flow":
        assert auth is not None and prepared.cookies_file is not None
        env |= {
            "PAR_PATH": auth.endpoints.par,
            "AUTH_PATH": auth.endpoints.authorize,
            "TOKEN_PATH": auth.endpoints.token,
            "COOKIES_FILE": str(prepared.cookies_file),
            "INTERACTION_COOKIES": "1" if target.family == "oidc-provider" else "0",
        }
        # One connection per thread: each thread's Lua state is one browser.
        n = load.flow_connections
        return Job("flow.lua", auth.base_url, n, n, env)
    if scenario == "introspect":
        assert auth is not None and prepared.access_token is not None
        env["ACCESS_TOKEN"] = prepared.access_token
        url = auth.url(auth.endpoints.introspect)
        return Job("introspect.lua", url, load.threads, load.connections, env)
    if scenario == "rs":
        assert prepared.access_token is not None and prepared.dpop_key is not None
        url = target.base_url + "/resource"
        count = _single_use_count(scenario, target, prepared, seconds)
        key, token = prepared.dpop_key, prepared.access_token
        path.write_text("\n".join(key.dpop_proof("GET", url, token) for _ in range(count)) + "\n")
        env |= {"ACCESS_TOKEN": token, "PROOFS_FILE": str(path)}
        return Job("rs.lua", url, load.threads, load.connections, env)
    raise ValueError(f"unknown scenario {scenario!r}")
