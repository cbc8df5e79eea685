"""One anomaly in plain words: what drove its score, for the CLI and the web pages alike.

The numbers are Elastic's (``probability``, ``record_score``, ``by_field_first_occurrence``,
``by_field_relative_rarity``) and rarebird's own record details (the model's view when the
record was scored); the words are rarebird's. A ``rare`` by ``user.name`` score is high when
the users as rare as this one, this one included, hold a tiny share of the recent activity:
because the user is new, or comes back after a long time, or because a few accounts (service
accounts, monitoring) run these commands all the time and everybody else hardly ever. The
explanation names which of these it is, with the history the store keeps.

Pure functions over frozen inputs; :mod:`rarebird.store.views` gathers the inputs.

>>> severity(70.76), severity(36.75), severity(80), severity(10), severity(1)
('major', 'minor', 'critical', 'warning', 'low')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rarebird.timeutil import from_epoch_ms

#: Elastic's anomaly severity bands (ML app ``getSeverity``): lowest score of each label
SEVERITY_THRESHOLDS: tuple[tuple[float, str], ...] = (
    (75.0, "critical"),
    (50.0, "major"),
    (25.0, "minor"),
    (3.0, "warning"),
    (0.0, "low"),
)
#: Elastic's severity colours (ML app ``getSeverityColor``)
SEVERITY_COLOURS = {
    "critical": "#fe5050",
    "major": "#fba740",
    "minor": "#fdec25",
    "warning": "#8bc8fb",
    "low": "#d2e9f7",
}

#: how many top users are named as the ones who dominate the activity, at most
_MAX_NAMED = 3
#: share of the activity the named users must reach to be called dominant
_DOMINANT_SHARE = 0.8


def severity(score: float) -> str:
    """Elastic's severity label of a 0-100 anomaly score."""
    for lowest, label in SEVERITY_THRESHOLDS:
        if score >= lowest:
            return label
    return "low"


@dataclass(frozen=True, slots=True)
class RecordFacts:
    """What the record itself says (Elastic's fields, rarebird's record details)."""

    user: str
    time: datetime
    bucket_span: timedelta
    record_score: float
    initial_record_score: float
    probability: float
    #: Elastic's ``by_field_first_occurrence``: the model had not seen this user before
    first_occurrence: bool = False
    #: Elastic's ``by_field_relative_rarity`` (the median user's count over this user's)
    relative_rarity: float | None = None
    #: the model when the record was scored: users known, their total and this user's activity
    values_known: int | None = None
    total_concentration: float | None = None
    concentration: float | None = None
    identities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: **rarebird** ``--profile quiet``: why the profile kept (or raised) the alert
    profile_reason: str | None = None
    profile_words: str | None = None

    @classmethod
    def from_docs(cls, record: Mapping[str, Any], details: Mapping[str, Any] | None) -> RecordFacts:
        """From a stored record document and its record details (or None)."""
        expl = record.get("anomaly_score_explanation") or {}
        d = details or {}
        rarity = expl.get("by_field_relative_rarity")
        known = d.get("values_known")
        identities = d.get("identities") or {}
        return cls(
            user=str(record.get("by_field_value", "")),
            time=from_epoch_ms(int(record["timestamp"])),
            bucket_span=timedelta(seconds=int(record.get("bucket_span", 900))),
            record_score=float(record.get("record_score", 0.0)),
            initial_record_score=float(record.get("initial_record_score", 0.0)),
            probability=float(record.get("probability", 1.0)),
            first_occurrence=bool(expl.get("by_field_first_occurrence", False)),
            relative_rarity=None if rarity is None else float(rarity),
            values_known=None if known is None else int(known),
            total_concentration=_float_or_none(d.get("total_concentration")),
            concentration=_float_or_none(d.get("concentration")),
            identities=tuple((str(k), tuple(str(x) for x in v)) for k, v in identities.items()),
            profile_reason=_str_or_none(record.get("rarebird.profile.reason")),
            profile_words=_str_or_none(record.get("rarebird.profile.explanation")),
        )


