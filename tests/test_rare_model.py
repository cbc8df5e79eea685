"""The decayed Dirichlet and its probability, with the spec's worked numbers."""

from __future__ import annotations

import math

import pytest

from rarebird.detectors.rare import RareModel, beta_samples, number_prior_samples


@pytest.mark.parametrize(
    ("concentrations", "expected"),
    [
        ({"a": 1.0}, {"a": 1.0}),
        ({"a": 1.0, "b": 1.0}, {"a": 0.764, "b": 0.764}),
        (
            {"root": 1000.0, "admin": 500.0, "new": 1.0},
            {"new": 7.0e-4, "admin": 0.367, "root": 1.0},
        ),
        (
            {"root": 3000.0, "admin": 200.0, "svc": 50.0, "new": 1.0},
            {"new": 3.3e-4, "svc": 0.0169, "admin": 0.080},
        ),
        ({"root": 90.0, "new": 1.0}, {"new": 0.0116}),
        ({"root": 20.0, "new": 1.0}, {"new": 0.051}),
    ],
)
def test_spec_probabilities(concentrations: dict[str, float], expected: dict[str, float]) -> None:
    model = RareModel.from_concentrations(concentrations)
    for value, p in expected.items():
        got = model.probability(value)
        assert got is not None
        # the spec gives 2-3 significant digits
        assert got == pytest.approx(p, rel=0.015), value


def test_new_user_beside_root_at_20_is_not_even_a_record() -> None:
    model = RareModel.from_concentrations({"root": 20.0, "new": 1.0})
    p = model.probability("new")
    assert p is not None
    assert p > 0.035


def test_number_of_beta_slices() -> None:
    assert [number_prior_samples(a) for a in (5, 100, 101, 1000, 1001, 10000, 10001)] == [
        7,
        7,
        5,
        5,
        3,
        3,
        1,
    ]


def test_beta_slices_average_to_the_mean() -> None:
    samples = beta_samples(3.0, 40.0, 7)
    assert len(samples) == 7
    assert sum(samples) / 7 == pytest.approx(3.0 / 43.0, rel=1e-9)
    assert samples == sorted(samples)


def test_one_per_bucket_and_decay_only_on_non_empty_buckets() -> None:
    model = RareModel(900)
    model.learn(0, ["alice"])
    f = math.exp(-0.00025)
    assert model.concentration("alice") == pytest.approx(1.0 * f)
    model.learn(1, [])  # empty bucket: no decay
    assert model.concentration("alice") == pytest.approx(f)
    model.learn(2, ["alice", "bob"])
    assert model.concentration("alice") == pytest.approx((f + 1.0) * f)
    assert model.concentration("bob") == pytest.approx(f)


def test_decay_rate_scales_with_short_buckets() -> None:
    model = RareModel(60)
    model.learn(0, ["a"])
    assert model.concentration("a") == pytest.approx(math.exp(-0.0005 * 60 / 1800))


def test_lone_user_in_first_bucket_has_probability_one() -> None:
    model = RareModel(900)
    model.learn(0, ["alice"])
    assert model.probability("alice") == 1.0


def test_explanation_first_occurrence_and_relative_rarity() -> None:
    model = RareModel(900)
    for b in range(100):
        model.learn(b, ["root", "svc", "admin"] if b % 2 else ["root", "svc"])
    model.learn(100, ["root", "mallory"])
    scores = {s.value: s for s in model.score(100, ["root", "mallory"])}
    assert scores["mallory"].first_occurrence is True
    assert scores["root"].first_occurrence is False
    median = sorted(model.concentration(v) for v in ("root", "svc", "admin", "mallory"))
    expected = (median[1] + median[2]) / 2 / model.concentration("mallory")
    assert scores["mallory"].relative_rarity == pytest.approx(expected)
    assert scores["mallory"].probability < 0.035 < scores["root"].probability


def test_values_unseen_for_the_prune_window_are_forgotten_and_new_again() -> None:
    model = RareModel(900)
    assert model.prune_window == 16000
    model.learn(0, ["carol", "root"])
    model.learn(15999, ["root"])
    assert model.prune(16000) == []
    assert model.prune(16001) == ["carol"]
    assert "carol" not in model
    model.learn(16002, ["carol"])
    assert model.score(16002, ["carol"])[0].first_occurrence is True


def test_state_round_trip_gives_the_same_probabilities() -> None:
    model = RareModel(900)
    for b in range(50):
        model.learn(b, ["a", "b"] if b % 3 else ["a", "c", "d"])
    again = RareModel.from_state(model.to_state())
    for v in "abcd":
        assert again.probability(v) == model.probability(v)
    assert again.to_state() == model.to_state()


def test_unseen_value_gets_the_smallest_probability() -> None:
    model = RareModel.from_concentrations({"root": 300.0, "svc": 20.0, "odd": 2.0})
    assert model.smallest_probability() == model.probability("odd")
