"""Grantline end to end: an agent asks to pay one invoice, a person approves, an API pays it,
refuses a larger payment, and the audit trail shows the whole line.

    .venv/bin/python examples/payment_demo/demo.py

1. A fresh instance in ``var/demo`` (``grantline init --dev``), a payment agent client and the
   payments API registered as a resource server, Grantline and the API started.
2. The agent pushes a payment_initiation request (42.00 EUR to Merchant A) with PKCE and a
   DPoP key over the back channel (RFC 9126), and prints the URL to open.
3. You sign in (the dev user's password is printed) and approve.
4. The agent redeems the code with a DPoP proof, pays 42.00 EUR (allowed), then tries 420.00
   EUR (refused: 403 insufficient_authorization_details).
5. ``grantline audit trace`` prints pushed -> shown -> approved -> token -> actions, and
   ``grantline audit verify`` checks the hash chain.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PAYMENT = {
    "type": "payment_initiation",
    "actions": ["initiate"],
    "instructedAmount": {"currency": "EUR", "amount": "42.00"},
    "creditorName": "Merchant A",
    "creditorAccount": {"iban": "DE02100100109307118603"},
    "remittanceInformationUnstructured": "Invoice 2026-117",
}


def say(text: str) -> None:
    print(text, flush=True)


def grantline(*args: str, data_dir: Path, check: bool = True) -> str:
    done = subprocess.run(  # noqa: S603 - our own CLI
        [str(BIN / "grantline"), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise SystemExit(f"grantline {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} did not start")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class DpopKey:
    """The agent's proof-of-possession key (RFC 9449)."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")
        public = self.key.as_dict(private=False)
        self.public = {k: public[k] for k in ("kty", "crv", "x", "y")}
        self.jkt = self.key.thumbprint()

    def proof(self, method: str, url: str, access_token: str | None = None) -> str:
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if access_token is not None:
            digest = hashlib.sha256(access_token.encode()).digest()
            claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.public}
        return jwt.encode(header, claims, self.key, algorithms=["ES256"])


async def receive_code(port: int, state: str, issuer: str, timeout: float) -> str:
    """A one-shot loopback redirect receiver (RFC 8252 7.3): the authorization response."""
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        target = request_line.split(" ")[1] if " " in request_line else "/"
        params = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        ok = params.get("state") == state and params.get("iss") == issuer
        body = b"Approved. You can close this page." if "code" in params and ok else b"Refused."
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        await writer.drain()
        writer.close()
        if not got.done() and urlsplit(target).path == "/callback":
            if ok and "code" in params:
                got.set_result(params["code"])
            else:
                got.set_exception(SystemExit(f"authorization failed: {params}"))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        return await asyncio.wait_for(got, timeout)