@dataclass(frozen=True, slots=True)
class UserActivity:
    """The user's discovery commands the store kept, up to the anomaly's bucket."""

    #: the user's last kept event before the anomaly's bucket (None: none kept)
    last_seen_before: datetime | None
    #: buckets of the fleet window in which the user ran such commands (this one included)
    active_buckets: int
    #: buckets in the fleet window
    window_buckets: int


@dataclass(frozen=True, slots=True)
class FleetActivity:
    """Who ran such commands in a window before (and including) the anomaly's bucket."""

    start: datetime
    end: datetime
    user_count: int
    #: user-buckets with such commands, all users together
    total: int
    #: the most active users and their user-buckets, most active first
    top: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ScoreRank:
    """Where the score stands among the job's (final) anomaly records."""

    lower: int
    total: int


@dataclass(frozen=True, slots=True)
class Explanation:
    """A short phrase (table cells) and full sentences (triage, the alert page)."""

    summary: str
    lines: tuple[str, ...]


def explain(
    facts: RecordFacts,
    *,
    activity: UserActivity | None = None,
    fleet: FleetActivity | None = None,
    rank: ScoreRank | None = None,
) -> Explanation:
    """The anomaly in plain words: recency, who dominates, the probability, the rank.

    >>> f = RecordFacts("alice", from_epoch_ms(86_400_000 * 20), timedelta(minutes=15),
    ...                 36.75, 36.75, 0.00627, values_known=5)
    >>> e = explain(f, activity=UserActivity(from_epoch_ms(86_400_000 * 19), 8, 1344),
    ...             fleet=FleetActivity(f.time - timedelta(days=14), f.time, 5, 1900, (("monitor", 1344),
    ...                                 ("nagios", 540), ("alice", 8))),
    ...             rank=ScoreRank(11, 12))
    >>> e.summary
    'last seen 24 hours ago; monitor and nagios hold 99 %; above 91 % of anomalies'
    >>> print(e.lines[1])
    5 users ran these commands in the 14 days to 1970-01-20; monitor and nagios account for 99 % of the 1,900 user-buckets with them; alice ran them in 8 of those 1,344 buckets.
    """
    user = facts.user
    lines: list[str] = []
    phrases: list[str] = []
    if facts.profile_reason == "host_first":
        # not the job's anomaly: the quiet profile's own alert (record score 0)
        words = facts.profile_words or "the first network discovery run on this host"
        return Explanation(
            "first discovery run on this host",
            (f"The quiet profile raised this alert: {words}. The job did not score it "
             f"({user} is not rare); it is the host, not the user, that is new to these tools.",),
        )  # fmt: skip
    if facts.profile_reason and facts.profile_words:
        lines.append(f"The quiet profile kept this alert: {facts.profile_words}.")
        phrases.append(f"kept: {facts.profile_reason.replace('_', ' ')}")
    recency = _recency(facts, activity)
    if recency is not None:
        lines.append(recency[0])
        phrases.append(recency[1])
    share = _share(facts, activity, fleet)
    if share is not None:
        lines.append(share[0])
        if share[1]:
            phrases.append(share[1])
    p = facts.probability
    if 0 < p <= 1:
        lines.append(
            f"Users as rare as {user} or rarer account for {_pct(p)} % of the activity the "
            f"model has seen (Elastic's probability, {p:.3g})."
        )
    else:
        lines.append("The probability is out of range: this record is suspect.")
    if rank is not None and rank.total > 1:
        pct = math.floor(100 * rank.lower / rank.total)
        label = f"Its score, {facts.record_score:.1f} ({severity(facts.record_score)}),"
        if pct >= 50:
            lines.append(f"{label} is higher than {pct} % of this job's {rank.total:,} anomaly records.")  # fmt: skip
        else:
            lines.append(f"{label} ranks {rank.total - rank.lower:,} of this job's {rank.total:,} anomaly records (1 is the highest).")  # fmt: skip
        if pct >= 50:
            phrases.append(f"above {pct} % of anomalies")
    if facts.record_score != facts.initial_record_score:
        lines.append(
            f"Renormalised since it was found: initially {facts.initial_record_score:.1f}, "
            f"now {facts.record_score:.1f}."
        )
    if facts.identities:
        seen = "; ".join(f"{k} {', '.join(v)}" for k, v in facts.identities)
        lines.append(f"The same events name {user} also as: {seen}.")
    return Explanation("; ".join(phrases), tuple(lines))


