"""The results hierarchy's shortcuts keep every observable result exact."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.detectors.aggregate import UNREMARKABLE
from rarebird.detectors.maths import ATTRIBUTES, DETECTORS, MAXIMUM_ANOMALOUS_PROBABILITY, aggregate


@given(st.lists(st.floats(min_value=UNREMARKABLE, max_value=1.0), min_size=2, max_size=60))
@settings(max_examples=400, deadline=None)
def test_unremarkable_children_never_make_an_anomaly(probabilities: list[float]) -> None:
    raw, p = aggregate([aggregate(probabilities, ATTRIBUTES)[1]], DETECTORS)
    assert raw == 0.0
    assert p > MAXIMUM_ANOMALOUS_PROBABILITY
    assert p >= 0.2


def test_the_worst_case_is_five_children_at_the_bound() -> None:
    raw, p = aggregate([aggregate([UNREMARKABLE] * 5, ATTRIBUTES)[1]], DETECTORS)
    assert raw == 0.0
    assert 0.2 < p < 0.5
