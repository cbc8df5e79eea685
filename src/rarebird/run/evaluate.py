"""``rarebird evaluate``: a backtest of the rule against labelled events.

The events are replayed through the one engine (:class:`~rarebird.run.engine.Engine`, exactly
what ``detect`` runs) into a throw-away store, once per detector:

- ``ml``: Elastic's job and rule (or ``ml+quiet``: the same with the quiet profile,
  :mod:`rarebird.rules.profile`);
- ``new_terms``: the rule a team could run for free in Elastic, a New Terms rule on the modelled
  ``user.name`` over the same datafeed query with a 14-day history window: an alert when a user
  runs a matching event and no matching event of that user lies in the preceding 14 days. The
  rule runs every 15 minutes like the ML rule (an event is alerted by the first run at or after
  it, on the 15-minute grid); it is *enabled* 14 days after the first event, when its history
  window is full -- the first 14 days only build its history.

**Caught**: a labelled event of modelled user ``u`` at time ``t`` is caught by an alert on ``u``
whose anomaly bucket starts in ``[bucket(t), bucket(t) + 45 minutes]`` -- the bucket holding the
event, or a later bucket of the same user within the rule's 45-minute lookback (a burst that
goes on into the next buckets is one incident). A New Terms alert catches the event it was
raised on and the same user's events until 45 minutes after it; a profile's host-first alert
only catches events on its host. Alerts that catch no attack
event are benign (false positives), whatever else they catch; ``precision`` is attack alerts
over all alerts.

**Scoring window**: the first ``warm_up`` (14) days of the input are learning time for every
detector (the job's models, the profile's history, New Terms' history window); labelled events
and alerts whose time is inside it are left out of the figures (and counted).

**Threshold sweep**: the ML rule is replayed once at the lowest threshold swept; the figures at
threshold ``s`` are those of the alerts whose record score (when alerted) is at least ``s``.
A record renormalised upward past ``s`` after its first run could have been alerted a run later
by a rule at ``s``: the sweep does not see that (the headline figures, at the rule's own
threshold, are taken the same way and are held to ``detect``'s alerts by a test).
"""

from __future__ import annotations

import csv
import dataclasses
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rarebird.definitions import DatafeedConfig, JobConfig, RuleConfig
from rarebird.definitions.profile_settings import ProfileSettings
from rarebird.errors import InputError
from rarebird.events import ProcessEvent
from rarebird.rules.profile import profile_for
from rarebird.run.engine import Engine
from rarebird.run.replay import InputOptions, replay_inputs
from rarebird.store import open_store
from rarebird.timeutil import from_epoch_ms, parse_timestamp, to_epoch_ms

LABEL_COLUMNS = ("@timestamp", "host.name", "user.name", "process.name", "label")
MINUTE_MS = 60_000
DAY_MS = 86_400_000
Observer = Callable[[ProcessEvent, bool], None]
SWEEP = (1.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0, 75.0, 90.0)


@dataclass(frozen=True)
class Label:
    """One labelled event (a row of the labels CSV)."""

    ms: int
    host: str
    user: str
    process: str
    label: str
    line: int

    @property
    def attack(self) -> bool:
        return self.label.startswith("attack")


def read_labels(path: str) -> list[Label]:
    """The labels CSV (the five columns of :data:`LABEL_COLUMNS`, in any order; other columns
    are ignored); a bad row is an :class:`InputError` naming the file and line."""
    out: list[Label] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, None) or []]
            missing = [c for c in LABEL_COLUMNS if c not in header]
            if missing:
                raise InputError(f"{path}:1", f"the header has no {', '.join(missing)} (it needs "
                                 f"{','.join(LABEL_COLUMNS)})")  # fmt: skip
            at = [header.index(c) for c in LABEL_COLUMNS]
            for row in reader:
                line = reader.line_num
                if not row:
                    continue
                if len(row) != len(header):
                    raise InputError(f"{path}:{line}",
                                     f"{len(row)} columns, expected {len(header)}")  # fmt: skip
                stamp, host, user, process, label = (row[i].strip() for i in at)
                try:
                    when = parse_timestamp(stamp)
                except ValueError:
                    raise InputError(f"{path}:{line}", f"@timestamp {stamp!r} is not an ISO-8601 time") from None  # fmt: skip
                if not (host and user and process and label):
                    raise InputError(f"{path}:{line}", "every column needs a value")
                out.append(Label(to_epoch_ms(when), host, user, process, label, line))
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(path, str(exc)) from exc
    return out


@dataclass(frozen=True)
class EvalAlert:
    """An alert as the evaluation sees it."""

    user: str
    bucket_ms: int
    alerted_ms: int
    score: float
    host: str
    #: the profile's reason (``host_first`` alerts do not depend on the threshold)
    reason: str = ""


