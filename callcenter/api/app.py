"""The API's composition root: ``create_app(settings, db)``."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import text

from callcenter.api import calls, recordings
from callcenter.settings import Settings
from callcenter.store.db import Database


def create_app(settings: Settings, db: Database) -> FastAPI:
    """Build the FastAPI app over one database; OpenAPI docs at /docs."""
    app = FastAPI(title="callcenter", summary="Citizens' hotline: call history API", version="0.1.0")
    app.state.settings = settings
    app.state.db = db
    app.include_router(calls.router)
    app.include_router(recordings.router)

    @app.get("/api/health", tags=["operations"], summary="Liveness and database reachability")
    def health() -> dict[str, str]:
        with db.session() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
