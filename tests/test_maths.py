"""The score curve and the probability cap, with the spec's exact numbers."""

from __future__ import annotations

import math

import pytest

from rarebird.detectors.maths import (
    ATTRIBUTES,
    PEOPLE,
    aggregate,
    anomaly_score,
    calibrated_log_probability_m_from_n,
    inverse_anomaly_score,
    log_joint_probability_upper_bound,
)
from rarebird.detectors.normalize import count_per_sample, decay_rate_for, probability_cap


@pytest.mark.parametrize(
    ("p", "score"),
    [(0.05, 0.0), (0.5, 0.0), (1e-4, 1.0), (1e-50, 50.0), (2.2250738585072014e-308, 100.0)],
)
def test_anomaly_score_knots(p: float, score: float) -> None:
    assert anomaly_score(p) == pytest.approx(score, abs=1e-9)


def test_anomaly_score_is_linear_in_one_over_p_above_1e4() -> None:
    assert anomaly_score(1e-3) == pytest.approx((1000 - 20) / (10000 - 20))


@pytest.mark.parametrize("p", [0.049, 0.01, 1e-4, 3e-7, 1e-50, 1e-200])
def test_inverse_is_exact(p: float) -> None:
    assert inverse_anomaly_score(anomaly_score(p)) == pytest.approx(p, rel=1e-9)


@pytest.mark.parametrize(
    ("p", "cap"),
    [
        (0.035, 10.45),
        (0.0135, 25.0),
        (0.01, 29.6),
        (0.005, 40.2),
        (0.001, 64.8),
        (3e-4, 83.2),
        (1e-4, 100.0),
    ],
)
def test_probability_cap_table_of_the_spec(p: float, cap: float) -> None:
    assert probability_cap(anomaly_score(p)) == pytest.approx(cap, abs=0.05)


def test_record_score_of_25_needs_p_at_most_0_0135() -> None:
    assert probability_cap(anomaly_score(0.0136)) < 25.0
    assert probability_cap(anomaly_score(0.0134)) > 25.0


def test_decay_and_sampling_for_15_minutes() -> None:
    assert decay_rate_for(900) == 0.00025
    assert count_per_sample(900) == 2
    assert count_per_sample(3600) == 1
    assert count_per_sample(5) == 12


def test_single_probability_joint_is_itself() -> None:
    assert math.exp(log_joint_probability_upper_bound([0.01])) == pytest.approx(0.01)


def test_two_small_probabilities_are_jointly_smaller() -> None:
    assert math.exp(log_joint_probability_upper_bound([1e-3, 1e-3])) < 1e-3


def test_extreme_of_one_from_n_is_one_minus_power() -> None:
    p = 3.5e-4
    got = math.exp(calibrated_log_probability_m_from_n([p, 0.5, 1.0], 1))
    assert got == pytest.approx(1 - (1 - p) ** 3, rel=1e-9)


def test_people_style_is_the_most_extreme_of_n() -> None:
    raw, p = aggregate([3.5e-4, 0.9, 1.0, 0.5], PEOPLE)
    assert p == pytest.approx(1 - (1 - 3.5e-4) ** 4, rel=1e-9)
    assert raw == pytest.approx(0.8 * anomaly_score(p), rel=1e-9)


def test_attributes_style_sees_two_tied_rare_values() -> None:
    # the oracle's two-new-users bucket: raw 0.641287 (Elastic's engine)
    probs = [
        0.8773757610756532,
        1.0,
        5.723189405897549e-4,
        0.5810740306529467,
        5.723189405897549e-4,
    ]
    raw, _ = aggregate(probs, ATTRIBUTES)
    assert raw == pytest.approx(0.641286917565106, rel=1e-6)


def test_scipy_is_imported_at_the_first_score_and_then_called_directly() -> None:
    """Importing the maths does not import SciPy (0.3 s; a --workers run starts its workers
    first); the first call does, and puts SciPy's own functions in place of the stand-ins."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from rarebird.detectors import maths\n"
        "print('scipy' in sys.modules)\n"
        "print(maths.gammaln(5.0), maths.ndtri(0.025))\n"
        "import scipy.special\n"
        "print(all(getattr(maths, n) is getattr(scipy.special, n) for n in maths._SPECIAL))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "False"
    log24, z = (float(x) for x in out[1].split())
    assert log24 == pytest.approx(3.1780538303479458, rel=1e-15)  # ln(4!)
    assert z == pytest.approx(-1.959963984540054, rel=1e-12)
    assert out[2] == "True"
