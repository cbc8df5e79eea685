"""The job's bucketing, counting, state and results documents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rarebird.definitions import job_from_dict, load_job
from rarebird.events import ProcessEvent
from rarebird.job import AnomalyJob
from rarebird.store import open_store
from rarebird.store.jobs import load_job as load_job_from
from rarebird.store.jobs import save_job
from rarebird.store.results import search_results

T0 = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, epoch-aligned to any bucket span used here


def ev(minutes: float, user: str | None, process: str = "ss", host: str = "h1",
       args: tuple[str, ...] = ("ss", "-tan")) -> ProcessEvent:  # fmt: skip
    return ProcessEvent(
        timestamp=T0 + timedelta(minutes=minutes),
        event_type=("start",),
        user_name=user,
        process_name=process,
        process_args=args,
        host_name=host,
        host_os_type="linux",
    )


def job_with_span(span: str) -> AnomalyJob:
    doc = {
        "analysis_config": {
            "bucket_span": span,
            "detectors": [{"function": "rare", "by_field_name": "user.name"}],
            "influencers": ["process.name", "host.name", "process.args", "user.name"],
        },
        "analysis_limits": {"model_memory_limit": "64mb"},
        "data_description": {"time_field": "@timestamp"},
    }
    return AnomalyJob(job_from_dict(doc, f"span_{span}.json"))


def regular_history(job: AnomalyJob, buckets: int, span_min: float = 15) -> None:
    for b in range(buckets):
        for i, user in enumerate(("alice", "bob", "svc")):
            if (b + i) % 5:
                job.feed(ev((b + 0.1 + 0.2 * i) * span_min, user))


def test_first_bucket_is_not_analysed_and_buckets_are_epoch_aligned() -> None:
    job = job_with_span("15m")
    out = job.feed(ev(3, "alice")) + job.feed(ev(16, "alice")) + job.finish()
    assert [r.bucket.timestamp for r in out] == [T0 + timedelta(minutes=15)]
    assert job.model.concentration("alice") == pytest.approx(0.99975, rel=1e-6)


@pytest.mark.parametrize(("span", "minutes"), [("5s", 5 / 60), ("1m", 1), ("1h", 60), ("1d", 1440)])
def test_any_bucket_span(span: str, minutes: float) -> None:
    job = job_with_span(span)
    regular_history(job, 200, minutes)
    out = job.feed(ev(200 * minutes + minutes / 2, "mallory"))
    out += job.feed(ev(201 * minutes + minutes / 2, "alice"))
    out += job.finish()
    records = [r for res in out for r in res.records]
    assert job.stats.bucket_count == 201  # 202 buckets seen, the first one skipped
    assert [r.by_field_value for r in records] == ["mallory"]
    assert records[0].bucket_span == int(minutes * 60)


def test_events_without_the_by_field_are_counted_not_modelled() -> None:
    job = job_with_span("15m")
    job.feed(ev(1, "alice"))
    job.feed(ev(16, None))
    job.feed(ev(17, "alice"))
    out = job.finish()
    assert job.stats.missing_field_count == 1
    assert job.stats.processed_record_count == 3
    assert out[-1].bucket.event_count == 2
    assert "None" not in job.model


def test_out_of_order_events_are_counted_and_dropped() -> None:
    job = job_with_span("15m")
    job.feed(ev(1, "alice"))
    job.feed(ev(31, "alice"))
    job.feed(ev(20, "bob"))  # older than the bucket being built
    job.finish()
    assert job.stats.out_of_order_timestamp_count == 1
    assert "bob" not in job.model


def test_one_count_per_bucket_however_many_events() -> None:
    a, b = job_with_span("15m"), job_with_span("15m")
    for job, n in ((a, 1), (b, 500)):
        job.feed(ev(1, "x"))
        for k in range(n):
            job.feed(ev(16 + k * 0.01, "alice"))
        job.finish()
    assert a.model.concentration("alice") == b.model.concentration("alice")


def test_new_user_after_history_is_a_scored_record_with_elastic_fields() -> None:
    job = job_with_span("15m")
    regular_history(job, 1400)
    results = job.feed(ev(1400 * 15 + 7, "mallory", "showmount", "h9", ("showmount", "-a")))
    results += job.finish()
    (rec,) = [r for res in results for r in res.records]
    doc = rec.to_doc()
    assert doc["result_type"] == "record"
    assert doc["by_field_name"] == "user.name"
    assert doc["by_field_value"] == "mallory"
    assert doc["function"] == doc["function_description"] == "rare"
    assert doc["probability"] < 0.001
    assert doc["record_score"] == doc["initial_record_score"] > 75
    assert doc["typical"] == [doc["probability"]]
    assert doc["actual"] == [1.0]
    assert doc["anomaly_score_explanation"]["by_field_first_occurrence"] is True
    assert doc["user.name"] == ["mallory"]
    assert doc["process.args"] == ["showmount,-a"]
    assert doc["timestamp"] == int((T0 + timedelta(minutes=1400 * 15)).timestamp() * 1000)
    from rarebird.results import java_objects_hash

    assert rec.doc_id == (
        f"{job.config.job_id}_record_{doc['timestamp']}_900_0_"
        f"{java_objects_hash('mallory', None, None)}_7"
    )


def test_record_ids_use_javas_hash_codes() -> None:
    from rarebird.results import java_objects_hash, java_string_hash

    assert java_string_hash("hello") == 99162322  # "hello".hashCode() in Java
    h = java_string_hash("mallory")
    expected = ((31 + h) * 31 * 31) % 2**32  # Objects.hash(by, null, null)
    assert java_objects_hash("mallory", None, None) == (
        expected - 2**32 if expected >= 2**31 else expected
    )


def test_model_memory_limit_refuses_new_users_and_counts_them() -> None:
    doc = {
        "analysis_config": {
            "bucket_span": "15m",
            "detectors": [{"function": "rare", "by_field_name": "user.name"}],
        },
        "analysis_limits": {"model_memory_limit": "1mb"},
    }
    job = AnomalyJob(job_from_dict(doc, "tiny.json"))
    for i in range(6000):
        job.feed(ev(1 + i * 0.001 + 15 * (i // 1000), f"user{i:05d}"))
    job.finish()
    assert job.stats.memory_status == "hard_limit"
    assert job.stats.new_values_refused > 0
    assert len(job.model) + job.stats.new_values_refused == 6000 - 1000  # first bucket skipped


def test_resume_after_any_bucket_equals_an_uninterrupted_run(tmp_path) -> None:
    events = []
    for b in range(300):
        for i, user in enumerate(("alice", "bob", "svc", "carol")):
            if (b * 7 + i * 3) % 11 < 6:
                events.append(ev(b * 15 + 2 + i, user))
    events.append(ev(300 * 15 + 5, "mallory"))
    events.append(ev(301 * 15 + 5, "trudy"))
    job_cfg = load_job()

    whole = tmp_path / "whole.db"
    with open_store(str(whole)) as store:
        job = load_job_from(store, job_cfg)
        for e in events:
            job.feed(e)
        job.finish()
        save_job(store, job)
        expected = search_results(store, "record", order="time").hits
        expected_buckets = search_results(store, "bucket", order="time").hits

    split = tmp_path / "split.db"
    cut = next(i for i, e in enumerate(events) if e.timestamp >= T0 + timedelta(minutes=150 * 15))
    for part in (events[:cut], events[cut:]):
        with open_store(str(split)) as store:
            job = load_job_from(store, job_cfg)
            for e in part:
                job.feed(e)
            job.finish()
            save_job(store, job)
    with open_store(str(split)) as store:
        assert search_results(store, "record", order="time").hits == expected
        assert search_results(store, "bucket", order="time").hits == expected_buckets
    assert [doc["by_field_value"] for _, doc in expected][-2:] == ["mallory", "trudy"]


def _renormalisation_run(tmp_path, name: str, save_every_bucket: bool) -> dict[str, dict]:
    with open_store(str(tmp_path / name)) as store:
        job = load_job_from(store, load_job(), renormalize=True)
        history = []
        for b in range(1500):
            for i, user in enumerate(("alice", "bob", "svc")):
                if (b + i) % 4:
                    history.append(ev((b + 0.1 + 0.2 * i) * 15, user))
            # several new users at once make the bucket's score the top of its distribution;
            # later, larger groups push the first one down
            for k in range({700: 2, 900: 3, 1100: 4}.get(b, 0)):
                history.append(ev((b + 0.9) * 15 + k * 0.01, f"intruder{b}_{k}"))
        for e in history:
            if job.feed(e) and save_every_bucket:
                save_job(store, job)
        job.finish()
        save_job(store, job)
        docs = {doc["by_field_value"]: doc for _, doc in search_results(store, "record").hits}
        for doc_id, doc in search_results(store, "bucket", min_score=1).hits:
            docs[doc_id] = doc
        return docs


def test_renormalisation_rescores_older_records_deterministically(tmp_path) -> None:
    often = _renormalisation_run(tmp_path, "often.db", save_every_bucket=True)
    once = _renormalisation_run(tmp_path, "once.db", save_every_bucket=False)
    assert often == once  # when results are committed does not change them
    assert once["intruder700_0"]["initial_record_score"] > 25
    buckets = [doc for doc in once.values() if doc["result_type"] == "bucket"]
    assert len(buckets) == 3
    # the first intruder's bucket was rescored when later ones raised the bucket scores' spread
    assert any(b["anomaly_score"] != b["initial_anomaly_score"] for b in buckets)


def test_interim_results_score_a_new_user_before_the_bucket_closes() -> None:
    job = job_with_span("15m")
    regular_history(job, 1400)
    job.feed(ev(1400 * 15 + 2, "alice"))
    job.feed(ev(1400 * 15 + 3, "mallory", "ss", "h9"))
    concentrations = job.model.to_state()
    interim = job.interim()
    assert interim is not None
    (rec,) = interim.records
    assert rec.by_field_value == "mallory"
    assert rec.is_interim
    assert rec.first_occurrence
    assert rec.record_score > 25
    assert job.model.to_state() == concentrations  # nothing learnt
    final = [r for res in job.finish() for r in res.records]
    assert [r.by_field_value for r in final] == ["mallory"]
    assert not final[0].is_interim


def test_elastic_interim_gives_a_new_user_the_smallest_known_probability() -> None:
    job = job_with_span("15m")
    regular_history(job, 1400)
    job.feed(ev(1400 * 15 + 3, "mallory"))
    interim = job.interim(elastic=True)
    assert interim is not None
    assert interim.records == ()  # among three regular users nothing known is rare
