"""Elastic's own engine, reproduced: every oracle scenario through ``rarebird job run``.

For each scenario in ``../shared/oracle`` the NDJSON input goes through the real CLI (a
subprocess) with the oracle's job definition; the stored results must match what Elastic's
``autodetect`` wrote: the same records, probability within 1 % relative, scores within 1 point,
influencers and explanation fields equal, every bucket's and bucket influencer's anomaly_score
and every influencer's score within 1 point.

``job run --renormalize`` is held to what Elasticsearch's renormaliser makes of the engine's
results with the engine's own quantiles documents (``tests/oracle_support.py``), also within
1 point.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import oracle_support
from tests.conftest import SHARED, shared_path

pytestmark = pytest.mark.corpora

#: every scenario the oracle holds (the first seven when ../shared is absent: those tests skip)
SCENARIOS = (
    oracle_support.scenarios(SHARED / "oracle")
    if (SHARED / "oracle" / "outputs").is_dir()
    else [
        "a_new_user_after_14d",
        "b_new_user_after_1h",
        "b_new_user_after_4h",
        "d_returning_user_after_30d",
        "e_two_new_users_same_bucket",
        "h_high_volume_regular_then_new",
        "j_many_users_60_long",
    ]
)
TOLERANCE = 1.0


def _rarebird(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "rarebird", *args], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _run(store: Path, name: str, *flags: str) -> dict[str, list[dict]]:
    oracle = shared_path("oracle")
    _rarebird("job", "run", "--quiet", *flags, "--store", str(store), "--job",
              str(oracle / "job_config.json"), str(oracle / "inputs" / f"{name}.ndjson"))  # fmt: skip
    return {
        kind: json.loads(
            _rarebird(
                "results",
                "--store",
                str(store),
                "--type",
                kind,
                "--format",
                "json",
                "--limit",
                "0",
                "--sort",
                "time",
            )  # fmt: skip
        )
        for kind in ("record", "bucket", "influencer")
    }


@pytest.fixture(scope="module")
def oracle_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[dict]]]:
    return {name: _run(tmp_path_factory.mktemp(name) / "rb.db", name) for name in SCENARIOS}


def _csv(oracle: Path, name: str, kind: str) -> list[dict[str, str]]:
    with open(oracle / "outputs" / f"{name}.{kind}.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("name", SCENARIOS)
def test_records_match_elastic(oracle_runs: dict, name: str) -> None:
    oracle = shared_path("oracle")
    expected = {(int(r["timestamp_s"]), r["user.name"]): r for r in _csv(oracle, name, "records")}
    got = {(r["timestamp"] // 1000, r["by_field_value"]): r for r in oracle_runs[name]["record"]}
    assert set(got) == set(expected)
    for key, want in expected.items():
        rec = got[key]
        assert rec["probability"] == pytest.approx(float(want["probability"]), rel=0.01)
        assert rec["record_score"] == pytest.approx(float(want["record_score"]), abs=TOLERANCE)
        assert rec["initial_record_score"] == pytest.approx(
            float(want["initial_record_score"]), abs=TOLERANCE
        )
        assert rec["typical"] == pytest.approx(json.loads(want["typical"]), rel=0.01)
        assert rec["actual"] == json.loads(want["actual"])
        assert rec["multi_bucket_impact"] == float(want["multi_bucket_impact"])
        want_expl = json.loads(want["anomaly_score_explanation"])
        got_expl = rec.get("anomaly_score_explanation", {})
        assert set(got_expl) == set(want_expl)
        assert got_expl.get("by_field_first_occurrence") == want_expl.get(
            "by_field_first_occurrence"
        )
        assert got_expl["by_field_relative_rarity"] == pytest.approx(
            want_expl["by_field_relative_rarity"], rel=1e-6
        )
        want_infl = {k: sorted(v) for k, v in json.loads(want["influencers"]).items()}
        got_infl = {i["influencer_field_name"]: sorted(i["influencer_field_values"])
                    for i in rec["influencers"]}  # fmt: skip
        assert got_infl == want_infl


@pytest.mark.parametrize("name", SCENARIOS)
def test_buckets_match_elastic(oracle_runs: dict, name: str) -> None:
    oracle = shared_path("oracle")
    expected = {int(b["timestamp_s"]): b for b in _csv(oracle, name, "buckets")}
    got = {b["timestamp"] // 1000: b for b in oracle_runs[name]["bucket"]}
    assert set(got) == set(expected)
    for ts, want in expected.items():
        bucket = got[ts]
        assert bucket["anomaly_score"] == pytest.approx(
            float(want["anomaly_score"]), abs=TOLERANCE
        ), ts
        assert bucket["event_count"] == int(want["event_count"]), ts
        assert len(bucket["bucket_influencers"]) == int(want["n_bucket_influencers"]), ts
        if want["bucket_time_probability"]:
            (bt,) = [b for b in bucket["bucket_influencers"]
                     if b["influencer_field_name"] == "bucket_time"]  # fmt: skip
            assert bt["probability"] == pytest.approx(
                float(want["bucket_time_probability"]), rel=0.01
            )
            assert bt["raw_anomaly_score"] == pytest.approx(
                float(want["bucket_time_raw_anomaly_score"]), rel=0.01, abs=1e-9
            )


@pytest.mark.parametrize("name", SCENARIOS)
def test_influencers_match_elastic(oracle_runs: dict, name: str) -> None:
    oracle = shared_path("oracle")
    expected = {
        (int(i["timestamp_s"]), i["influencer_field_name"], i["influencer_field_value"]): i
        for i in _csv(oracle, name, "influencers")
    }
    got = {
        (i["timestamp"] // 1000, i["influencer_field_name"], i["influencer_field_value"]): i
        for i in oracle_runs[name]["influencer"]
    }
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key]["probability"] == pytest.approx(float(want["probability"]), rel=0.01)
        assert got[key]["influencer_score"] == pytest.approx(
            float(want["influencer_score"]), abs=TOLERANCE
        )


def test_oracle_bucket_influencer_scores(oracle_runs: dict) -> None:
    """Per-field bucket influencer scores, from the raw engine output (not in the CSVs)."""
    oracle = shared_path("oracle")
    for name in SCENARIOS:
        raw = json.loads((oracle / "outputs" / f"{name}.json").read_text())
        got = {b["timestamp"]: b for b in oracle_runs[name]["bucket"]}
        for doc in raw:
            bucket = doc.get("bucket")
            if not bucket or not bucket.get("bucket_influencers"):
                continue
            mine = {
                b["influencer_field_name"]: b
                for b in got[bucket["timestamp"]]["bucket_influencers"]
            }
            for bi in bucket["bucket_influencers"]:
                m = mine[bi["influencer_field_name"]]
                assert m["anomaly_score"] == pytest.approx(bi["anomaly_score"], abs=TOLERANCE)
                assert m["probability"] == pytest.approx(bi["probability"], rel=0.01)


@pytest.mark.parametrize("name", SCENARIOS)
def test_every_score_within_a_point(oracle_runs: dict, name: str) -> None:
    """Records, buckets, bucket influencers and influencers, from the raw engine output."""
    docs = oracle_support.raw_output(shared_path("oracle"), name)
    want = oracle_support.engine_scores(docs)
    run = oracle_runs[name]
    got = oracle_support.rarebird_scores(run["record"], run["bucket"], run["influencer"])
    for kind in oracle_support.KINDS:
        assert set(got[kind]) == set(want[kind]), kind
        delta, key = oracle_support.worst(got[kind], want[kind])
        assert delta <= TOLERANCE, (kind, key, got[kind].get(key), want[kind].get(key))


@pytest.mark.parametrize("name", SCENARIOS)
def test_renormalised_scores_match_elasticsearch(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    """``job run --renormalize`` against Elasticsearch's renormaliser fed the engine's own
    quantiles documents: the same triggers, the same window, the same big-update rule."""
    docs = oracle_support.raw_output(shared_path("oracle"), name)
    want = oracle_support.elasticsearch_renormalised(docs)
    run = _run(tmp_path_factory.mktemp(f"{name}-renorm") / "rb.db", name, "--renormalize")
    got = oracle_support.rarebird_scores(run["record"], run["bucket"], run["influencer"])
    for kind in oracle_support.KINDS:
        assert set(got[kind]) == set(want[kind]), kind
        delta, key = oracle_support.worst(got[kind], want[kind])
        assert delta <= TOLERANCE, (kind, key, got[kind].get(key), want[kind].get(key))