async def run_agent(args: argparse.Namespace, secret: str, password: str) -> str:
    issuer, api = f"http://127.0.0.1:{args.as_port}", f"http://127.0.0.1:{args.api_port}"
    redirect_uri = f"http://127.0.0.1:{args.callback_port}/callback"
    dpop, verifier, state = DpopKey(), secrets.token_urlsafe(48), secrets.token_urlsafe(16)
    async with httpx.AsyncClient(timeout=10) as http:
        pushed = await http.post(
            f"{issuer}/par",
            auth=("payment-agent", secret),
            data={
                "response_type": "code",
                "redirect_uri": redirect_uri,
                "code_challenge": s256(verifier),
                "code_challenge_method": "S256",
                "state": state,
                "authorization_details": json.dumps([PAYMENT]),
                "resource": f"{api}/payments",
                "dpop_jkt": dpop.jkt,
            },
        )
        pushed.raise_for_status()
        request_uri = pushed.json()["request_uri"]
        url = f"{issuer}/authorize?" + urlencode(
            {"client_id": "payment-agent", "request_uri": request_uri}
        )
        say("\nThe agent pushed its request. Open this URL in a browser:")
        say(f"AUTHORIZE URL: {url}")
        say(f"Sign in as dev-user with the password {password} and approve the payment.\n")
        code = await receive_code(args.callback_port, state, issuer, args.wait)

        token_url = f"{issuer}/token"
        tokens = await http.post(
            token_url,
            auth=("payment-agent", secret),
            headers={"DPoP": dpop.proof("POST", token_url)},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": redirect_uri,
            },
        )
        tokens.raise_for_status()
        access_token = tokens.json()["access_token"]
        say(f"Token issued: {tokens.json()['token_type']}, bound to the agent's key.")

        for amount in ("42.00", "420.00"):
            pay_url = f"{api}/payments"
            answer = await http.post(
                pay_url,
                headers={
                    "Authorization": f"DPoP {access_token}",
                    "DPoP": dpop.proof("POST", pay_url, access_token),
                },
                json={
                    "amount": amount,
                    "currency": "EUR",
                    "iban": PAYMENT["creditorAccount"]["iban"],
                },
            )
            say(f"PAY {amount} EUR -> {answer.status_code} {answer.text}")
    # The agent reads its own token's jti only to name it to `audit trace`.
    payload = access_token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=ROOT / "var" / "demo")
    parser.add_argument("--as-port", type=int, default=8400)
    parser.add_argument("--api-port", type=int, default=8401)
    parser.add_argument("--callback-port", type=int, default=8402)
    parser.add_argument("--wait", type=float, default=300, help="Seconds to wait for approval.")
    args = parser.parse_args()
    data_dir: Path = args.data_dir
    issuer, api = f"http://127.0.0.1:{args.as_port}", f"http://127.0.0.1:{args.api_port}"

    shutil.rmtree(data_dir, ignore_errors=True)
    grantline("init", "--dev", "--issuer", issuer, data_dir=data_dir)
    password = json.loads((data_dir / "dev-credentials.json").read_text())["password"]
    agent = json.loads(
        grantline(
            "clients",
            "add",
            "--json",
            "--name",
            "Invoice payment agent",
            "--client-id",
            "payment-agent",
            "--redirect-uri",
            f"http://127.0.0.1:{args.callback_port}/callback",
            "--authorization-details-type",
            "payment_initiation",
            "--resource",
            f"{api}/payments",
            "--dpop-bound-access-tokens",
            data_dir=data_dir,
        )
    )
    payments_api = json.loads(
        grantline(
            "clients",
            "add",
            "--json",
            "--name",
            "Payments API",
            "--client-id",
            "payments-api",
            "--can-introspect",
            "--resource",
            f"{api}/payments",
            "--redirect-uri",
            "https://payments-api.invalid/unused",
            data_dir=data_dir,
        )
    )
    env = {**os.environ, "GRANTLINE_DATA_DIR": str(data_dir)}
    log = (data_dir / "servers.log").open("ab")
    say(f"Grantline on {issuer}, the payments API on {api}; their logs: {data_dir}/servers.log")
    server = subprocess.Popen(  # noqa: S603
        [str(BIN / "grantline"), "serve", "--port", str(args.as_port)],
        env=env,
        stdout=log,
        stderr=log,
    )
    api_env = {
        **os.environ,
        "GRANTLINE_ISSUER": issuer,
        "PAYMENTS_API_URL": api,
        "PAYMENTS_API_CLIENT_ID": "payments-api",
        "PAYMENTS_API_CLIENT_SECRET": payments_api["client_secret"],
    }
    api_server = subprocess.Popen(  # noqa: S603
        [sys.executable, str(Path(__file__).with_name("payments_api.py"))],
        env=api_env,
        stdout=log,
        stderr=log,
    )
    try:
        wait_for(f"{issuer}/healthz", server)
        wait_for(f"{api}/payments", api_server)
        jti = asyncio.run(run_agent(args, agent["client_secret"], password))
    finally:
        stop(api_server)  # on SIGTERM the API flushes its queued action reports
        stop(server)
        log.close()
    say("\n$ grantline audit trace " + jti)
    say(grantline("audit", "trace", jti, data_dir=data_dir, check=False))
    say("$ grantline audit verify")
    say(grantline("audit", "verify", data_dir=data_dir))


if __name__ == "__main__":
    main()
