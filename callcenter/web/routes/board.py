"""The live board (a page and its server-sent events) and the statistics page, for supervisors and admins."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sse_starlette.sse import EventSourceResponse

from callcenter.api.calls import DAY, ERRORS, NOT_A_DATE, invalid
from callcenter.api.schemas import LiveOut, StatsOut
from callcenter.store import queries
from callcenter.store.stats import statistics
from callcenter.web.auth import STAFF, Principal, require
from callcenter.web.i18n import translations
from callcenter.web.pages import json_block, live_feed, render

router = APIRouter(include_in_schema=False)
StaffPage = Annotated[Principal, Depends(require(*STAFF, page=True))]
api = APIRouter(prefix="/api", tags=["live and statistics"])
StaffApi = Annotated[Principal, Depends(require(*STAFF))]
ZONES = sorted(available_timezones())


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, who: StaffPage) -> HTMLResponse:
    """Calls in the voice menu, waiting and in conversation; operators' states; today's counts."""
    model = request.app.state.model()
    topics = {t.code: t.label.get(who.language) for t in model.topics}
    words = translations(who.language)
    labels = {key: words.gettext(key)
              for key in ("free", "ringing", "on_call", "paused", "unreachable", "logged_out")}
    return render(request, "live.html", title="Live", topics_json=json_block(topics),
                  words_json=json_block({**labels, "none": words.gettext("None")}))


@router.get("/live/events")
async def live_events(request: Request, who: StaffPage) -> EventSourceResponse:
    """The board's snapshots as server-sent events: one now, then one per change."""
    feed = live_feed(request)

    async def stream() -> AsyncIterator[dict[str, str]]:
        if feed is None:
            yield {"event": "board", "data": json.dumps({"connected": False, "calls": {}, "operators": []})}
            return
        async for data in feed.subscribe():
            if await request.is_disconnected():
                return
            yield {"event": "board", "data": data}

    return EventSourceResponse(stream(), ping=15)


@api.get("/live", summary="The live board now (calls by stage, operators' states, today's counts)",
         response_model=LiveOut, responses=ERRORS)
def live_now(request: Request, who: StaffApi) -> dict[str, Any]:
    """The same snapshot the board page shows."""
    feed = live_feed(request)
    return feed.snapshot() if feed is not None else {"connected": False}


def local_days(start: str, end: str, zone: ZoneInfo, max_days: int) -> tuple[datetime, datetime]:
    """The UTC bounds of whole local days ``start``..``end`` (both included; default: the last seven days)."""
    today = datetime.now(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        first = datetime.fromisoformat(start).replace(tzinfo=zone) if start else today - timedelta(days=6)
        last = datetime.fromisoformat(end).replace(tzinfo=zone) if end else today
        if first.year < 1900 or last.year > 2999:
            raise ValueError
        bounds = first.astimezone(UTC), (last + timedelta(days=1)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{NOT_A_DATE}: expected dates such as 2026-11-30") from None
    if last < first or (last - first).days >= max_days:
        raise ValueError(f"the date range must run forward and be at most {max_days} days")
    return bounds


@router.get("/stats", response_class=HTMLResponse)
def stats_page(request: Request, who: StaffPage, start: Annotated[str, Query(alias="from", max_length=10)] = "",
               end: Annotated[str, Query(alias="to", max_length=10)] = "",
               bucket: Annotated[Literal["hour", "day", "week"], Query()] = "day",
               line: Annotated[str, Query(max_length=20)] = "") -> HTMLResponse:
    """Calls per hour, day or week by outcome; wait and talk times by line, topic and operator; charts."""
    zone, settings, model = ZoneInfo(who.timezone), request.app.state.settings.api, request.app.state.model()
    form = {"start": start, "end": end, "bucket": bucket, "line": line}
    try:
        since, until = local_days(start, end, zone, settings.max_range_days)
    except ValueError as exc:
        return render(request, "stats.html", status=422, title="Statistics", form=form, problem=str(exc),
                      stats=None, chart="{}", lines=[], topics={})
    where = queries.CallFilter(start=since, end=until, line=line or None)
    with request.app.state.db.session() as session:
        found = statistics(session, where, bucket, zone)
    chart = {"labels": [label for label, _ in found.buckets],
             "series": {name: [counts.get(name, 0) for _, counts in found.buckets]
                        for name in ("answered", "abandoned", "missed", "other")}}
    form |= {"start": start or (since.astimezone(zone)).date().isoformat(),
             "end": end or (until.astimezone(zone) - timedelta(days=1)).date().isoformat()}
    return render(request, "stats.html", title="Statistics", form=form, problem="", stats=found,
                  chart=json_block(chart), lines=[(n, line_.name) for n, line_ in model.lines.items()],
                  topics={t.code: t.label.get(who.language) for t in model.topics})


@api.get("/stats", summary="Statistics of a date range (buckets in the given time zone)", response_model=StatsOut,
         responses=ERRORS)
def stats_api(request: Request, who: StaffApi,
              start: Annotated[str, Query(alias="from", pattern=f"^{DAY}$", description="first local day")],
              end: Annotated[str, Query(alias="to", pattern=f"^{DAY}$", description="last local day (included)")],
              bucket: Annotated[Literal["hour", "day", "week"], Query()] = "day",
              timezone: Annotated[str, Query(max_length=64, json_schema_extra={"enum": ZONES},
                                             description="IANA time zone of the days and buckets")]
              = "Asia/Ho_Chi_Minh") -> dict[str, Any]:
    """Counts by outcome per bucket, and wait/talk averages and 90th percentiles overall and by dimension."""
    if timezone not in ZONES:
        raise invalid("timezone", timezone, "unknown time zone; expected an IANA name such as Asia/Ho_Chi_Minh")
    zone = ZoneInfo(timezone)
    try:
        since, until = local_days(start, end, zone, request.app.state.settings.api.max_range_days)
    except ValueError as exc:
        raise invalid("from", start, str(exc)) from None
    with request.app.state.db.session() as session:
        found = statistics(session, queries.CallFilter(start=since, end=until), bucket, zone)
    return {"buckets": [{"label": label, **counts} for label, counts in found.buckets],
            "total": asdict(found.total), "by": {k: [asdict(g) for g in v] for k, v in found.by.items()}}
