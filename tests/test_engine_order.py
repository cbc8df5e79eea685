"""The engine's order of a bucket's results and the person ids behind it.

Elastic's engine lists a bucket's people in the iteration order of a Boost 1.86
``unordered_set`` of their person ids; the normaliser pairs consecutive updates, so that order
reaches the scores (``docs/FIDELITY.md``).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rarebird.detectors.boost_order import unordered_order
from rarebird.detectors.rare import RareModel

DATA = Path(__file__).parent / "data" / "boost_unordered_order.json"


def _cases() -> list[dict[str, list[int]]]:
    cases: list[dict[str, list[int]]] = json.loads(DATA.read_text())["cases"]
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: f"n{len(c['inserted'])}")
def test_order_is_boost_186s(case: dict[str, list[int]]) -> None:
    """Golden orders printed by the real container (Boost 1.86.0 headers, g++ 12)."""
    assert unordered_order(case["inserted"]) == case["iterated"]


def test_small_sets_go_by_id_modulo_13_newest_first() -> None:
    # 13 buckets up to 13 ids: 41 -> bucket 2, 16 -> bucket 3 ahead of 3 (inserted later)
    assert unordered_order([0, 1, 3, 4, 16, 41]) == [0, 1, 41, 16, 3, 4]
    assert unordered_order(list(range(13))) == list(range(13))


def test_order_is_a_permutation_and_ignores_repeats() -> None:
    rng = random.Random(3)
    for n in (1, 14, 29, 70, 300):
        ids = sorted(rng.sample(range(10 * n), n))
        assert sorted(unordered_order(ids + ids[: n // 2])) == ids


def test_first_bucket_users_keep_their_person_ids() -> None:
    """The engine's data gatherer numbers the users of the unanalysed first bucket too."""
    model = RareModel(900)
    model.register(["zabbix", "svc_monitor", "svc_backup"])
    model.learn(1, ["svc_monitor", "nagios"])
    assert model.person_id("svc_backup") == 2
    assert model.person_id("nagios") == 3
    assert "svc_backup" not in model  # registered, not modelled
    assert len(model) == 2
    model.learn(2, ["svc_backup"])
    assert model.person_id("svc_backup") == 2
    assert "svc_backup" in model
    restored = RareModel.from_state(json.loads(json.dumps(model.to_state())))
    assert restored.person_id("zabbix") == 0
    assert restored.to_state() == model.to_state()


def test_result_order_follows_the_engine() -> None:
    model = RareModel(900)
    model.learn(0, [f"u{i}" for i in range(42)])
    present = ["u41", "u4", "u16", "u0", "u1", "u3"]
    assert model.result_order(present) == ["u0", "u1", "u41", "u16", "u3", "u4"]


def test_recycled_ids_go_smallest_first() -> None:
    model = RareModel(900, prune_window=5)
    model.learn(0, ["a", "b", "c", "d"])
    model.learn(3, ["a", "c"])
    model.learn(20, ["a"])
    assert sorted(model.prune(20)) == ["b", "c", "d"]
    model.learn(21, ["x", "y"])
    assert (model.person_id("x"), model.person_id("y")) == (1, 2)


def test_interim_scoring_leaves_reserved_ids_alone() -> None:
    model = RareModel(900)
    model.register(["early"])
    model.learn(1, ["other"])
    before = model.to_state()
    scores = model.score_as_if_learnt(2, ["early", "fresh"])
    assert {s.value for s in scores} == {"early", "fresh"}
    assert model.to_state() == before
    assert model.person_id("early") == 0
