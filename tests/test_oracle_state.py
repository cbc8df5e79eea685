"""rarebird's normalisers hold exactly the state of Elastic's engine, bucket for bucket.

The engine writes its normalisers' state (a ``quantiles`` document) whenever a scope's maximum
score jumps: j_many_users_60_long alone has 269 of them over 21 days, each with eleven
normalisers (records, the person level, the bucket, four influencer fields and four bucket
influencer fields). At every one of them every rarebird normaliser must hold the same q-digests
node for node, the same high-percentile score and count, the same pending sample, the same
quantile-decay clock and the same maximum score per scope (scopes matched through the engine's
64-bit dictionary words). This is what makes every score equal, not just close.
"""

from __future__ import annotations

import csv
from typing import Any

import pytest

from rarebird.definitions import load_datafeed, load_job
from rarebird.detectors.aggregate import Normalizers
from rarebird.run.engine import Engine
from rarebird.run.replay import replay_inputs
from rarebird.store import open_store
from tests import oracle_support
from tests.conftest import shared_path
from tests.test_oracle import SCENARIOS

pytestmark = pytest.mark.corpora

SPAN = oracle_support.BUCKET_SPAN


def _first_bucket(name: str) -> int:
    with open(shared_path("oracle", "inputs", f"{name}.csv"), newline="") as f:
        first = next(csv.DictReader(f))
    return int(first["@timestamp"]) // SPAN * SPAN


def _rarebird_states(
    monkeypatch: pytest.MonkeyPatch, name: str, times: set[int]
) -> dict[int, dict[str, dict[str, Any]]]:
    """rarebird's normaliser states at the end of the buckets starting at ``times``."""
    oracle = shared_path("oracle")
    first = _first_bucket(name)
    states: dict[int, dict[str, dict[str, Any]]] = {}
    calls = [0]
    original = Normalizers.propagate_forward

    def snapshot(norms: Normalizers, at: int) -> None:
        states[at] = {"leaf": norms.leaf.to_state(), "person": norms.person.to_state(),
                      "root": norms.root.to_state()}  # fmt: skip
        for field, norm in norms.influencer.items():
            states[at][f"influencer:{field}"] = norm.to_state()
        for field, norm in norms.influencer_bucket.items():
            states[at][f"influencer_bucket:{field}"] = norm.to_state()

    def propagate_forward(self: Normalizers, buckets: float = 1.0) -> None:
        # ageing starts a bucket: the state now is the one after the previous bucket
        ended = first + SPAN * calls[0]
        calls[0] += 1
        if ended in times:
            snapshot(self, ended)
        original(self, buckets)

    monkeypatch.setattr(Normalizers, "propagate_forward", propagate_forward)
    with open_store(":memory:") as store:
        engine = Engine(store, load_job(str(oracle / "job_config.json")), load_datafeed(None),
                        renormalize=False)  # fmt: skip
        replay_inputs(engine, [str(oracle / "inputs" / f"{name}.ndjson")])
        job = engine.job
    last = first + SPAN * calls[0]
    if last in times:
        snapshot(job.normalizers, last)
    return states


@pytest.mark.parametrize("name", SCENARIOS)
def test_normaliser_state_is_the_engines(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    docs = oracle_support.raw_output(shared_path("oracle"), name)
    quantiles = oracle_support.engine_quantiles(docs)
    states = _rarebird_states(monkeypatch, name, {q.time for q in quantiles})
    assert set(states) == {q.time for q in quantiles}
    for q in quantiles:
        mine = states[q.time]
        assert set(mine) == set(q.normalizers), q.time
        for level, engine in q.normalizers.items():
            got = oracle_support.comparable(mine[level])
            where = (q.time, level)
            for key in ("low", "high", "high_percentile_score", "high_percentile_count"):
                assert got[key] == engine[key], (*where, key)
            assert got["pending"][0] == engine["pending"][0], where
            assert got["pending"][1] == pytest.approx(engine["pending"][1], rel=1e-6), where
            assert got["time_to_quantile_decay"] == pytest.approx(
                engine["time_to_quantile_decay"], abs=1e-9
            ), where
            assert set(got["max_scores"]) == set(engine["max_scores"]), where
            for scope_key, (score, since) in engine["max_scores"].items():
                assert got["max_scores"][scope_key][0] == pytest.approx(score, rel=1e-6), where
                assert got["max_scores"][scope_key][1] == pytest.approx(since, abs=1e-3), where


def test_dictionary_words_are_the_engines() -> None:
    """Scope keys of the first j_many_users_60_long state (users of its first hours)."""
    assert oracle_support.dictionary_word("", "", "user.name", "zabbix") == 9392923283162088652
    assert oracle_support.dictionary_word("", "", "user.name", "bruno") == 14695508093710257235
    assert oracle_support.scope_key("user.name\x1f") == 8297468538753749981