@dataclass
class _Observed:
    """What one pass saw: the labels' modelled users and the datafeed's matching events."""

    start_ms: int | None = None
    #: label index -> (modelled user, event ms)
    matched: dict[int, tuple[str, int]] = field(default_factory=dict)
    #: (ms, modelled user, host) of every matching event
    runs: list[tuple[int, str, str]] = field(default_factory=list)


def _observer(labels: Sequence[Label], seen: _Observed) -> Observer:
    index: dict[tuple[int, str, str], list[int]] = {}
    for i, lab in enumerate(labels):
        index.setdefault((lab.ms // 1000, lab.host, lab.process), []).append(i)

    def observe(ev: ProcessEvent, matched: bool) -> None:
        ms = to_epoch_ms(ev.timestamp)
        if seen.start_ms is None or ms < seen.start_ms:
            seen.start_ms = ms
        if not matched or not ev.user_name:
            return
        seen.runs.append((ms, ev.user_name, ev.host_name or ""))
        found = index.get((ms // 1000, ev.host_name or "", ev.process_name or ""))
        if not found:
            return
        names = {ev.user_name, *ev.get("process.real_user.name")}
        for i in found:
            if i not in seen.matched and labels[i].user in names:
                seen.matched[i] = (ev.user_name, ms)
                break

    return observe


def _ml_alerts(
    specs: Sequence[str], inputs: InputOptions, job: JobConfig, datafeed: DatafeedConfig,
    rule: RuleConfig, profile: str, floor: float, observe: Observer | None,
    settings: ProfileSettings | None = None,
) -> list[EvalAlert]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rarebird-evaluate-") as tmp:
        store = open_store(str(Path(tmp) / "evaluate.db"))
        try:
            prof = profile_for(profile, job.job_id, job.bucket_span_s,
                               job.detectors[0].by_field_name, settings)  # fmt: skip
            low = dataclasses.replace(rule, anomaly_threshold=floor)
            engine = Engine(store, job, datafeed, low, profile=prof)
            opts = dataclasses.replace(inputs, every_event=True)
            summary = replay_inputs(engine, specs, opts, observe=observe)
        finally:
            store.close()
    out = []
    for alert in summary.report.new_alerts:
        doc = alert.doc
        hosts = doc.get("host", {}).get("name") or [""]
        out.append(EvalAlert(
            user=str(doc["by_field_value"]), bucket_ms=int(doc["timestamp"]),
            alerted_ms=to_epoch_ms(parse_timestamp(doc["@timestamp"])), score=float(doc["record_score"]),
            host=str(hosts[0]), reason=str(doc.get("rarebird.profile.reason", "")),
        ))  # fmt: skip
    return out


def new_terms_alerts(
    runs: Sequence[tuple[int, str, str]], start_ms: int, history_days: int = 14,
    interval_ms: int = 15 * MINUTE_MS,
) -> list[EvalAlert]:  # fmt: skip
    """The New Terms baseline over the datafeed's matching events (see the module doc)."""
    enabled = start_ms + history_days * DAY_MS
    last: dict[str, int] = {}
    out: list[EvalAlert] = []
    alerted_run: dict[str, int] = {}
    for ms, user, host in sorted(runs):
        before = last.get(user)
        last[user] = ms
        if ms < enabled or (before is not None and ms - before <= history_days * DAY_MS):
            continue
        run = -(-ms // interval_ms) * interval_ms
        if alerted_run.get(user) == run:
            continue
        alerted_run[user] = run
        out.append(EvalAlert(user, ms, run, 100.0, host, "new_term"))
    return out


@dataclass(frozen=True)
class ClassFigures:
    label: str
    events: int
    caught: int
    alerts: int
    #: first catching alert's time minus the class's first labelled event, seconds
    delay_s: float | None

    @property
    def missed(self) -> int:
        return self.events - self.caught


@dataclass(frozen=True)
class Figures:
    """One detector at one threshold."""

    detector: str
    threshold: float | None
    alerts: int
    attack_alerts: int
    per_day: float
    classes: tuple[ClassFigures, ...]
    #: (alert, labels it caught) for every alert in the scoring window
    listing: tuple[tuple[EvalAlert, tuple[str, ...]], ...]

    @property
    def benign_alerts(self) -> int:
        return self.alerts - self.attack_alerts

    @property
    def precision(self) -> float | None:
        return self.attack_alerts / self.alerts if self.alerts else None

    @property
    def attack_classes_caught(self) -> tuple[int, int]:
        attacks = [c for c in self.classes if c.label.startswith("attack")]
        return sum(1 for c in attacks if c.caught), len(attacks)


@dataclass(frozen=True)
class Evaluation:
    """Everything the report shows."""

    inputs: tuple[str, ...]
    labels_path: str
    identity: str
    threshold: float
    window_start_ms: int
    window_end_ms: int
    warm_up_labels: int
    unmatched_labels: tuple[Label, ...]
    detectors: tuple[Figures, ...]
    #: detector -> figures per threshold of the sweep
    sweeps: dict[str, tuple[Figures, ...]]
    warm_up_days: int = 14


def _figures(
    detector: str, threshold: float | None, alerts: Sequence[EvalAlert], labels: Sequence[Label],
    observed: _Observed, window: tuple[int, int], span_ms: int, lookback_ms: int,
) -> Figures:  # fmt: skip
    lo, hi = window
    in_window = [a for a in alerts if a.bucket_ms >= lo]
    events = [(i, observed.matched[i]) for i in range(len(labels))
              if i in observed.matched and observed.matched[i][1] >= lo]  # fmt: skip
    caught_by: dict[int, list[EvalAlert]] = {}
    caught_labels: dict[int, set[str]] = {k: set() for k in range(len(in_window))}
    by_user: dict[str, list[int]] = {}
    for k, a in enumerate(in_window):
        by_user.setdefault(a.user, []).append(k)
    for i, (user, ms) in events:
        bucket = ms - ms % span_ms
        for k in by_user.get(user, ()):
            a = in_window[k]
            if a.reason == "host_first" and labels[i].host != a.host:
                continue
            if a.reason == "new_term":
                hit = a.bucket_ms <= ms <= a.bucket_ms + lookback_ms
            else:
                hit = bucket <= a.bucket_ms <= bucket + lookback_ms
            if hit:
                caught_by.setdefault(i, []).append(a)
                caught_labels[k].add(labels[i].label)
    classes = []
    for name in sorted({labels[i].label for i, _ in events}):
        members = [(i, ms) for i, (_, ms) in events if labels[i].label == name]
        caught = [i for i, _ in members if i in caught_by]
        first = min(ms for _, ms in members)
        alert_times = [a.alerted_ms for i in caught for a in caught_by[i]]
        delay = (min(alert_times) - first) / 1000 if alert_times else None
        n_alerts = sum(1 for k in caught_labels if name in caught_labels[k])
        classes.append(ClassFigures(name, len(members), len(caught), n_alerts, delay))
    attack = sum(1 for k in caught_labels if any(x.startswith("attack") for x in caught_labels[k]))
    days = max((hi - lo) / DAY_MS, 1e-9)
    listing = tuple((a, tuple(sorted(caught_labels[k]))) for k, a in enumerate(in_window))
    return Figures(detector, threshold, len(in_window), attack, len(in_window) / days,
                   tuple(classes), listing)  # fmt: skip


def evaluate(
    specs: Sequence[str],
    labels_path: str,
    job: JobConfig,
    datafeed: DatafeedConfig,
    rule: RuleConfig,
    inputs: InputOptions | None = None,
    *,
    profiles: Sequence[str] = ("default",),
    profile_settings: ProfileSettings | None = None,
    warm_up_days: int = 14,
    sweep: Sequence[float] = SWEEP,
) -> Evaluation:
    """Replay ``specs`` once per profile (the quiet one with ``profile_settings``, None: its
    defaults) and score each detector against the labels."""
    inputs = inputs or InputOptions()
    labels = read_labels(labels_path)
    observed = _Observed()
    threshold = rule.anomaly_threshold
    floor = min([*sweep, threshold])
    raw: dict[str, list[EvalAlert]] = {}
    for n, profile in enumerate(profiles):
        observe = _observer(labels, observed) if n == 0 else None
        name = "ml" if profile == "default" else f"ml+{profile}"
        raw[name] = _ml_alerts(specs, inputs, job, datafeed, rule, profile, floor, observe,
                               profile_settings)  # fmt: skip
    if observed.start_ms is None:
        raise InputError(", ".join(specs), "no events were read")
    start = observed.start_ms
    end = max([start, *(ms for ms, _, _ in observed.runs)]) + 1
    window = (start + warm_up_days * DAY_MS, end)
    span_ms = job.bucket_span_s * 1000
    lookback_ms = int(rule.lookback.total_seconds() * 1000)
    raw["new_terms"] = new_terms_alerts(observed.runs, start, history_days=14)

    def at(name: str, s: float | None) -> Figures:
        alerts = raw[name]
        if s is not None:
            alerts = [a for a in alerts if a.score >= s or a.reason == "host_first"]
        return _figures(name, s, alerts, labels, observed, window, span_ms, lookback_ms)

    detectors = tuple(at(name, None if name == "new_terms" else threshold) for name in raw)
    sweeps = {name: tuple(at(name, s) for s in sweep) for name in raw if name != "new_terms"}
    warm = sum(1 for i, (_, ms) in observed.matched.items() if ms < window[0])
    unmatched = tuple(lab for i, lab in enumerate(labels) if i not in observed.matched)
    return Evaluation(tuple(specs), labels_path, inputs.identity, threshold, window[0], end, warm,
                      unmatched, detectors, sweeps, warm_up_days)  # fmt: skip


def window_text(ev: Evaluation) -> str:
    lo, hi = from_epoch_ms(ev.window_start_ms), from_epoch_ms(ev.window_end_ms)
    return f"{_day(lo)} .. {_day(hi)}"


def _day(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M")
