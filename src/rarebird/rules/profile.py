"""The opt-in ``quiet`` scoring profile (``--profile quiet``): between the job's records and the
rule, it keeps the anomalies that look like an intruder and quiets those of users who run the
discovery tools as part of their job; and it adds one thing the job cannot see, a host's first
discovery run.

The default (no profile) is Elastic's rule, untouched: the executor only calls a profile when
one is given. What the profile does, per final bucket and modelled user (the job's by-field),
in this order -- the first that applies decides:

1. ``first_occurrence``: the user never ran a tool the datafeed selects before, and the
   profile has seen at least ``warm_up`` (14 days) of events -> keep;
2. ``returned``: the user's last run is more than ``absence`` (30 days) ago -> keep;
3. ``regular``: the user ran the tools on ``regular_days`` (2) or more of the last
   ``regular_window`` (28) days, today excluded -> quiet (whatever they run now: troubleshooting
   is what such users do);
4. ``burst``: the user ran ``burst_tools`` (3) distinct tools within ``burst_window`` (10
   minutes), more than they ever did before -> keep;
5. ``warm_up``: fewer than ``warm_up`` days of events seen: who is regular is not known yet
   -> quiet;
6. ``service_account``: a service account (``user.id`` 1-999, or a name like ``www-data``,
   ``nobody``, ``svc-*``) that is not regular -> keep;
7. ``seen_before``: otherwise (seen on one earlier day, nothing unusual now) -> quiet.

The rule still needs the job's record over its threshold for 1, 2, 4 and 6: the profile only ever
removes the job's alerts, so it is never later than the default. **Host first**: the first
bucket with a discovery run on a host whose first event of any kind the profile saw at least
``host_warm_up`` (1 day) earlier gives a record of its own (``record_score`` 0, marked
``rarebird.profile.reason: host_first``) for each user who ran the tools there, whatever the
job scored. A host whose very first events are discovery runs (a new host with monitoring from
its first minute) is learned, not alerted -- unless, after the profile's warm-up, that first run
is ``new_host_tools`` (2) or more distinct tools within the burst window, more than the user ever
ran together (scripted reconnaissance on a host nobody watched, rather than routine).

The state is versioned JSON (:meth:`QuietProfile.to_state`), saved with the job's state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rarebird.definitions.profile_settings import ProfileSettings
from rarebird.events import ProcessEvent
from rarebird.results import AnomalyRecord, Influence
from rarebird.timeutil import from_epoch_ms, to_epoch_ms

PROFILE_VERSION = 1
PROFILES = ("default", "quiet")
MINUTE_MS = 60_000
DAY_MS = 86_400_000
#: names of service accounts beside uids 1-999 (``user.id``): daemons and ``svc-`` accounts
SERVICE_NAMES = re.compile(
    r"^(www-data|www|nobody|daemon|apache|nginx|httpd|tomcat|postgres|mysql|redis|"
    r"svc[-_].*|.*[-_]svc|_.*)$"
)
WORDS = {
    "first_occurrence": "the first time this user ran network discovery tools",
    "returned": "this user's first discovery run after more than {absence} days",
    "burst": "{tools} different discovery tools within {window} minutes",
    "service_account": "a service account running discovery tools, not a regular runner of them",
    "host_first": "the first network discovery run on this host (seen for {days} day(s) "
    "before without any)",
    "new_host_first": "the first network discovery run on a host new to the fleet, {tools} "
    "different tools at once, more than this user ever ran together",
    "warm_up": "quieted: the profile is still learning who runs these tools (warm-up)",
    "regular": "quieted: this user runs these tools regularly ({days} of the last {window} days)",
    "seen_before": "quieted: seen running these tools before, nothing unusual now",
}


@dataclass(frozen=True)
class Decision:
    """What the profile decided for one user's bucket."""

    keep: bool
    reason: str
    words: str

    def fields(self) -> dict[str, Any]:
        """The fields an alert kept by the profile carries."""
        return {
            "rarebird.profile.name": "quiet",
            "rarebird.profile.reason": self.reason,
            "rarebird.profile.explanation": self.words,
        }


@dataclass
class _User:
    days: list[int]  # distinct epoch days with a run, last regular_window + 1 only
    last_ms: int
    recent: list[tuple[int, str]]  # (ms, tool) within the burst window of the last run
    max_burst: int = 0  # the most distinct tools the user ran within a burst window so far


