"""Builds the ASGI application: ingestion, REST API, the web tracker, health."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware

from threadline import __version__
from threadline.accounts import SESSION_IDLE_LIMIT
from threadline.api import (
    admin,
    audit,
    calls,
    cdn_settings,
    chat,
    consents,
    contact_plans,
    conversations,
    destinations,
    errors,
    follow_ups,
    golden,
    ingestion,
    insight,
    jobs,
    journeys,
    loyalty,
    messages,
    privacy_requests,
    profiles,
    resolution,
    retention,
    routing,
    sales,
    sales_reports,
    scores,
    segments,
    service,
    service_webhooks,
    tokens,
    wukong,
)
from threadline.api.rate_limits import ingestion_buckets, sign_in_buckets
from threadline.api.responses import JSONResponse
from threadline.clock import Clock, utcnow
from threadline.config import Settings, get_settings
from threadline.ingest import IngestWriter, WriteKeys
from threadline.jobs import WorkerThread
from threadline.storage import Database
from threadline.web import (
    account_pages,
    audit_pages,
    auth_pages,
    call_pages,
    consent_pages,
    contact_plan_pages,
    custom_field_pages,
    customer_pages,
    destination_pages,
    duplicate_pages,
    golden_pages,
    inbox_pages,
    insight_pages,
    insight_panel,
    journey_pages,
    loyalty_pages,
    message_pages,
    pipeline_pages,
    pool_settings_pages,
    preference_pages,
    privacy_pages,
    report_pages,
    retention_pages,
    routing_pages,
    sales_pages,
    sales_report_pages,
    schedule_pages,
    segment_pages,
    service_pages,
    source_pages,
    team_pages,
    tracking_pages,
    wukong_pages,
)
from threadline.web.security_headers import SecurityHeaders
from threadline.web.session import LoginRequired

STATIC = Path(__file__).parent / "web" / "static"
# Every router of the app, in order; tests/test_auth_required.py walks them.
ROUTERS = (
    ingestion.router,
    cdn_settings.router,
    profiles.router,
    admin.router,
    tokens.router,
    audit.router,
    resolution.router,
    jobs.router,
    golden.router,
    retention.router,
    consents.router,
    messages.router,
    conversations.router,
    calls.router,
    chat.router,
    service_webhooks.router,
    insight.router,
    scores.router,
    segments.router,
    journeys.router,
    service.router,
    routing.router,
    privacy_requests.router,
    auth_pages.router,
    customer_pages.router,
    duplicate_pages.router,
    golden_pages.router,
    retention_pages.router,
    report_pages.router,
    pool_settings_pages.router,
    custom_field_pages.router,
    pipeline_pages.router,
    privacy_pages.router,
    source_pages.router,
    account_pages.router,
    team_pages.router,
    preference_pages.router,
    audit_pages.router,
    consent_pages.router,
    message_pages.router,
    tracking_pages.router,
    inbox_pages.router,
    call_pages.router,
    insight_pages.router,
    insight_panel.router,
    service_pages.router,
    routing_pages.router,
    loyalty.router,
    loyalty_pages.router,
    segment_pages.router,
    journey_pages.router,
    follow_ups.router,
    schedule_pages.router,
    # Before sales' routers: their /{plural}/{id} paths would otherwise take the reports' paths.
    sales_reports.router,
    sales_report_pages.router,
    sales.router,
    sales_pages.router,
    wukong.router,
    wukong_pages.router,
    contact_plans.router,
    contact_plan_pages.router,
    destinations.router,
    destination_pages.router,
)


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock = utcnow,
    worker: bool = False,
) -> FastAPI:
    """The app; with `worker`, the background worker runs in a thread for the app's lifetime
    (`threadline serve` without --no-worker)."""
    settings = settings or get_settings()
    database = db or Database(settings.database_url)
    writer = IngestWriter(database, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if worker:
            app.state.worker = WorkerThread(database, settings, clock=clock)
            app.state.worker.start()
        yield
        if app.state.worker is not None:
            await run_in_threadpool(app.state.worker.stop)  # its job finishes or goes back in the queue
        await run_in_threadpool(writer.close)  # let the last group commit before the process exits

    app = FastAPI(
        lifespan=lifespan,
        title="Threadline",
        version=__version__,
        description="Omnichannel CRM and customer data platform: ingestion, identity, unified profiles.",
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.state.db = database
    app.state.ingest_writer = writer
    app.state.clock = clock
    app.state.worker = None
    app.state.write_keys = WriteKeys(app.state.db)
    # Per server process (api/rate_limits.py): per write key for ingestion, per client IP for sign-in.
    app.state.ingest_limits = ingestion_buckets(settings.ingest_rate_limit, settings.ingest_rate_burst)
    app.state.sign_in_limits = sign_in_buckets(settings.login_rate_limit)
    # Browsers post events from the customer's own site; the write key, not a cookie, authorises them.
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"]
    )
    # Without a configured secret, sessions (and invitation links) last as long as the process.
    secret_key = settings.secret_key or secrets.token_urlsafe(32)
    # Also signs invitation links (web/account_pages.py) and keys the failure counts of unknown emails
    # (web/auth_pages.py), which every process of the workspace must share.
    app.state.secret_key = secret_key
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="tl_session",
        same_site="lax",
        https_only=settings.secure_cookies,
        # The cookie lapses after as long without a request as the session does (accounts/sessions.py).
        max_age=int(SESSION_IDLE_LIMIT.total_seconds()),
    )
    # Outermost, so every answer carries them: pages, APIs, static files, errors (web/security_headers.py).
    app.add_middleware(SecurityHeaders)
    errors.install(app)

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, error: LoginRequired) -> RedirectResponse:
        return RedirectResponse(f"/login?next={quote(error.next_url)}", status_code=303)

    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with app.state.db.read() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
