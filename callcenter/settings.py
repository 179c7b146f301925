"""One typed settings object for every callcenter process.

Values come from the environment (``CALLCENTER_<SECTION>__<FIELD>``, e.g. ``CALLCENTER_AMI__SECRET``) or a ``.env``
file. Every default is a safe development default for the loopback sandbox; the README lists them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callcenter.model.addresses import Address, ParsedAddress

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NODE_NAME = r"^[A-Za-z0-9_.-]{1,64}$"  # stored on every record; part of the spool's file name


class AmiSettings(BaseModel):
    """The listener's AMI session (Asterisk's address is the model's ``pbx.ami``)."""

    username: str = "callcenter"
    secret: str = "hotline-dev-ami"
    node: str = Field(default="sandbox", pattern=NODE_NAME)  # which Asterisk (without `nodes`); on every call
    timezone: str = "UTC"  # Asterisk's local time zone: AMI's CEL EventTime is local time to the second
    ping_interval: float = 5.0  # seconds between liveness pings
    ping_timeout: float = 5.0  # a ping unanswered this long means the link is dead
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    cel_file: Path = PROJECT_ROOT / ".sandbox/root/var/log/asterisk/cel-custom/cel_callcenter.json"
    backfill_interval: float = 30.0  # seconds between periodic backfills from the CEL file
    # An AMI message longer than this without its blank line is dropped (logged) and reading resumes after the
    # next blank line; a CEL event is about 1 KB.
    max_message_chars: int = Field(default=1024 * 1024, ge=4096)


class NodeSettings(BaseModel):
    """One Asterisk the listener follows (``nodes``): its name, stored on every call, CEL event and recording; its
    AMI address; and where this machine reads its CEL file and its MixMonitor spool (local, or shared storage)."""

    name: str = Field(pattern=NODE_NAME)
    ami: Annotated[Address, ParsedAddress]
    cel_file: Path
    spool: Path
    timezone: str | None = None  # Asterisk's local time zone there; default: ami.timezone


class ListenerSettings(BaseModel):
    """How the listener keeps CEL events until they are stored, and reads Asterisk's CEL file (``ami.cel_file``)."""

    # The spool: CEL events from AMI wait here (fsynced JSON lines) until the database has committed them. Default
    # folder: next to a SQLite database file, else the project's var/. Full: newer events are dropped, loudly.
    spool_dir: Path | None = None
    spool_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    queue_max: int = Field(default=10_000, ge=1)  # AMI events between the reader and the spool
    retry_min: float = Field(default=1.0, gt=0)  # seconds before the first retry of a failed store; doubles
    retry_max: float = Field(default=60.0, gt=0)

    # The backfill reads and commits the CEL file in steps of at most this many lines or bytes (memory stays
    # bounded by one step; the saved position advances only when a step is committed).
    backfill_chunk_lines: int = Field(default=5000, ge=1)
    backfill_chunk_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)
    # Seconds between asking Asterisk which calls it still has (and at every login): a call that never ended and
    # that Asterisk no longer has was lost to a restart or crash, and is logged as cut.
    live_check: float = Field(default=60.0, ge=1.0)


class DbSettings(BaseModel):
    """Where the call log lives: SQLite (WAL) by default, PostgreSQL by URL."""

    url: str = f"sqlite:///{PROJECT_ROOT / 'var/callcenter.db'}"
    # PostgreSQL: seconds to wait for a connection before failing (libpq's minimum is 2), so a dead server fails
    # fast instead of hanging a worker thread. SQLite waits on locks by its own busy timeout instead.
    connect_timeout: int = Field(default=5, ge=2)