def _recency(facts: RecordFacts, activity: UserActivity | None) -> tuple[str, str] | None:
    user = facts.user
    last = activity.last_seen_before if activity is not None else None
    if facts.first_occurrence and last is None:
        return f"First time {user} ran these commands.", "first time"
    if facts.first_occurrence and last is not None:
        ago = human_delta(facts.time - last)
        return (
            f"First time the model saw {user} run these commands: the last time was {ago} "
            f"earlier ({last:%Y-%m-%d}), long enough ago to be forgotten.",
            f"first time (forgotten after {ago})",
        )
    if last is not None:
        ago = human_delta(facts.time - last)
        return (
            f"{user} last ran these commands {ago} before this ({last:%Y-%m-%d %H:%M} UTC).",
            f"last seen {ago} ago",
        )
    if activity is not None:
        # the model knew the user, but the store keeps no earlier event (a trimmed history)
        return f"{user} had run these commands before (earlier events are not kept).", ""
    return None


def _share(
    facts: RecordFacts, activity: UserActivity | None, fleet: FleetActivity | None
) -> tuple[str, str] | None:
    user = facts.user
    if fleet is not None and fleet.total > 0:
        named = _dominant(fleet, user)
        days = max(1, round((fleet.end - fleet.start) / timedelta(days=1)))
        last_day = fleet.end - timedelta(milliseconds=1)
        users = f"{fleet.user_count:,} user{'s' if fleet.user_count != 1 else ''}"
        text = f"{users} ran these commands in the {days} days to {last_day:%Y-%m-%d}"
        phrase = ""
        if named:
            held = sum(n for _, n in named) / fleet.total
            who = _and([name for name, _ in named])
            text += (
                f"; {who} account{'s' if len(named) == 1 else ''} for {_pct_whole(held)} % of "
                f"the {fleet.total:,} user-buckets with them"
            )
            phrase = f"{who} hold{'s' if len(named) == 1 else ''} {_pct_whole(held)} %"
        if activity is not None:
            text += (
                f"; {user} ran them in {activity.active_buckets:,} of those "
                f"{activity.window_buckets:,} buckets"
            )
        return text + ".", phrase
    if facts.values_known and facts.total_concentration and facts.concentration is not None:
        share = facts.concentration / facts.total_concentration
        return (
            f"The model knew {facts.values_known:,} users running these commands; {user}'s "
            f"share of their activity was {_pct(share)} %.",
            "",
        )
    return None


def _dominant(fleet: FleetActivity, user: str) -> list[tuple[str, int]]:
    """The fewest top users (at most three, not the anomalous one) holding most activity."""
    named: list[tuple[str, int]] = []
    held = 0
    for name, n in fleet.top:
        if name == user or len(named) == _MAX_NAMED:
            break
        named.append((name, n))
        held += n
        if held >= _DOMINANT_SHARE * fleet.total:
            return named
    return named if held >= 0.5 * fleet.total else []


def human_delta(delta: timedelta) -> str:
    """A duration as people say it.

    >>> human_delta(timedelta(days=23, hours=5)), human_delta(timedelta(hours=5))
    ('23 days', '5 hours')
    >>> human_delta(timedelta(minutes=1)), human_delta(timedelta(hours=30))
    ('1 minute', '30 hours')
    >>> human_delta(timedelta(seconds=0)), human_delta(timedelta(days=1))
    ('0 seconds', '24 hours')
    """
    seconds = max(0.0, delta.total_seconds())
    for size, unit, least in ((86_400, "day", 2), (3600, "hour", 2), (60, "minute", 1)):
        if seconds >= least * size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    n = int(seconds)
    return f"{n} second{'s' if n != 1 else ''}"


def _and(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def _pct(share: float) -> str:
    """A share in per cent with two significant digits (0.63, 12, 99)."""
    value = 100 * share
    if value >= 10:
        return f"{value:.0f}"
    return f"{value:.2g}"


def _pct_whole(share: float) -> str:
    """A large share, never rounded up to 100 unless it is all."""
    value = 100 * share
    return "100" if share >= 1 else f"{min(math.floor(value), 99)}"


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)