def is_service_account(name: str, uid: str | None) -> bool:
    if uid is not None and uid.isdigit() and 1 <= int(uid) <= 999:
        return True
    return bool(SERVICE_NAMES.match(name))


class QuietProfile:
    """The quiet profile for one job (see the module doc)."""

    name = "quiet"

    def __init__(
        self,
        job_id: str,
        bucket_span_s: int,
        by_field: str = "user.name",
        settings: ProfileSettings | None = None,
    ) -> None:
        self.job_id = job_id
        self.span_ms = bucket_span_s * 1000
        self.by_field = by_field
        self.s = settings or ProfileSettings()
        self.start_ms: int | None = None
        self.finalized_ms = 0  # buckets starting before this are decided
        self.users: dict[str, _User] = {}
        self.hosts_seen: dict[str, int] = {}
        self.hosts_discovery: set[str] = set()
        #: bucket start -> [(ms, user, tool, host, uid)]
        self.pending: dict[int, list[tuple[int, str, str, str, str | None]]] = {}
        self.decisions: dict[tuple[str, int], Decision] = {}
        #: host-first records: (bucket ms, record id, record doc)
        self.host_first: list[tuple[int, str, dict[str, Any]]] = []
        self._annotations: dict[str, Decision] = {}
        #: record ids the profile quieted (for reports)
        self.quieted: set[str] = set()

    # --- events in -------------------------------------------------------------------------

    def note_host(self, ev: ProcessEvent) -> bool:
        """An event seen before it is released in time order (``serve`` ingests events as
        they arrive): its host's first event is the earliest seen. True if that changed."""
        ms = to_epoch_ms(ev.timestamp)
        host = ev.host_name or ""
        seen = self.hosts_seen.get(host)
        if seen is not None and seen <= ms:
            return False
        self.hosts_seen[host] = ms
        if self.start_ms is None or ms < self.start_ms:
            self.start_ms = ms
        return True

    def observe(self, ev: ProcessEvent, matched: bool) -> None:
        """Every event read (matched by the datafeed or not), in time order."""
        ms = to_epoch_ms(ev.timestamp)
        if self.start_ms is None:
            self.start_ms = ms
        host = ev.host_name or ""
        if host not in self.hosts_seen:
            self.hosts_seen[host] = ms
        if not matched:
            return
        user = ev.value(self.by_field)
        if not user:
            return
        bucket = ms - ms % self.span_ms
        if bucket < self.finalized_ms:
            return  # out of order: the job drops it too
        # decide the earlier buckets (their history is complete), but keep their decisions:
        # in a replay the rule's runs between the previous matched event and this one, days
        # apart in a quiet log, come after this call and still need them
        self._decide_until(bucket)
        self.pending.setdefault(bucket, []).append(
            (ms, user, ev.process_name or "", host, ev.user_id)
        )

    def finalize(self, until_ms: int) -> None:
        """Decide every bucket that ends at or before ``until_ms``; forget decisions and
        host-first records a day older than that (the rule has run over them: the caller
        calls this before each run, with the run's time)."""
        self._decide_until(until_ms)
        keep_after = until_ms - DAY_MS  # far beyond the rule's lookback and catch-up
        self.decisions = {k: d for k, d in self.decisions.items() if k[1] >= keep_after}
        self.host_first = [h for h in self.host_first if h[0] >= keep_after]

    def _decide_until(self, until_ms: int) -> None:
        for bucket in sorted(b for b in self.pending if b + self.span_ms <= until_ms):
            self._decide_bucket(bucket, self.pending.pop(bucket))
        if until_ms - until_ms % self.span_ms > self.finalized_ms:
            self.finalized_ms = until_ms - until_ms % self.span_ms

    # --- decisions -------------------------------------------------------------------------

    def _decide_bucket(
        self, bucket: int, events: list[tuple[int, str, str, str, str | None]]
    ) -> None:
        s = self.s
        events.sort(key=lambda e: e[0])
        warm = self.start_ms is None or bucket - self.start_ms < s.warm_up_days * DAY_MS
        by_user: dict[str, list[tuple[int, str, str, str, str | None]]] = {}
        for e in events:
            by_user.setdefault(e[1], []).append(e)
        for user, evs in by_user.items():
            self.decisions[(user, bucket)] = self._decide(user, evs, bucket, warm)
        # host first: before learning this bucket's runs
        for host in dict.fromkeys(e[3] for e in events):
            if host in self.hosts_discovery:
                continue
            self.hosts_discovery.add(host)
            first_run = min(e[0] for e in events if e[3] == host)
            seen = self.hosts_seen.get(host, first_run)
            known = first_run - seen >= s.host_warm_up_days * DAY_MS
            for user in dict.fromkeys(e[1] for e in events if e[3] == host):
                mine = [e for e in events if e[3] == host and e[1] == user]
                tools = tuple(dict.fromkeys(e[2] for e in mine))
                if known:
                    self._add_host_first(bucket, host, user, tools, "host_first",
                                         (first_run - seen) // DAY_MS)  # fmt: skip
                elif not warm and self._new_host_novel(user, mine):
                    self._add_host_first(bucket, host, user, tools, "new_host_first", 0)
        for user, evs in by_user.items():
            h = self.users.get(user)
            burst = self._burst(h.recent if h else [], evs)
            self._learn(user, evs)
            self.users[user].max_burst = max(self.users[user].max_burst, burst)

    def _decide(
        self, user: str, evs: list[tuple[int, str, str, str, str | None]], bucket: int, warm: bool
    ) -> Decision:
        s = self.s
        h = self.users.get(user)
        if h is None and not warm:
            return Decision(True, "first_occurrence", WORDS["first_occurrence"])
        if h is not None and bucket - h.last_ms > s.absence_days * DAY_MS:
            return Decision(True, "returned", WORDS["returned"].format(absence=s.absence_days))
        today = bucket // DAY_MS
        days = (
            0 if h is None else sum(1 for d in h.days if today - s.regular_window_days <= d < today)
        )
        if days >= s.regular_days:
            words = WORDS["regular"].format(days=days, window=s.regular_window_days)
            return Decision(False, "regular", words)
        tools = self._burst(h.recent if h else [], evs)
        if tools >= s.burst_tools and tools > (h.max_burst if h else 0):
            words = WORDS["burst"].format(tools=tools, window=s.burst_minutes)
            return Decision(True, "burst", words)
        if warm:
            return Decision(False, "warm_up", WORDS["warm_up"])
        uid = next((e[4] for e in evs if e[4] is not None), None)
        if is_service_account(user, uid):
            return Decision(True, "service_account", WORDS["service_account"])
        return Decision(False, "seen_before", WORDS["seen_before"])

    def _burst(self, recent: Sequence[tuple[int, str]], evs: Sequence[tuple[Any, ...]]) -> int:
        """The most distinct tools within the burst window ending at one of ``evs``."""
        window = self.s.burst_minutes * MINUTE_MS
        runs = [*recent, *((e[0], e[2]) for e in evs)]
        best = 0
        for ms, _ in runs:
            best = max(best, len({t for m, t in runs if ms - window < m <= ms}))
        return best

    def _learn(self, user: str, evs: list[tuple[int, str, str, str, str | None]]) -> None:
        last = evs[-1][0]
        h = self.users.get(user)
        if h is None:
            h = self.users[user] = _User([], last, [])
        for e in evs:
            day = e[0] // DAY_MS
            if day not in h.days:
                h.days.append(day)
        h.days = [d for d in sorted(h.days) if d >= last // DAY_MS - self.s.regular_window_days]
        h.last_ms = max(h.last_ms, last)
        window = self.s.burst_minutes * MINUTE_MS
        h.recent = [r for r in [*h.recent, *((e[0], e[2]) for e in evs)] if r[0] > last - window]

    def _new_host_novel(self, user: str, runs: list[tuple[int, str, str, str, str | None]]) -> bool:
        """A host new to the profile (no day of history) after the warm-up: its first discovery
        run stands out when it is ``new_host_tools`` (2) or more distinct tools within the
        burst window, more than the user ever ran in one (a new server's monitoring is one tool
        at a time and routine; a scripted reconnaissance is not)."""
        h = self.users.get(user)
        tools = self._burst([], runs)
        return tools >= self.s.new_host_tools and tools > (h.max_burst if h else 0)

    def _add_host_first(
        self, bucket: int, host: str, user: str, tools: tuple[str, ...], reason: str, days: int
    ) -> None:
        record = AnomalyRecord(
            job_id=self.job_id,
            timestamp=from_epoch_ms(bucket),
            bucket_span=self.span_ms // 1000,
            by_field_name=self.by_field,
            by_field_value=user,
            probability=1.0,
            record_score=0.0,
            initial_record_score=0.0,
            influencers=(
                Influence("host.name", (host,)),
                Influence("process.name", tools),
                Influence(self.by_field, (user,)),
            ),
        )
        record_id = f"{self.job_id}_rarebird_host_first_{bucket}_{host}_{user}"
        words = WORDS[reason].format(days=days, tools=len(tools))
        self._annotations[record_id] = Decision(True, "host_first", words)
        self.host_first.append((bucket, record_id, record.to_doc()))

    # --- the rule's side -------------------------------------------------------------------

    def select(
        self, hits: Sequence[tuple[str, Mapping[str, Any]]], start: datetime, end: datetime
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The job's records the rule found in ``[start, end]`` that the profile keeps, then
        the host-first records in that range. A record of a bucket the profile has no decision
        for (it started after the job) is kept: the profile never hides what it did not see."""
        out: list[tuple[str, Mapping[str, Any]]] = []
        for record_id, doc in hits:
            key = (str(doc.get("by_field_value")), int(doc["timestamp"]))
            d = self.decisions.get(key)
            if d is not None and not d.keep:
                self.quieted.add(record_id)
                continue
            if d is not None:
                self._annotations[record_id] = d
            out.append((record_id, doc))
        lo, hi = to_epoch_ms(start), to_epoch_ms(end)
        out.extend((rid, doc) for b, rid, doc in self.host_first if lo <= b <= hi)
        return out

    def annotate(self, record_id: str) -> Mapping[str, Any]:
        """Fields for the alert of a kept record: why the profile kept it."""
        d = self._annotations.get(record_id)
        return {} if d is None else d.fields()

    # --- state -----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {
            "version": PROFILE_VERSION,
            "profile": self.name,
            "start_ms": self.start_ms,
            "finalized_ms": self.finalized_ms,
            "users": {
                u: {
                    "days": h.days,
                    "last_ms": h.last_ms,
                    "recent": h.recent,
                    "max_burst": h.max_burst,
                }
                for u, h in sorted(self.users.items())
            },  # fmt: skip
            "hosts_seen": dict(sorted(self.hosts_seen.items())),
            "hosts_discovery": sorted(self.hosts_discovery),
            "pending": {str(b): evs for b, evs in sorted(self.pending.items())},
            "decisions": [
                [u, b, d.keep, d.reason, d.words] for (u, b), d in sorted(self.decisions.items())
            ],  # fmt: skip
            "host_first": [[b, rid, doc] for b, rid, doc in self.host_first],
            "annotations": {
                rid: [d.keep, d.reason, d.words]
                for rid, d in sorted(self._annotations.items())
                if rid.startswith(f"{self.job_id}_rarebird_host_first_")
            },  # fmt: skip
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Put back a saved state (:meth:`to_state`); ValueError if it is not one."""
        if state.get("version") != PROFILE_VERSION or state.get("profile") != self.name:
            raise ValueError(
                f"profile state is {state.get('profile')!r} version {state.get('version')!r}; "
                f"this rarebird reads {self.name!r} version {PROFILE_VERSION}"
            )
        self.start_ms = state["start_ms"]
        self.finalized_ms = int(state["finalized_ms"])
        self.users = {
            u: _User([int(d) for d in h["days"]], int(h["last_ms"]),
                     [(int(m), str(t)) for m, t in h["recent"]], int(h["max_burst"]))
            for u, h in state["users"].items()
        }  # fmt: skip
        self.hosts_seen = {str(k): int(v) for k, v in state["hosts_seen"].items()}
        self.hosts_discovery = set(state["hosts_discovery"])
        self.pending = {
            int(b): [(int(e[0]), str(e[1]), str(e[2]), str(e[3]), e[4]) for e in evs]
            for b, evs in state["pending"].items()
        }
        self.decisions = {(str(u), int(b)): Decision(bool(k), str(r), str(w))
                          for u, b, k, r, w in state["decisions"]}  # fmt: skip
        self.host_first = [(int(b), str(rid), dict(doc)) for b, rid, doc in state["host_first"]]
        self._annotations = {rid: Decision(bool(k), str(r), str(w))
                             for rid, (k, r, w) in state["annotations"].items()}  # fmt: skip


def profile_for(
    name: str,
    job_id: str,
    bucket_span_s: int,
    by_field: str,
    settings: ProfileSettings | None = None,
) -> QuietProfile | None:
    """The profile named ``name`` for a job (None for ``default``: Elastic's rule)."""
    if name == "default":
        return None
    if name == "quiet":
        return QuietProfile(job_id, bucket_span_s, by_field, settings)
    raise ValueError(f"unknown profile {name!r} (expected one of {', '.join(PROFILES)})")
