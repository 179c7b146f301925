"""Every metric the processes expose, in Prometheus's text format, defined once here (names are a contract with
dashboards and alerts).

Each process has its own registry, so a process's port shows only what it measures (the recordings worker runs
inside the listener, so its metrics are the listener's). Counters count in the process that sees the thing happen;
gauges that read a live object (a queue, a spool, the IVR's children) are bound to it by the composition root
with :meth:`Gauge.set_function` and read at scrape time. The IVR forks per call, but only its parent process
counts (sessions admitted, refused, running): a call's process never touches a metric, so no multiprocess mode.

This module imports nothing from the project: the IVR and the recordings worker use it as part of the core.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import accumulate
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString


class BatchHistogram(Collector):
    """A histogram that takes a batch of values at a time, exposed as :class:`Histogram` exposes one (the same
    buckets, count and sum). Histogram's ``observe`` takes one value per call, each through a lock and a linear
    search of the buckets: for the listener's lag, observed for every event, 0.7 us an event, more than a fiftieth
    of its CPU at full rate; here a batch takes the lock once and each value a bisection."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry) -> None:
        self._name = name
        self._documentation = documentation
        self._bounds = tuple(float(bound) for bound in buckets)  # ascending; +Inf is the last bucket
        self._counts = [0] * (len(self._bounds) + 1)  # values per bucket (not cumulative)
        self._sum = 0.0
        self._lock = threading.Lock()  # observed from the delivery's thread, collected from the metrics server's
        registry.register(self)

    def observe_each(self, values: Iterable[float]) -> None:
        """Observe every value (a negative one as 0, as a lag measured across two clocks may be)."""
        bounds, counts = self._bounds, self._counts
        with self._lock:
            for value in values:
                counts[bisect_left(bounds, value)] += 1  # the first bucket whose bound is >= value ("le")
                if value > 0:
                    self._sum += value

    def collect(self) -> Iterator[HistogramMetricFamily]:
        """The histogram as it stands (cumulative buckets, as Prometheus reads them)."""
        with self._lock:
            counts, total = list(accumulate(self._counts)), self._sum
        # The bounds written as Histogram writes them ("1.0"): a bucket's "le" names its series.
        le = [floatToGoString(bound) for bound in self._bounds]  # type: ignore[no-untyped-call]
        buckets = list(zip(le, counts, strict=False))
        yield HistogramMetricFamily(self._name, self._documentation, buckets=[*buckets, ("+Inf", counts[-1])],
                                    sum_value=total)


LISTENER = CollectorRegistry()
IVR = CollectorRegistry()
API = CollectorRegistry()
NOTIFY = CollectorRegistry()
log = logging.getLogger(__name__)
for _registry in (LISTENER, IVR, API, NOTIFY):
    ProcessCollector(registry=_registry)  # CPU seconds, resident memory, open files of the process

# Seconds from an event in Asterisk to a stored row: milliseconds normally, up to a database outage's length.
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)

# The listener: CEL in, queue and spool, call logs built.
CEL_EVENTS = Counter("callcenter_cel_events", "CEL events received, by source (ami: live, counted as they go to the "
                     "spool, so not those the full queue dropped; file: the backfill reading Asterisk's own CEL "
                     "file, duplicates of journaled events included)", ["source"],
                     registry=LISTENER)
CEL_SKIPPED = Counter("callcenter_cel_events_malformed", "CEL events from AMI skipped as malformed",
                      registry=LISTENER)
CEL_DROPPED = Counter("callcenter_cel_events_dropped", "CEL events from AMI dropped because the queue or the spool "
                      "was full (only the CEL file backfill can bring them back)", registry=LISTENER)
LAG = BatchHistogram("callcenter_listener_lag_seconds", "Seconds from a CEL event's own time in Asterisk to its "
                     "commit in the journal (events from AMI)", buckets=LAG_BUCKETS, registry=LISTENER)