class ApiSettings(BaseModel):
    """The API and the web pages: where they listen, sign-in and sessions, list bounds."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Host names the app answers to (anything else: 400), against DNS rebinding. Add the deployment's own name.
    allowed_hosts: list[str] = Field(default_factory=lambda: ["127.0.0.1", "localhost"])
    page_size_default: int = 50
    page_size_max: int = 500
    max_range_days: int = 366
    session_secret: str = "hotline-dev-session"  # signs session and CSRF cookies
    session_idle_minutes: float = Field(default=30.0, gt=0)  # signed out after this long without a request
    session_max_hours: float = Field(default=12.0, gt=0)  # and after this long whatever happens
    secure_cookies: bool = False  # set under TLS (cookies then only travel over HTTPS)
    sign_in_failures_per_account: int = Field(default=5, ge=1)  # failed sign-ins within the window, then locked
    sign_in_failures_per_address: int = Field(default=20, ge=1)
    sign_in_window_minutes: float = Field(default=15.0, gt=0)  # the window, and how long a lock-out lasts
    default_language: Literal["vi", "en"] = "vi"
    default_timezone: str = "Asia/Ho_Chi_Minh"
    live_board: bool = True  # the API process keeps its own AMI session for the live board
    # That session's AMI user: it reads every call and queue event, where the listener's user (ami.username) gets
    # CEL only (an eventfilter), so the listener never parses what it does not use.
    live_username: str = "callcenter-live"
    live_secret: str = "hotline-dev-live"
    # /readyz answers 503 when AMI is down (the live board's session, or Asterisk's AMI port without it); false:
    # it reports AMI but only the database decides (a PBX outage then leaves history and cases served).
    ready_needs_ami: bool = True


class PbxSettings(BaseModel):
    """Secrets and places for the Asterisk configuration rendered from the model (never in the repository)."""

    # Every endpoint's SIP password is derived from this key and the endpoint's id (`callcenter operators password`).
    sip_secret: str = "hotline-dev-sip"
    # The AMI user that reloads configuration (and, later, originates calls and manages queue members).
    control_username: str = "callcenter-control"
    control_secret: str = "hotline-dev-control"
    # Where `callcenter asterisk reload` writes the rendered configuration (the sandbox's by default).
    config_dir: Path = PROJECT_ROOT / ".sandbox/root/etc/asterisk"
    # asterisk.conf's systemname for the node this configuration is rendered for: its call ids then start with
    # "<systemname>-", so calls of several Asterisk nodes never share an id. Empty: none (a single node).
    systemname: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_-]{0,31})?$")


class RecordingsSettings(BaseModel):
    """Where MixMonitor writes, how recordings are compressed and kept, and for how long."""

    spool: Path = PROJECT_ROOT / ".sandbox/root/var/spool/asterisk/monitor"  # <linkedid>/<uniqueid>.wav
    store: Path = PROJECT_ROOT / "var/recordings"  # <YYYY>/<MM>/<DD>/<node>/<linkedid>-<uniqueid>.<ext>
    format: Literal["opus", "mp3"] = "opus"  # Opus in Ogg, or MP3
    bitrate: str = "24k"  # explicit encoder bitrate
    # WAVs transcoded at once, each by its own ffmpeg: one per core up to two by default, so that Asterisk, the
    # listener and the IVR on the same machine keep CPU when a burst of calls ends (16 at most: each worker also
    # takes a connection from the database pool now and then).
    workers: int = Field(default_factory=lambda: min(2, os.cpu_count() or 1), ge=1, le=16)
    retention_days: int = Field(default=365, ge=1)
    scan_interval: float = 2.0  # seconds between spool scans
    settle_seconds: float = 3.0  # a WAV of a finished call must be this old (MixMonitor closes it after hangup)
    orphan_seconds: float = 4 * 3600.0  # a WAV untouched this long, with no call log, was left by a crash
    retry_min: float = 30.0  # first retry after a failure; doubles up to retry_max
    retry_max: float = 3600.0
    purge_interval: float = 3600.0  # seconds between retention purges


class CasesSettings(BaseModel):
    """Files posted with a case's progress or result: where they are kept and how large they may be."""

    attachments: Path = PROJECT_ROOT / "var/attachments"  # <sha256[:2]>/<sha256> (folders 0700, files 0600)
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # per file
    attachments_per_update: int = Field(default=5, ge=1, le=20)


