"""The configuration of ``rarebird serve``: a TOML file, command-line flags, or both.

The file's tables and keys are documented in the example shipped with the package
(``rarebird/examples/rarebird.toml``, :func:`example_path`). Every value is checked when the
file is read; a mistake is a :class:`~rarebird.errors.DefinitionError` naming the file and the
key (``rarebird.toml: http.max_body_bytes: not a byte size ...``). Relative paths in the file
are relative to the file's folder. Flags given on the command line override the file
(:meth:`ServeConfig.override`).

Everything here is a frozen value: the service never changes its configuration while running.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from rarebird.definitions.profile_settings import ProfileSettings, settings_from
from rarebird.definitions.reader import CONFIG_WORDING, Reader, relative_to_file
from rarebird.errors import DefinitionError

LOG_LEVELS = ("debug", "info", "warning", "error")
IDENTITIES = ("user", "login")


def example_path() -> str:
    """Filesystem path of the documented example configuration shipped with rarebird."""
    return str(resources.files("rarebird").joinpath("examples/rarebird.toml"))


@dataclass(frozen=True, slots=True)
class FollowConfig:
    """One followed input: a file (tailed by name), a folder of logs, ``-`` or a FIFO."""

    path: str
    #: ``auto`` (sniffed from the first lines) or a registered input format
    format: str = "auto"
    #: for a folder: which file names to follow (``fnmatch``), e.g. ``audit.log*``
    pattern: str = "*"
    #: the name used in reports and metrics (default: the path)
    name: str = ""
    host_name: str | None = None
    passwd: str | None = None
    group: str | None = None
    identity: str = "user"

    @property
    def label(self) -> str:
        return self.name or self.path


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """The HTTP endpoint: ``/healthz``, ``/metrics`` and the authenticated NDJSON ingest."""

    #: ``HOST:PORT`` to listen on; None: no HTTP endpoint at all
    listen: str | None = None
    #: bearer token of ``POST /ingest``; None: ingest is refused (health and metrics still work)
    token: str | None = field(default=None, repr=False)
    #: or a file holding it, or an environment variable holding it (read at start)
    token_file: str | None = None
    token_env: str | None = None
    max_body_bytes: int = 64 * 1024 * 1024
    max_events: int = 100_000
    #: the request line and headers, then the body, must arrive within these
    header_timeout: timedelta = timedelta(seconds=10)
    body_timeout: timedelta = timedelta(seconds=60)
    #: open connections at once (more: 503 and closed)
    max_connections: int = 100
    #: request bodies held in memory at once, and batches waiting for a commit (more: 429)
    max_inflight_bytes: int = 128 * 1024 * 1024
    max_queued_batches: int = 16
    #: the identity ingested events are modelled with: ``user`` (Elastic's) or ``login``
    identity: str = "user"
    #: also serve the triage pages (``rarebird ui``) on this listener
    pages: bool = False
    #: the configuration file (for error messages)
    source: str = ""

    def resolve_token(self) -> str | None:
        """The ingest token, read from its file or environment variable when so configured."""
        where = self.source or "<config>"
        token = self.token
        if self.token_file is not None:
            try:
                token = Path(self.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise DefinitionError(
                    where,
                    "http.token_file",
                    f"cannot read {self.token_file}: {exc.strerror or exc}",
                ) from None
        elif self.token_env is not None:
            token = os.environ.get(self.token_env) or None
            if token is None:
                raise DefinitionError(
                    where, "http.token_env", f"environment variable {self.token_env} is not set"
                )
        if token is not None and len(token) < 16:
            key = (
                "http.token_file"
                if self.token_file
                else "http.token_env"
                if self.token_env
                else "http.token"
            )
            raise DefinitionError(where, key, "an ingest token must be at least 16 characters")
        return token

    @property
    def address(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "127.0.0.1", int(port)


@dataclass(frozen=True, slots=True)
class BackfillConfig:
    """Start-up learning: on the first start, model the history the inputs hold."""

    enabled: bool = True
    #: only history this recent (Elastic's datafeed back-analyses two weeks)
    max_age: timedelta = timedelta(days=14)
    #: run the rule over the history too (as ``rarebird detect`` does); by default the rule
    #: starts at the first start, as a newly enabled Kibana rule does
    alerts: bool = False


@dataclass(frozen=True, slots=True)
class SnapshotConfig:
    """Periodic model snapshots (Elastic's model snapshots and their retention)."""

    #: a snapshot each time this much data time has been modelled
    interval: timedelta = timedelta(hours=3)
    #: ``model_snapshot_retention_days``
    retention_days: int = 10
    #: ``daily_model_snapshot_retention_after_days``: older snapshots are thinned to one a day
    daily_retention_after_days: int = 1


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """Where alerts go and the early warning."""

    #: alert on interim results as soon as a user's first event of a bucket arrives
    alert_on_interim: bool = False
    #: the scoring profile: ``default`` (Elastic's rule) or ``quiet`` (docs/RULE.md)
    profile: str = "default"
    #: the quiet profile's thresholds (``[alerts.quiet]``; None: its defaults)
    quiet: ProfileSettings | None = None
    outputs: tuple[str, ...] = ()
    #: unused since dead letters live in the store (kept so older configs still load)
    dead_letter: str | None = None
    #: webhook authentication: ``bearer``, ``splunk`` or ``header:<Name>``, and where its token
    #: is (an environment variable or a file; never the command line)
    webhook_auth: str | None = None
    webhook_token_env: str | None = None
    webhook_token_file: str | None = None
    #: the configuration file (for error messages)
    source: str = ""

    def webhook_token(self) -> str | None:
        """The webhook's token, read from its file or environment variable (at start)."""
        where = self.source or "<config>"
        if self.webhook_token_file is not None:
            try:
                return Path(self.webhook_token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise DefinitionError(where, "alerts.webhook_token_file",
                                      f"cannot read {self.webhook_token_file}: "
                                      f"{exc.strerror or exc}") from None  # fmt: skip
        if self.webhook_token_env is not None:
            token = os.environ.get(self.webhook_token_env) or None
            if token is None:
                raise DefinitionError(where, "alerts.webhook_token_env",
                                      f"environment variable {self.webhook_token_env} is not set")  # fmt: skip
            return token
        return None

    rule_uuid: str | None = None
    space: str | None = None
    kibana_url: str | None = None
    #: the anomaly index Kibana's ML rule reads records from (``kibana.alert.ancestors``)
    anomaly_index: str | None = None
    #: ``kibana.version`` written into alerts
    kibana_version: str | None = None


@dataclass(frozen=True, slots=True)
class ServeConfig:
    """Everything ``rarebird serve`` needs."""

    store: str
    job: str | None = None
    datafeed: str | None = None
    rule: str | None = None
    follow: tuple[FollowConfig, ...] = ()
    http: HttpConfig = HttpConfig()
    backfill: BackfillConfig = BackfillConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    alerts: AlertsConfig = AlertsConfig()
    #: how often inputs are polled for new data
    poll_interval: timedelta = timedelta(milliseconds=200)
    #: a source with no new data for this long is reported as quiet (a gap)
    quiet_after: timedelta = timedelta(minutes=10)
    #: a rotated-away file is read until it has not grown for this long
    rotate_grace: timedelta = timedelta(seconds=5)
    #: events dated more than this after the wall clock are quarantined (never modelled)
    max_future: timedelta = timedelta(days=1)
    log_level: str = "info"
    #: the file it was read from ("" when built from flags)
    source: str = ""

    def override(self, **changes: Any) -> ServeConfig:
        """A copy with the given (non-None) top-level values replaced."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


# --- reading -----------------------------------------------------------------------------------

_TOP = frozenset(
    {"store", "log_level", "definitions", "follow", "http", "backfill", "snapshots", "alerts",
     "service"}
)  # fmt: skip
_DEFINITIONS = frozenset({"job", "datafeed", "rule"})
_FOLLOW = frozenset(
    {"path", "format", "pattern", "name", "host_name", "passwd", "group", "identity"}
)
_HTTP = frozenset(
    {"listen", "token", "token_file", "token_env", "max_body_bytes", "max_events",
     "header_timeout", "body_timeout", "max_connections", "max_inflight_bytes",
     "max_queued_batches", "identity", "pages"}
)  # fmt: skip
_BACKFILL = frozenset({"enabled", "max_age", "alerts"})
_SNAPSHOTS = frozenset({"interval", "retention_days", "daily_retention_after_days"})
_ALERTS = frozenset(
    {"alert_on_interim", "profile", "quiet", "outputs", "dead_letter", "rule_uuid", "space",
     "kibana_url", "anomaly_index", "kibana_version", "webhook_auth", "webhook_token_env",
     "webhook_token_file"}
)  # fmt: skip
_SERVICE = frozenset({"poll_interval", "quiet_after", "rotate_grace", "max_future"})


def _check_listen(table: Reader, key: str, listen: str) -> str:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise table.fail(key, f"expected HOST:PORT, got {listen!r}")
    return listen


def check_listen(listen: str, where: str = "--listen") -> str:
    """Validate a ``HOST:PORT`` given on the command line."""
    return _check_listen(Reader("<flags>", {}, wording=CONFIG_WORDING), where, listen)


def load_config(path: str) -> ServeConfig:
    """Read and check a ``rarebird serve`` TOML configuration file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DefinitionError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(path, None, f"invalid TOML: {exc}") from None
    return config_from_dict(data, path)


def config_from_dict(data: Mapping[str, Any], path: str = "<config>") -> ServeConfig:
    top = Reader(path, data, wording=CONFIG_WORDING)
    top.check_keys(_TOP)
    store = top.path_value("store")
    if store is None:
        raise top.fail("store", "is required (the SQLite file that holds everything)")
    log_level = top.string("log_level") or "info"
    if log_level not in LOG_LEVELS:
        raise top.fail("log_level", f"must be one of {', '.join(LOG_LEVELS)}")
    defs = top.table("definitions", _DEFINITIONS)
    follows = data.get("follow", [])
    if not isinstance(follows, list):
        raise top.fail("follow", "expected an array of tables: [[follow]]")
    follow: list[FollowConfig] = []
    for i, item in enumerate(follows):
        if not isinstance(item, dict):
            raise top.fail(f"follow[{i}]", "expected a table")
        f = Reader(path, item, f"follow[{i}].", wording=CONFIG_WORDING)
        f.check_keys(_FOLLOW)
        fpath = f.path_value("path")
        if fpath is None:
            raise f.fail("path", "is required")
        identity = _identity(f)
        follow.append(
            FollowConfig(
                path=fpath,
                format=f.string("format") or "auto",
                pattern=f.string("pattern") or "*",
                name=f.string("name") or "",
                host_name=f.string("host_name"),
                passwd=f.path_value("passwd"),
                group=f.path_value("group"),
                identity=identity,
            )
        )
    names = [f.label for f in follow]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise top.fail(f"follow[{i}]", f"another input has the same name {name!r}")
    return ServeConfig(
        store=store,
        job=defs.path_value("job"),
        datafeed=defs.path_value("datafeed"),
        rule=defs.path_value("rule"),
        follow=tuple(follow),
        http=_http(top.table("http", _HTTP)),
        backfill=_backfill(top.table("backfill", _BACKFILL)),
        snapshots=_snapshots(top.table("snapshots", _SNAPSHOTS)),
        alerts=_alerts(top.table("alerts", _ALERTS)),
        log_level=log_level,
        source=path,
        **_service(top.table("service", _SERVICE)),
    )


def _http(t: Reader) -> HttpConfig:
    listen = t.string("listen")
    if listen is not None:
        _check_listen(t, "listen", listen)
    given = [k for k in ("token", "token_file", "token_env") if t.data.get(k) is not None]
    if len(given) > 1:
        raise t.fail(given[1], f"give only one of token, token_file, token_env (also {given[0]})")
    default = HttpConfig()
    return HttpConfig(
        listen=listen,
        token=t.string("token"),
        token_file=t.path_value("token_file"),
        token_env=t.string("token_env"),
        source=t.path,
        max_body_bytes=t.byte_size("max_body_bytes") or default.max_body_bytes,
        max_events=t.integer("max_events", minimum=1) or default.max_events,
        header_timeout=t.duration("header_timeout", fractional=True) or default.header_timeout,
        body_timeout=t.duration("body_timeout", fractional=True) or default.body_timeout,
        max_connections=t.integer("max_connections", minimum=1) or default.max_connections,
        max_inflight_bytes=t.byte_size("max_inflight_bytes") or default.max_inflight_bytes,
        max_queued_batches=t.integer("max_queued_batches", minimum=1) or default.max_queued_batches,
        identity=_identity(t),
        pages=t.flag("pages", False),
    )


def _identity(t: Reader) -> str:
    identity = t.string("identity") or "user"
    if identity not in IDENTITIES:
        raise t.fail("identity", f"must be one of {', '.join(IDENTITIES)}")
    return identity


def _backfill(t: Reader) -> BackfillConfig:
    default = BackfillConfig()
    enabled = t.flag("enabled")
    alerts = t.flag("alerts")
    return BackfillConfig(
        enabled=default.enabled if enabled is None else enabled,
        max_age=t.duration("max_age", fractional=True) or default.max_age,
        alerts=default.alerts if alerts is None else alerts,
    )


def _snapshots(t: Reader) -> SnapshotConfig:
    default = SnapshotConfig()
    retention = t.integer("retention_days", minimum=1)
    daily = t.integer("daily_retention_after_days", minimum=0)
    return SnapshotConfig(
        interval=t.duration("interval", fractional=True) or default.interval,
        retention_days=default.retention_days if retention is None else retention,
        daily_retention_after_days=default.daily_retention_after_days if daily is None else daily,
    )


def _alerts(t: Reader) -> AlertsConfig:
    interim = t.flag("alert_on_interim")
    profile = t.string("profile") or "default"
    if profile not in ("default", "quiet"):
        raise t.fail("profile", f"{profile!r} is not a profile (default or quiet)")
    if profile != "default" and interim:
        raise t.fail("profile", "the quiet profile does not combine with alert_on_interim "
                     "(an early-warning alert would bypass it)")  # fmt: skip
    quiet = None
    if t.has("quiet"):
        table = t.raw("quiet")
        if not isinstance(table, dict):
            raise t.fail("quiet", "expected a table ([alerts.quiet])")
        if profile != "quiet":
            raise t.fail("quiet", 'the quiet profile\'s settings go with profile = "quiet"')
        try:
            quiet = settings_from(table)
        except ValueError as exc:
            raise t.fail("quiet", str(exc)) from None
    return AlertsConfig(
        alert_on_interim=bool(interim),
        profile=profile,
        quiet=quiet,
        outputs=tuple(_output(t, o) for o in t.str_list("outputs", lone_string=False)),
        dead_letter=t.path_value("dead_letter"),
        webhook_auth=_webhook_auth(t),
        webhook_token_env=t.string("webhook_token_env"),
        webhook_token_file=t.path_value("webhook_token_file"),
        source=t.path,
        rule_uuid=t.string("rule_uuid"),
        space=t.string("space"),
        kibana_url=t.string("kibana_url"),
        anomaly_index=t.string("anomaly_index"),
        kibana_version=t.string("kibana_version"),
    )


def _webhook_auth(t: Reader) -> str | None:
    kind = t.string("webhook_auth")
    if (
        kind is None
        or kind in ("bearer", "splunk")
        or (kind.startswith("header:") and kind[7:].replace("-", "").replace("_", "").isalnum())
    ):
        if kind is not None and not (
            t.data.get("webhook_token_env") or t.data.get("webhook_token_file")
        ):
            raise t.fail("webhook_auth", "needs webhook_token_env or webhook_token_file "
                                         "(a token is never written in the config itself)")  # fmt: skip
        return kind
    raise t.fail("webhook_auth", f"must be bearer, splunk or header:NAME, not {kind!r}")


def _output(t: Reader, spec: str) -> str:
    """File outputs (``ndjson:PATH``...) relative to the config file like every other path."""
    kind, sep, target = spec.partition(":")
    if sep and kind in ("ndjson", "es-bulk", "bulk", "sqlite") and target != "-":
        return f"{kind}:{relative_to_file(t.path, target)}"
    return spec


def _service(t: Reader) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("poll_interval", "quiet_after", "rotate_grace", "max_future"):
        value = t.duration(key, fractional=True)
        if value is not None:
            out[key] = value
    return out
