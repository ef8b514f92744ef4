"""``create_app``: routes, registries, error handlers and lifespan in one place."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from grantline.audit.checkpoint import checkpoint_periodically
from grantline.client_keys import ClientKeys
from grantline.context import Clock, Context, system_clock
from grantline.endpoints import (
    actions,
    authorize,
    dev,
    discovery,
    health,
    interaction,
    introspect,
    par,
    revoke,
    token,
)
from grantline.grants import GrantHandler
from grantline.grants.authorization_code import redeem_code
from grantline.grants.refresh_token import refresh
from grantline.instance import Instance, resolve_data_dir
from grantline.ratelimit.admission import AdmissionLimit
from grantline.ratelimit.guard import RateLimited, handle_rate_limited
from grantline.ratelimit.limiter import RateLimiter
from grantline.ratelimit.stores import rate_limiter_for
from grantline.settings import Settings
from grantline.storage import Store
from grantline.storage.schema import check_schema, open_store
from grantline.web.direct import DirectRoutes
from grantline.web.errors import exception_handlers
from grantline.web.observability import Observability, metrics
from grantline.web.openapi import openapi
from grantline.web.security import SecurityHeaders

__all__ = ["app_from_environment", "create_app"]

_STATIC = Path(__file__).parent / "web" / "static"


def create_app(
    settings: Settings,
    store: Store,
    *,
    clock: Clock = system_clock,
    client_keys: ClientKeys | None = None,
    rate_limiter: RateLimiter | None = None,
) -> Starlette:
    routes = [
        Route("/.well-known/oauth-authorization-server", discovery.metadata, methods=["GET"]),
        Route("/jwks", discovery.jwks, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/par", par.pushed_authorization_request, methods=["POST"]),
        Route("/authorize", authorize.authorize, methods=["GET"]),
        Route("/interaction/{token}", interaction.show_interaction, methods=["GET"]),
        Route("/interaction/{token}/login", interaction.login, methods=["POST"]),
        Route("/interaction/{token}/decision", interaction.decide, methods=["POST"]),
        Route("/token", token.token, methods=["POST"]),
        Route("/introspect", introspect.introspect, methods=["POST"]),
        Route("/revoke", revoke.revoke, methods=["POST"]),
        Route("/actions", actions.report_action, methods=["POST"]),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
    ]
    if settings.dev_mode:
        routes.append(Route("/dev/callback", dev.dev_callback, methods=["GET"]))
    grants: dict[str, GrantHandler] = {
        "authorization_code": redeem_code,
        "refresh_token": refresh,
    }
    limiter = rate_limiter or rate_limiter_for(settings.rate_limits, store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything built so far (modules, settings, templates, the app) lives as long as
        # the process: out of the collector's reach, a full collection walks only what
        # requests allocate. Without this, one every half second or so took the event loop
        # for 40-60 ms, and that was the whole of the p99 of a push (benchmarks/README.md).
        gc.collect()
        gc.freeze()
        checkpoints = None
        if settings.audit_checkpoint_interval:
            checkpoints = asyncio.create_task(
                checkpoint_periodically(
                    store,
                    settings.issuer,
                    settings.audit_checkpoint_interval,
                    clock,
                    secret=settings.secret_key,
                )
            )
        yield
        if checkpoints is not None:
            checkpoints.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checkpoints
        await limiter.close()
        await store.close()

    handlers = {**exception_handlers(), RateLimited: handle_rate_limited}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    app.state.context = Context(
        settings=settings,
        store=store,
        clock=clock,
        client_keys=client_keys or ClientKeys(),
        rate_limiter=limiter,
    )
    app.state.grants = grants
    # The back-channel endpoints (exact paths, POST only) skip the router (grantline.web.direct).
    direct = {
        ("POST", route.path): route.endpoint
        for route in routes
        if isinstance(route, Route) and route.methods == {"POST"} and "{" not in route.path
    }
    app.add_middleware(DirectRoutes, routes=direct, handlers=handlers)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    app.add_middleware(Observability)
    # Outermost: a refusal costs as little as possible (it brings its own headers and metric).
    app.add_middleware(
        AdmissionLimit,
        limit=settings.max_concurrent_requests,
        wait=settings.admission_wait_ms / 1000,
        hsts=settings.secure_cookies,
    )
    return app


def app_from_environment() -> Starlette:
    """Factory for ``uvicorn --factory``: the instance named by GRANTLINE_DATA_DIR, and the
    issuer in GRANTLINE_ISSUER when the config file sets none (``grantline serve`` sets both)."""
    instance = Instance(resolve_data_dir(None))
    settings = instance.settings(issuer=os.environ.get("GRANTLINE_SERVE_URL"))
    check_schema(settings.database_url)
    return create_app(settings, open_store(settings.database_url))