class NotifySettings(BaseModel):
    """How departments are told of cases (``callcenter notify``): the SMTP relay, the webhooks' signing key and
    the retry schedule. The addresses themselves are the model's ``[departments.*] email`` and ``webhook``."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False  # STARTTLS before signing in (set for any relay that is not on this host)
    smtp_username: str = ""  # empty: no SMTP sign-in
    smtp_password: str = ""
    sender: str = "hotline@localhost"  # the From: address
    # Signs each webhook body (header X-Callcenter-Signature: sha256=<HMAC of the body>) so the receiver can
    # tell it came from the hotline.
    webhook_secret: str = "hotline-dev-webhook"
    base_url: str = "http://127.0.0.1:8000"  # where the case pages are, for the link in each message
    language: Literal["vi", "en"] = "vi"  # of the e-mails
    interval: float = Field(default=5.0, gt=0)  # seconds between looks at the outbox (and for overdue cases)
    timeout: float = Field(default=10.0, gt=0)  # seconds one delivery may take
    lease_seconds: float = Field(default=120.0, gt=0)  # a claimed row is another worker's after this long
    retry_min: float = Field(default=30.0, gt=0)  # first retry after a failure; doubles up to retry_max
    retry_max: float = Field(default=3600.0, gt=0)
    give_up_hours: float = Field(default=72.0, gt=0)  # a message still undelivered this long after it was queued


class MetricsSettings(BaseModel):
    """Where the listener, the IVR and the notifications worker serve their Prometheus metrics (0: not at all). The
    API serves its own at ``/metrics`` on its port (loopback clients and staff only)."""

    host: str = "127.0.0.1"  # metrics reveal call volumes: keep them off public addresses
    listener_port: int = Field(default=9311, ge=0, le=65535)
    ivr_port: int = Field(default=9312, ge=0, le=65535)
    notify_port: int = Field(default=9313, ge=0, le=65535)


class SandboxSettings(BaseModel):
    """The development Asterisk sandbox (``make asterisk``); its passwords live here and nowhere else."""

    root: Path = PROJECT_ROOT / ".sandbox/root"
    suite: str = "sid"
    admin_username: str = "sandbox"  # AMI user for tests (kick sessions, set globals): sandbox only
    admin_secret: str = "hotline-dev-admin"


class Settings(BaseSettings):
    """All settings, one section per part of the system."""

    model_config = SettingsConfigDict(
        env_prefix="CALLCENTER_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    # The telephony model: lines, topics, operators, queues, addresses (see hotline.toml).
    model_file: Path = PROJECT_ROOT / "hotline.toml"
    ami: AmiSettings = Field(default_factory=AmiSettings)
    listener: ListenerSettings = Field(default_factory=ListenerSettings)
    db: DbSettings = Field(default_factory=DbSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    pbx: PbxSettings = Field(default_factory=PbxSettings)
    recordings: RecordingsSettings = Field(default_factory=RecordingsSettings)
    cases: CasesSettings = Field(default_factory=CasesSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    sandbox: SandboxSettings = Field(default_factory=SandboxSettings)
    # Several Asterisk nodes (a JSON list in CALLCENTER_NODES): the listener keeps one AMI session, CEL-file
    # backfill, spool and recordings worker per node. Empty: one node, ``ami.node`` at the model's ``pbx.ami``,
    # reading ``ami.cel_file`` and ``recordings.spool``.
    nodes: list[NodeSettings] = Field(default_factory=list)

    @model_validator(mode="after")
    def _distinct_nodes(self) -> Settings:
        names = [node.name for node in self.nodes]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"nodes: each name once; repeated: {', '.join(twice)}")
        return self

    def node_spools(self) -> dict[str, Path]:
        """Each node's MixMonitor spool, by node name."""
        if self.nodes:
            return {node.name: node.spool for node in self.nodes}
        return {self.ami.node: self.recordings.spool}

    def listener_nodes(self, model_ami: Address) -> list[NodeSettings]:
        """The nodes the listener follows (``nodes``, or the one node of ``ami`` at the model's AMI address)."""
        if self.nodes:
            return list(self.nodes)
        return [NodeSettings(name=self.ami.node, ami=model_ami, cel_file=self.ami.cel_file,
                             spool=self.recordings.spool, timezone=self.ami.timezone)]
