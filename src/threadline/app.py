"""Builds the ASGI application: ingestion, REST API, the web tracker, health."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from threadline import __version__
from threadline.api import admin, errors, ingestion, profiles
from threadline.api.responses import JSONResponse
from threadline.clock import Clock, utcnow
from threadline.config import Settings, get_settings
from threadline.ingest import WriteKeys
from threadline.storage import Database

STATIC = Path(__file__).parent / "web" / "static"


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, clock: Clock = utcnow
) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="Threadline",
        version=__version__,
        description="Omnichannel CRM and customer data platform: ingestion, identity, unified profiles.",
        default_response_class=JSONResponse,
    )
    app.state.settings = settings
    app.state.db = db or Database(settings.database_url)
    app.state.clock = clock
    app.state.write_keys = WriteKeys(app.state.db)
    # Browsers post events from the customer's own site; the write key, not a cookie, authorises them.
    app.add_middleware(
        CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"], allow_headers=["*"]
    )
    errors.install(app)
    app.include_router(ingestion.router)
    app.include_router(profiles.router)
    app.include_router(admin.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        with app.state.db.read() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