LAST_LAG = Gauge("callcenter_listener_last_lag_seconds", "The lag of the last CEL event from AMI stored",
                 registry=LISTENER)
AMI_CONNECTED = Gauge("callcenter_listener_ami_connected", "1 while the listener's AMI session to this Asterisk "
                      "node is logged in", ["node"], registry=LISTENER)
QUEUE_DEPTH = Gauge("callcenter_listener_queue_depth", "Items between the node's AMI reader and its spool",
                    ["node"], registry=LISTENER)
SPOOL_PENDING = Gauge("callcenter_listener_spool_pending_bytes", "Bytes of the node's CEL events in its spool not "
                      "yet stored (about 1 KB an event)", ["node"], registry=LISTENER)
STORE_FAILURES = Counter("callcenter_listener_store_failures", "Failed attempts to store spooled events (the "
                         "database down or refusing); the events wait in the spool", registry=LISTENER)
CALLS_BUILT = Counter("callcenter_calls_built", "Call logs built and upserted (a rebuild counts again)",
                      registry=LISTENER)
BUILD_FAILURES = Counter("callcenter_call_build_failures", "Call logs whose build or upsert failed (logged with "
                         "the linkedid; retried by a later backfill)", registry=LISTENER)

# The recordings worker (in the listener process).
RECORDINGS = Counter("callcenter_recordings", "Spool WAVs handled, by outcome: stored; empty (no audio); error "
                     "(transcode or disk failure: the WAV is kept and retried); cleaned (already stored)", ["outcome"],
                     registry=LISTENER)
RECORDINGS_BACKLOG = Gauge("callcenter_recordings_backlog", "Closed WAVs in the node's spool waiting to be stored "
                           "at the last scan (due, queued, or failed and waiting for a retry; not those still being "
                           "recorded or being stored)", ["node"], registry=LISTENER)

# The IVR (parent process only).
IVR_SESSIONS = Gauge("callcenter_ivr_sessions", "FastAGI sessions running now (a process each)", registry=IVR)
IVR_ADMITTED = Counter("callcenter_ivr_sessions_admitted", "FastAGI connections admitted", registry=IVR)
IVR_REFUSED = Counter("callcenter_ivr_sessions_refused", "FastAGI connections closed at once because the IVR was "
                      "full (the caller went to the queue)", registry=IVR)
IVR_EVICTED = Counter("callcenter_ivr_greeters_ended", "Sessions still sending their AGI environment, ended to "
                      "make room", registry=IVR)

# The API: latency by route template (never the raw path: ids would make a series each).
HTTP_LATENCY = Histogram("callcenter_http_request_duration_seconds", "Time to answer a request (to the end of the "
                         "body; server-sent event streams last as long as the page stays open)",
                         ["method", "route", "status"], registry=API)
LIVE_AMI_CONNECTED = Gauge("callcenter_api_live_board_ami_connected", "1 while the live board's AMI sessions are "
                           "logged in (with several Asterisk nodes: every node's)", registry=API)

# Notifications.
NOTIFICATIONS = Counter("callcenter_notifications", "Delivery attempts, by outcome (sent; failed: tried again "
                        "later; given_up: failed for the last time)", ["outcome"], registry=NOTIFY)
NOTIFICATIONS_PENDING = Gauge("callcenter_notifications_pending", "Messages in the outbox not yet delivered and "
                              "not given up (at the last pass)", registry=NOTIFY)


def serve(registry: CollectorRegistry, host: str, port: int) -> WSGIServer | None:
    """Serve ``registry`` on ``host:port`` from a daemon thread (any path answers); None when ``port`` is 0 or
    cannot be bound: a process without its metrics still does its work (the call log matters more), and says so
    loudly; Prometheus sees the target down."""
    if not port:
        return None
    try:
        server, _thread = start_http_server(port, host, registry)
    except OSError as exc:
        log.error("metrics: cannot serve on %s:%d (%s); running without metrics", host, port, exc)
        return None
    log.info("metrics: serving on http://%s:%d/metrics", host, port)
    return server
