"""Protecting Starlette (and FastAPI) routes with Grantline access tokens.

``GrantlineResource`` bundles a ``TokenVerifier``, the authorization rules and an
``ActionReporter``. A route calls ``await auth.require(request, type=..., **facts)``: the token
is verified, the action checked against its ``authorization_details``, the outcome reported
to the authorization server, and a refusal raised as ``GrantlineHTTPError``, which the
installed handler renders as ``{"error": ..., "error_description": ...}`` with its
``WWW-Authenticate`` challenge.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the annotation of
# ``GrantlineResource.__call__`` at runtime to see that it wants the Request.

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from grantline.rs.authorization import Fact, TypeRules
from grantline.rs.claims import VerifiedToken
from grantline.rs.errors import ResourceError
from grantline.rs.report import ActionReporter
from grantline.rs.transport import new_http_client
from grantline.rs.verify import Mode, TokenVerifier

__all__ = ["GrantlineHTTPError", "GrantlineResource"]

log = logging.getLogger("grantline.rs")

_STATE_KEY = "grantline.rs.tokens"


class GrantlineHTTPError(HTTPException):
    """A refusal on its way to the client. Starlette's own handler would still send its
    status and challenge; ``GrantlineResource``'s handler adds the OAuth error body."""

    def __init__(self, error: ResourceError, challenge: str | None) -> None:
        headers = dict(error.headers)
        if challenge is not None:
            headers["WWW-Authenticate"] = challenge
        headers["Cache-Control"] = "no-store"
        super().__init__(error.status_code, detail=error.description, headers=headers)
        self.error = error


class GrantlineResource:
    """One protected resource: ``resource`` is its identifier, the ``aud`` its tokens must
    carry (RFC 8707). ``client_id``/``client_secret`` are its credentials as a client
    registered with ``--can-introspect``: needed for ``mode="introspection"`` and for
    reporting actions (without them nothing is reported).

    ``public_url`` is the origin clients address (scheme, host, port), plus any path prefix a
    proxy strips before requests reach this application; the request's path is appended to it.
    Set it in production: DPoP proofs name the URL the client used (``htu``), and without it
    that URL is rebuilt from the Host header, which is the client's to choose.
    """

    def __init__(
        self,
        *,
        issuer: str,
        resource: str,
        client_id: str | None = None,
        client_secret: str | None = None,
        mode: Mode = "jwt",
        rules: Mapping[str, TypeRules] | None = None,
        public_url: str | None = None,
        require_dpop: bool = False,
        realm: str | None = None,
        report_actions: bool = True,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        verifier: TokenVerifier | None = None,
        reporter: ActionReporter | None = None,
    ) -> None:
        self._owns_http = http is None
        self._http = http or new_http_client()
        self.verifier = verifier or TokenVerifier(
            issuer=issuer,
            resource=resource,
            mode=mode,
            client_id=client_id,
            client_secret=client_secret,
            require_dpop=require_dpop,
            realm=realm,
            http=self._http,
            clock=clock,
        )
        if reporter is None and report_actions and client_id and client_secret:
            reporter = ActionReporter(
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                http=self._http,
                clock=clock,
            )
        self.reporter = reporter
        self.rules = rules
        self.public_url = public_url.rstrip("/") if public_url else None

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self.reporter is not None:
            await self.reporter.start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Flush the pending reports (for at most ``timeout`` seconds) and close."""
        if self.reporter is not None:
            await self.reporter.aclose(timeout)
        await self.verifier.aclose()
        if self._owns_http:
            await self._http.aclose()

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncIterator[None]:
        """``Starlette(lifespan=auth.lifespan)``, or ``async with auth.lifespan():`` inside
        an application's own lifespan."""
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def install(self, app: Starlette) -> None:
        """Render refusals as OAuth error objects (FastAPI: the same call works)."""
        app.add_exception_handler(GrantlineHTTPError, self.handle_error)

    @property
    def exception_handlers(self) -> dict[Any, Callable[[Request, Exception], Any]]:
        """For ``Starlette(exception_handlers=...)``."""
        return {GrantlineHTTPError: self.handle_error}

    async def handle_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GrantlineHTTPError)
        return JSONResponse(exc.error.body(), exc.status_code, headers=exc.headers)

    # -- per request ----------------------------------------------------------------------

    def request_url(self, request: Request) -> str:
        """The URL the client addressed, as its DPoP proof must name it (no query)."""
        if self.public_url is None:
            return str(request.url.replace(query="", fragment=""))
        return self.public_url + request.url.path

    def refusal(self, error: ResourceError) -> GrantlineHTTPError:
        return GrantlineHTTPError(error, self.verifier.challenge(error))

    async def token(self, request: Request) -> VerifiedToken:
        """The request's verified access token; verified once per request, since a DPoP
        proof may be used only once."""
        tokens: dict[int, VerifiedToken] = request.scope.setdefault(_STATE_KEY, {})
        token = tokens.get(id(self))
        if token is not None:
            return token
        try:
            token = await self.verifier.verify(
                authorization=request.headers.getlist("authorization"),
                dpop=request.headers.getlist("dpop"),
                method=request.method,
                url=self.request_url(request),
            )
        except ResourceError as exc:
            log.info("refused %s %s: %s (%s)", request.method, request.url.path, exc.error, exc)
            raise self.refusal(exc) from None
        tokens[id(self)] = token
        return token

    async def __call__(self, request: Request) -> VerifiedToken:
        """FastAPI: ``token: VerifiedToken = Depends(auth)``."""
        return await self.token(request)

    async def require(
        self,
        request: Request,
        *,
        type: str,
        resource_url: str | None = None,
        **facts: Fact,
    ) -> Mapping[str, Any]:
        """Verify the token, check that the action described by ``facts`` fits one of its
        ``type`` items, report the outcome, and return the item; refuse with 403
        ``insufficient_authorization_details`` otherwise. ``resource_url`` is what the
        report names as acted on (default: this request's URL)."""
        token = await self.token(request)
        decision = token.grant(self.rules).check(type=type, **facts)
        if self.reporter is not None:
            self.reporter.report(
                jti=token.jti,
                outcome="allowed" if decision.allowed else "refused",
                type=type,
                action=facts,
                error=None if decision.allowed else "insufficient_authorization_details",
                reason=None if decision.allowed else decision.reason,
                resource=resource_url or self.request_url(request),
            )
        if decision.allowed and decision.item is not None:
            return decision.item
        log.info("refused %s %s: %s", request.method, request.url.path, decision.reason)
        raise self.refusal(decision.error(token.scheme))
