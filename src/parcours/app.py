"""The FastAPI application factory: every context's `/v1` router and console pages."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from parcours import __version__, loyalty, orders, registry
from parcours.core.clock import SYSTEM_CLOCK, Clock
from parcours.core.db import Database, DatabaseUnavailable
from parcours.core.errors import ParcoursError, ServiceUnavailable
from parcours.core.events import run_worker
from parcours.core.http import (
    RequestContextMiddleware,
    install_problem_handlers,
    problem_response,
)
from parcours.core.migrate import pending
from parcours.core.settings import Settings, get_settings
from parcours.web import pages as shell_pages
from parcours.web.console import LoginRequired, login_redirect_url, optional_console, render

DESCRIPTION = """\
REST API of Parcours, the omnichannel retail platform.

Authenticate with an API key: `Authorization: Bearer <key>` (or HTTP Basic with the key
as user name, as Segment clients do). Errors are RFC 9457 `application/problem+json`.
"""


def create_app(
    settings: Settings | None = None,
    db: Database | None = None,
    clock: Clock = SYSTEM_CLOCK,
    run_consumers: bool = False,
) -> FastAPI:
    """Build the application; `run_consumers` starts the event worker with it."""
    settings = settings or get_settings()
    db = db or Database.connect(settings.resolved_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        worker = None
        if run_consumers:
            worker = threading.Thread(
                target=run_worker,
                args=(db, registry.consumers(), clock, stop, settings.worker_poll_s),
                kwargs={"jobs": registry.periodic_jobs()},
                name="parcours-worker",
                daemon=True,
            )
            worker.start()
        yield
        stop.set()
        if worker is not None:
            worker.join(timeout=10)

    app = FastAPI(
        title="Parcours",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN; ours is vendored
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.clock = clock
    app.state.home_counters = registry.home_counters()
    app.state.stock_lookup = registry.stock_lookup()
    app.state.timeline_sources = registry.timeline_sources()
    app.state.personal_data_handlers = registry.personal_data_handlers()
    # Carts are priced only in the app: promotions and promo codes come from loyalty.
    orders.set_promotion_hook(loyalty.promotion_engine())

    install_problem_handlers(app)
    app.add_exception_handler(LoginRequired, _to_login)
    app.state.error_page = _console_error_page
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)

    _add_probes(app)
    for router in registry.api_routers():
        app.include_router(router)
    app.include_router(shell_pages.router)
    for router in registry.page_routers():
        app.include_router(router)
    static_dir = resources.files("parcours").joinpath("web/static")
    app.mount("/static", StaticFiles(directory=str(static_dir)), name="static")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Parcours API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    return app


def _add_probes(app: FastAPI) -> None:
    @app.get("/health", tags=["probes"], summary="Liveness: the process answers")
    async def health() -> dict[str, str]:  # no I/O: async skips the thread-pool hop
        return {"status": "ok", "version": __version__}

    @app.get("/ready", tags=["probes"], summary="Readiness: the database answers and is migrated")
    def ready(request: Request) -> Response:
        db: Database = request.app.state.db  # read per request, as the routes' dependencies do
        try:
            db.ping()
            if pending(db):
                raise ServiceUnavailable(
                    "The database schema is not up to date: run `parcours init`."
                )
        except DatabaseUnavailable as exc:
            return problem_response(ServiceUnavailable(str(exc)))
        except ServiceUnavailable as exc:
            return problem_response(exc)
        return JSONResponse({"status": "ready", "database": db.dialect})


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    url = login_redirect_url(exc.next_url, exc.expired)
    if request.headers.get("hx-request"):
        # HTMX follows redirects inside the fragment; ask it to navigate the page instead.
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _console_error_page(request: Request, exc: ParcoursError) -> Response | None:
    """Browsers on console pages get an HTML error page; API callers get None (problem+json)."""
    accept = request.headers.get("accept", "")
    if not request.url.path.startswith("/console") or "text/html" not in accept:
        return None
    db: Database = request.app.state.db
    with db.transaction() as session:
        context = optional_console(
            request, session, request.app.state.clock, request.app.state.settings
        )
        return render(request, context, "error.html", status_code=exc.status, error=exc)
