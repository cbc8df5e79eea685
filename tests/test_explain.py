"""rarebird.explain: the words put on Elastic's numbers name what drove the score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rarebird.explain import (
    FleetActivity,
    RecordFacts,
    ScoreRank,
    UserActivity,
    explain,
    severity,
)

T = datetime(2026, 1, 16, 9, 30, tzinfo=UTC)
SPAN = timedelta(minutes=15)


def facts(
    user: str = "alice", score: float = 36.75, p: float = 0.00627, *, initial: float | None = None,
    first_occurrence: bool = False, relative_rarity: float | None = None,
    values_known: int | None = None, total_concentration: float | None = None,
    concentration: float | None = None, identities: tuple[tuple[str, tuple[str, ...]], ...] = (),
) -> RecordFacts:  # fmt: skip
    return RecordFacts(user, T, SPAN, score, score if initial is None else initial, p,
                       first_occurrence, relative_rarity, values_known, total_concentration,
                       concentration, identities)  # fmt: skip


FLEET = FleetActivity(T - timedelta(days=14), T, 5, 1925,
                      (("svc_monitor", 1344), ("nagios", 570), ("alice", 8), ("bob", 6), ("www-data", 1)))  # fmt: skip


@pytest.mark.parametrize(("score", "label"), [(100, "critical"), (75, "critical"), (74.99, "major"),
                                              (50, "major"), (25, "minor"), (24.9, "warning"),
                                              (3, "warning"), (2.9, "low"), (0, "low")])  # fmt: skip
def test_elastic_severity_bands(score: float, label: str) -> None:
    assert severity(score) == label


def test_the_median_user_of_a_fleet_dominated_by_service_accounts() -> None:
    # the case: alice is the median of five users and read "1x rarer than typical";
    # what drove her score is that two service accounts hold ~99 % of the activity
    e = explain(facts(relative_rarity=1.0), fleet=FLEET,
                activity=UserActivity(T - timedelta(hours=18), 8, 1344), rank=ScoreRank(0, 12))  # fmt: skip
    assert e.summary == "last seen 18 hours ago; svc_monitor and nagios hold 99 %"
    assert (
        e.lines[0] == "alice last ran these commands 18 hours before this (2026-01-15 15:30 UTC)."
    )
    assert e.lines[1] == (
        "5 users ran these commands in the 14 days to 2026-01-16; svc_monitor and nagios account "
        "for 99 % of the 1,925 user-buckets with them; alice ran them in 8 of those 1,344 buckets."
    )
    assert "0.63 %" in e.lines[2]
    assert (
        e.lines[3]
        == "Its score, 36.8 (minor), ranks 12 of this job's 12 anomaly records (1 is the highest)."
    )
    assert not any("rarer than typical" in line or "ceiling" in line for line in e.lines)


def test_first_time_and_forgotten() -> None:
    new = explain(facts("www-data", 70.76, 0.000677, first_occurrence=True),
                  activity=UserActivity(None, 1, 1344), fleet=FLEET, rank=ScoreRank(11, 12))  # fmt: skip
    assert new.lines[0] == "First time www-data ran these commands."
    assert new.summary.startswith("first time; svc_monitor and nagios hold")
    assert new.summary.endswith("above 91 % of anomalies")
    assert "is higher than 91 % of this job's 12 anomaly records" in new.lines[-1]
    back = explain(facts("bob", first_occurrence=True),
                   activity=UserActivity(T - timedelta(days=23), 1, 1344))  # fmt: skip
    assert back.summary == "first time (forgotten after 23 days)"
    assert "the last time was 23 days earlier" in back.lines[0]


def test_the_anomalous_user_is_never_named_as_the_one_who_dominates() -> None:
    fleet = FleetActivity(T - timedelta(days=14), T, 3, 100, (("root", 60), ("bob", 35), ("x", 5)))
    e = explain(facts("bob"), fleet=fleet)
    # root alone holds 60 %: named, and bob (next) is not
    assert e.summary == "root holds 60 %"
    assert "root accounts for 60 %" in e.lines[0]
    spread = FleetActivity(T - timedelta(days=14), T, 10, 100, tuple((f"u{i}", 10) for i in range(10)))  # fmt: skip
    assert "account" not in explain(facts("u9"), fleet=spread).lines[0]


def test_without_history_the_model_context_speaks() -> None:
    e = explain(facts(values_known=5, total_concentration=1925.1, concentration=7.24))
    assert e.summary == ""
    assert (
        e.lines[0]
        == "The model knew 5 users running these commands; alice's share of their activity was 0.38 %."
    )


def test_renormalised_identities_and_bad_probabilities() -> None:
    e = explain(facts(score=30.0, initial=40.0, identities=(("user.audit.name", ("root",)),)))
    assert "Renormalised since it was found: initially 40.0, now 30.0." in e.lines
    assert "The same events name alice also as: user.audit.name root." in e.lines
    assert "suspect" in explain(facts(p=0.0)).lines[-1]


def test_from_docs_reads_elastic_fields_and_rarebird_details() -> None:
    record = {"by_field_value": "alice", "timestamp": int(T.timestamp() * 1000), "bucket_span": 900,
              "record_score": 36.7, "initial_record_score": 36.7, "probability": 0.006,
              "anomaly_score_explanation": {"by_field_first_occurrence": True,
                                            "by_field_relative_rarity": 1.02}}  # fmt: skip
    details = {"values_known": 5.0, "total_concentration": 10.0, "concentration": 1.0,
               "identities": {"user.id": ["1000"]}}  # fmt: skip
    f = RecordFacts.from_docs(record, details)
    assert f.time == T
    assert f.first_occurrence
    assert f.relative_rarity == 1.02
    assert f.values_known == 5
    assert f.identities == (("user.id", ("1000",)),)
    assert RecordFacts.from_docs(record, None).values_known is None
