"""The API's and web app's composition root: ``create_app(settings, db, model)``.

Middleware, outermost first: allowed host names (against DNS rebinding), security headers, no NUL character in a
path, query or url-encoded form (PostgreSQL's text cannot store one), CSRF on every form
post (a signed double-submit cookie; bearer-token requests and the cookie-less Open311 API are exempt), signed
session cookies. Then the JSON API under /api, the Open311 API under /open311/v2, the pages, the vendored static
assets and the self-hosted API docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware

from callcenter.api import calls, recordings
from callcenter.cases.open311 import routes as open311
from callcenter.live.feed import LiveFeed
from callcenter.model.hotline import HotlineModel, load
from callcenter.ops import health as probes
from callcenter.ops import web as ops_web
from callcenter.ops.metrics import LIVE_AMI_CONNECTED
from callcenter.settings import Settings
from callcenter.store.db import Database
from callcenter.web.audit import AnonymousLimit
from callcenter.web.auth import SignInRequired
from callcenter.web.csrf import CsrfProtection
from callcenter.web.nul import NoNul
from callcenter.web.pages import ENV, STATIC, render
from callcenter.web.routes import account, admin, board, cases, desk, history, sign_in, worklist
from callcenter.web.security import SecurityHeaders
from callcenter.web.throttle import SignInThrottle

log = logging.getLogger(__name__)
SESSION_COOKIE = "hotline_session"


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _invalid(errors: Sequence[Any]) -> Response:
    """FastAPI's documented 422 shape, written in ASCII so that an input which is no valid Unicode (a lone
    surrogate sent as ``"\\ud800"``) is echoed escaped; an input JSON has no number for (``1e999``, ``NaN``) is
    left out rather than failing the answer."""
    detail = jsonable_encoder(errors)
    dump = partial(json.dumps, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    try:
        body = dump({"detail": detail})
    except ValueError:
        body = dump({"detail": [{k: v for k, v in error.items() if k != "input"} for error in detail]})
    return Response(body, status_code=422, media_type="application/json")


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(SignInRequired)
    async def to_sign_in(request: Request, exc: SignInRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/sign-in?next={target}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        return _invalid(exc.errors())

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _wants_html(request):
            return render(request, "error.html", status=exc.status_code, title=str(exc.status_code),
                          heading=str(exc.status_code), message=str(exc.detail))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def _middleware(app: FastAPI, settings: Settings, model: Callable[[], HotlineModel]) -> None:
    api = settings.api
    app.add_middleware(ops_web.RequestMetrics)  # innermost: the matched route is still in the scope
    app.add_middleware(SessionMiddleware, secret_key=api.session_secret, session_cookie=SESSION_COOKIE,
                       max_age=int(api.session_max_hours * 3600), same_site="lax", https_only=api.secure_cookies)
    files = settings.cases
    app.add_middleware(CsrfProtection, secret=api.session_secret, secure=api.secure_cookies,
                       max_upload=files.attachments_per_update * files.attachment_max_bytes + 1024 * 1024)
    app.add_middleware(NoNul)  # before the CSRF check reads a form
    app.add_middleware(SecurityHeaders, connect=lambda: model().pbx.wss_origin)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=api.allowed_hosts)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The live board's AMI session runs as long as the app (when enabled)."""
    task = None
    if app.state.settings.api.live_board:
        app.state.live = feed = LiveFeed(app.state.settings, app.state.model, app.state.db)
        LIVE_AMI_CONNECTED.set_function(lambda: float(feed.connected))
        task = asyncio.create_task(app.state.live.run(), name="live-board")
    else:
        log.warning("api: the live board is off (api.live_board): no AMI session follows the nodes, so a node that "
                    "comes back is not given the desk changes it missed nor the standing pauses")
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_app(settings: Settings, db: Database, model: Callable[[], HotlineModel] | None = None) -> FastAPI:
    """Build the app over one database and the telephony model (read from the settings' file when not given)."""
    app = FastAPI(title="callcenter", summary="Citizens' hotline: call history API", version="0.2.0",
                  docs_url=None, redoc_url=None, lifespan=_lifespan)
    if model is None:
        fixed = load(settings.model_file)
        model = lambda: fixed  # noqa: E731
    app.state.settings, app.state.db, app.state.model = settings, db, model
    app.state.throttle = SignInThrottle(settings.api)
    app.state.anonymous_audit = AnonymousLimit()
    for router in (calls.router, recordings.router, board.api, desk.api, sign_in.router, history.router,
                   account.router, admin.router, board.router, desk.router, worklist.router, cases.router,
                   open311.router, probes.router, ops_web.router):
        app.include_router(router)
    desk.document_topics(app, lambda: list(app.state.model().topic_codes))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app)
    _middleware(app, settings, model)

    @app.get("/api/health", tags=["operations"], summary="Liveness and database reachability")
    def health() -> dict[str, str]:
        with db.session() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "icon.svg", media_type="image/svg+xml")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(ENV.get_template("docs.html").render())

    return app
