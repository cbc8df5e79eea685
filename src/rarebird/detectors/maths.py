"""Probability arithmetic of Elastic's anomaly engine, re-derived and re-written in Python.

Sources (read for the formulas, not copied): elastic/ml-cpp ``lib/maths/common/CTools.cc``
(``anomalyScore`` / ``inverseAnomalyScore``), ``ProbabilityAggregators.cc``
(``CJointProbabilityOfLessLikelySamples``, ``CLogProbabilityOfMFromNExtremeSamples``),
``lib/model/CAnomalyScore.cc`` (``compute``: how several probabilities become one raw score),
``CAnomalyDetectorModelConfig.cc`` (aggregation style parameters). See
``../shared/spec/elastic-rare.md`` sections 2.1 and 2.5.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

_Special = Callable[..., Any]
_SPECIAL = ("betainc", "betaincinv", "gammaincc", "gammaln", "ndtri")


def _lazy(name: str) -> _Special:
    """A stand-in for ``scipy.special.<name>`` that imports SciPy at its first call and puts the
    real functions in its place, so later calls cost what SciPy's do (about 0.1 us; a wrapper
    that looked the module up at every call took 0.6 us).

    The import takes about 0.3 s (NumPy with it). A ``--workers`` run imports the job before its
    source starts the worker processes; imported at the first score, it runs while they read.
    """

    def first_call(*args: float) -> Any:
        from scipy import special

        for each in _SPECIAL:
            globals()[each] = getattr(special, each)
        return globals()[name](*args)

    return first_call


betainc: _Special = _lazy("betainc")
betaincinv: _Special = _lazy("betaincinv")
gammaincc: _Special = _lazy("gammaincc")
gammaln: _Special = _lazy("gammaln")
ndtri: _Special = _lazy("ndtri")


#: Probabilities at or above this have raw score 0 (``LARGEST_SIGNIFICANT_PROBABILITY``).
LARGEST_SIGNIFICANT_PROBABILITY = 0.05
#: Start of the logarithmic part of the score curve (``SMALL_PROBABILITY``).
SMALL_PROBABILITY = 1e-4
#: Start of the last, flattest part of the curve (``MINUSCULE_PROBABILITY``).
MINUSCULE_PROBABILITY = 1e-50
#: ``CTools::smallestProbability()``: the smallest normal double.
SMALLEST_PROBABILITY = sys.float_info.min
#: Results are written and fed to normalisers only below this (``DEFAULT_MAXIMUM_ANOMALOUS_PROBABILITY``).
MAXIMUM_ANOMALOUS_PROBABILITY = 0.035

_LOG_SMALL = math.log(SMALL_PROBABILITY)
_LOG_MINUSCULE = math.log(MINUSCULE_PROBABILITY)
_LOG_SMALLEST = math.log(SMALLEST_PROBABILITY)
_INV_LARGEST = 1.0 / LARGEST_SIGNIFICANT_PROBABILITY
_INV_SMALL = 1.0 / SMALL_PROBABILITY


def anomaly_score(p: float) -> float:
    """Raw anomaly score ("deviation") of a probability: 0 at p >= 0.05, 1 at 1e-4, 50 at 1e-50, 100 at DBL_MIN.

    >>> anomaly_score(0.05), anomaly_score(1e-4), round(anomaly_score(1e-50), 9)
    (0.0, 1.0, 50.0)
    """
    if p >= LARGEST_SIGNIFICANT_PROBABILITY:
        return 0.0
    if p >= SMALL_PROBABILITY:
        return (1.0 / p - _INV_LARGEST) / (_INV_SMALL - _INV_LARGEST)
    if p >= MINUSCULE_PROBABILITY:
        return 1.0 + 49.0 * (math.log(p) - _LOG_SMALL) / (_LOG_MINUSCULE - _LOG_SMALL)
    p = max(p, SMALLEST_PROBABILITY)
    return 50.0 + 50.0 * (math.log(p) - _LOG_MINUSCULE) / (_LOG_SMALLEST - _LOG_MINUSCULE)


def inverse_anomaly_score(score: float) -> float:
    """The probability whose raw score is ``score`` (exact inverse of :func:`anomaly_score`)."""
    if score <= 0.0:
        return 1.0
    if score <= 1.0:
        return 1.0 / (score * (_INV_SMALL - _INV_LARGEST) + _INV_LARGEST)
    if score <= 50.0:
        return math.exp(_LOG_SMALL + (score - 1.0) * (_LOG_MINUSCULE - _LOG_SMALL) / 49.0)
    score = min(score, 100.0)
    return math.exp(_LOG_MINUSCULE + (score - 50.0) * (_LOG_SMALLEST - _LOG_MINUSCULE) / 50.0)


# --- (1 - x)^p without cancellation ----------------------------------------------------------

_EPS = 0.1
_POW_COEFFS = (-1.0, 1.0 / 2.0, -1.0 / 6.0, 1.0 / 24.0, -1.0 / 120.0, 1.0 / 720.0)
_ONE_MINUS_POW_COEFFS = (1.0, -1.0 / 2.0, 1.0 / 6.0, -1.0 / 24.0, 1.0 / 120.0, -1.0 / 720.0)


def pow_one_minus_x(x: float, p: float) -> float:
    """(1 - x)^p for integer p, accurate for small p*x (Taylor series) and large p."""
    if x == 1.0:
        return 0.0
    if p == 1.0:
        return 1.0 - x
    y = p * x
    if abs(y) < _EPS:
        remainder = 0.0
        term = 1.0
        for coeff in _POW_COEFFS:
            if p == 0.0:
                break
            term *= p * x
            remainder += coeff * term
            p -= 1.0
        return 1.0 + remainder
    if p > 1000.0:
        return math.exp(-y)
    if x > 1.0:
        sign = -1.0 if int(p) % 2 else 1.0
        return sign * math.exp(p * math.log(x - 1.0))
    return math.exp(p * math.log(1.0 - x))


def one_minus_pow_one_minus_x(x: float, p: float) -> float:
    """1 - (1 - x)^p for integer p: the chance that the smallest of p uniforms is <= x."""
    if x == 1.0:
        return 1.0
    if p == 1.0:
        return x
    y = p * x
    if abs(y) < _EPS:
        result = 0.0
        term = 1.0
        for coeff in _ONE_MINUS_POW_COEFFS:
            if p == 0.0:
                break
            term *= p * x
            result += coeff * term
            p -= 1.0
        return result
    if p > 1000.0:
        return 1.0 - math.exp(-y)
    if x > 1.0:
        sign = -1.0 if int(p) % 2 else 1.0
        return 1.0 - sign * math.exp(p * math.log(x - 1.0))
    return 1.0 - math.exp(p * math.log(1.0 - x))


def _log_one_minus_x(x: float) -> float:
    if abs(x) < _EPS:
        result = 0.0
        xi = -x
        for i in range(6):
            result += xi / (i + 1)
            xi *= -x
        return result
    return math.log(1.0 - x)


# --- joint probability of less likely samples --------------------------------------------------


def log_joint_probability_upper_bound(probabilities: Sequence[float]) -> float:
    """log P(a more extreme collection of independent samples), upper bound.

    Each probability becomes a squared normal deviate z² with Φ(-|z|) = p/2; the joint
    probability is the chi-squared tail Q(n/2, Σz²/2). A single probability is returned as is.
    When Q underflows, the engine's analytic upper bound on the incomplete gamma is used.
    """
    n = len(probabilities)
    if n == 0:
        return 0.0
    if n == 1:
        return min(math.log(max(probabilities[0], SMALLEST_PROBABILITY)), 0.0)
    distance = 0.0
    for p in probabilities:
        p = max(p, SMALLEST_PROBABILITY)
        z = float(ndtri(p / 2.0))
        distance += z * z
    if distance / n < 1e-8:
        return 0.0
    s = n / 2.0
    x = distance / 2.0
    probability = min(max(float(gammaincc(s, x)), 0.0), 1.0)
    if probability > 10.0 * sys.float_info.min:
        return math.log(probability)
    # Upper bound for the upper incomplete gamma function (ProbabilityAggregators.cc).
    log_double_max = math.log(0.1 * sys.float_info.max)
    p_ = math.ceil(s - 1.0)
    if (p_ + 1.0) * math.log(p_ / x) >= log_double_max:
        b1 = (p_ + 1.0) * math.log(p_ / x) - math.log(p_ / x - 1.0)
    elif p_ != x:
        r = 1.0 - p_ / x
        b1 = math.log(one_minus_pow_one_minus_x(r, p_ + 1.0) / r)
    else:
        b1 = math.log(p_ + 1.0)
    b2 = float(gammaln(p_ + 1.0)) - p_ * math.log(x) + x
    bound = (s - 1.0) * math.log(x) - x + min(b1, b2) - float(gammaln(s))
    return min(bound, 0.0)


# --- probability of the m most extreme of n samples ---------------------------------------------


def _log_gauss_legendre3(f: _LogIntegrand, a: float, b: float) -> float:
    """log ∫_a^b exp(f(x)) dx by 3-point Gauss-Legendre."""
    half = (b - a) / 2.0
    mid = (a + b) / 2.0
    if half <= 0.0:
        return -math.inf
    root = math.sqrt(3.0 / 5.0)
    points = ((mid - half * root, 5.0 / 9.0), (mid, 8.0 / 9.0), (mid + half * root, 5.0 / 9.0))
    logs = [f.evaluate(x) + math.log(w) for x, w in points]
    top = max(logs)
    if top == -math.inf:
        return -math.inf
    return top + math.log(sum(math.exp(v - top) for v in logs)) + math.log(half)


@dataclass
class _LogIntegrand:
    limits: list[float]
    corrections: list[float]
    n: int
    m: int
    i: int

    def evaluate(self, x: float) -> float:
        if self.i == self.m:
            return (self.n - self.m) * _log_one_minus_x(x)
        inner = _LogIntegrand(self.limits, self.corrections, self.n, self.m, self.i + 1)
        return _log_gauss_legendre3(inner, x, self.limits[self.i]) + self.corrections[self.i]


def _numerical_log_probability(mins: Sequence[float], n: int) -> float:
    cutoffs = (1.0e32, 1.0e16, 1.0e8, 1.0e4, 100.0)
    limits: list[float] = []
    corrections: list[float] = []
    for i, p in enumerate(mins[:10]):
        if i == 0:
            limits.append(p)
            corrections.append(0.0)
            continue
        cap = (100.0 if n >= len(cutoffs) else cutoffs[n]) * limits[i - 1]
        limits.append(min(p, cap))
        prev = mins[i - 1]
        corrections.append(
            0.0 if p == prev else math.log(p - prev) - math.log(limits[i] - limits[i - 1])
        )
    f = _LogIntegrand(limits, corrections, n, len(limits), 1)
    result = _log_gauss_legendre3(f, 0.0, limits[0])
    return result + float(gammaln(n + 1.0)) - float(gammaln(n - len(limits) + 1.0))


def log_probability_m_from_n(
    probabilities: Sequence[float], m: int, *, presorted: bool = False
) -> float:
    """log P(the m smallest of n uniform samples are as extreme as the m smallest given).

    For m = 1 this is log(1 - (1 - p_min)^n). Larger m use the engine's recurrence for the
    coefficients, with numerical integration as fallback when cancellation ruins precision.
    ``presorted``: the probabilities are already sorted ascending and clamped to [DBL_MIN, 1].
    """
    n = len(probabilities)
    if n == 0:
        return 0.0
    if presorted:
        mins = list(probabilities[:m])
    else:
        mins = sorted(min(max(p, SMALLEST_PROBABILITY), 1.0) for p in probabilities)[:m]
    if len(mins) == 1:
        return min(math.log(one_minus_pow_one_minus_x(mins[0], float(n))), 0.0)
    big_m = len(mins)
    log_c = 0.0
    log_largest = 0.0
    coeffs: list[float] = []
    tiny = 1.0 / sys.float_info.max
    for mm in range(1, big_m):
        p = mins[big_m - mm]
        log_c -= math.log(2.0 * (n - big_m + mm))
        total = 0.0
        for i in range(len(coeffs)):
            index = float(len(coeffs) - i)
            coeffs[i] /= index
            total += coeffs[i] * pow_one_minus_x(p / 2.0, index)
        q = min(max(pow_one_minus_x(p, float(n - big_m + mm)), 0.0), 1.0)
        coeffs.append(-total - q * math.exp(log_c - log_largest))
        cmax = max((abs(c) for c in coeffs if abs(c) > tiny), default=0.0)
        if cmax > 0.0:
            coeffs = [c / cmax for c in coeffs]
            log_largest += math.log(cmax)
    cmax = max((abs(c) for c in coeffs), default=0.0)
    if 0.0 < cmax < tiny:
        log_largest = math.log(cmax)
        coeffs = [c / cmax for c in coeffs]
    p_m = mins[0]
    p_min = one_minus_pow_one_minus_x(p_m, float(n))
    if big_m <= 1:
        result = math.log(p_min)
    else:
        log_scale = (
            big_m * math.log(2.0)
            + float(gammaln(n + 1.0))
            - float(gammaln(n - big_m + 1.0))
            + log_largest
        )
        terms = []
        abs_sum = 0.0
        for i in range(len(coeffs)):
            index = float(len(coeffs) - i)
            term = coeffs[i] / index * one_minus_pow_one_minus_x(p_m / 2.0, index)
            terms.append(term)
            abs_sum += abs(term)
        if abs_sum == 0.0:
            result = math.log(p_min)
        else:
            result = 0.0
            condition = 0.0
            log_p_min = math.log(p_min)
            if log_p_min - log_scale > math.log(sys.float_info.max):
                result = math.log(sum(abs(t) for t in terms) * p_min / abs_sum)
            else:
                if log_p_min - log_scale < math.log(sys.float_info.min):
                    for term in terms:
                        result += term
                        condition = max(condition, abs(term))
                else:
                    p_min /= math.exp(log_scale)
                    for term in terms:
                        remainder = abs(term) * p_min / abs_sum + term
                        result += remainder
                        condition = max(
                            condition, abs(term), abs(term * p_min / abs_sum), abs(remainder)
                        )
                if result <= 0.0 or condition > 1e6 * result:
                    result = _numerical_log_probability(mins, n)
                else:
                    result = log_scale + math.log(result)
    if not result < 0.001:
        result = _numerical_log_probability(mins, n)
        if not result < 0.001:
            result = 0.0
    return min(result, 0.0)


def calibrated_log_probability_m_from_n(
    probabilities: Sequence[float], m: int, *, presorted: bool = False
) -> float:
    """:func:`log_probability_m_from_n` divided by 1 + ln(min(m, n))/2.1 (Monte-Carlo calibration)."""
    result = log_probability_m_from_n(probabilities, m, presorted=presorted)
    k = min(m, len(probabilities))
    if k == 0:
        return result
    return result / (1.0 + math.log(k) / 2.1)


# --- aggregation of several probabilities into one ---------------------------------------------


@dataclass(frozen=True, slots=True)
class AggregationStyle:
    """Weights of the joint and extreme probabilities, and the range of extreme samples."""

    joint_weight: float
    extreme_weight: float
    min_extreme_samples: int
    max_extreme_samples: int


#: ``DEFAULT_AGGREGATION_STYLE_PARAMS`` of ``CAnomalyDetectorModelConfig``.
PEOPLE = AggregationStyle(0.0, 1.0, 1, 1)
ATTRIBUTES = AggregationStyle(0.5, 0.5, 1, 5)
DETECTORS = AggregationStyle(0.5, 0.5, 1, 1)

_NORMAL_RANGE_SCORE_FRACTION = 0.8
_SMALLEST_DEVIATION = anomaly_score(SMALLEST_PROBABILITY)


def aggregate(
    probabilities: Sequence[float],
    style: AggregationStyle,
    maximum_anomalous_probability: float = MAXIMUM_ANOMALOUS_PROBABILITY,
) -> tuple[float, float]:
    """Combine probabilities into (raw anomaly score, probability) as ``CAnomalyScore::compute``."""
    ps = [p for p in probabilities if 0.0 <= p <= 1.0]
    if not ps:
        return 0.0, 1.0
    if len(ps) == 1:
        return _aggregate_one(ps[0], style, maximum_anomalous_probability)
    log_joint = log_joint_probability_upper_bound(ps)
    n = min(len(ps), style.max_extreme_samples)
    log_extreme = 0.0
    ordered = sorted(max(p, SMALLEST_PROBABILITY) for p in ps)
    for i in range(min(max(style.min_extreme_samples, 1), n), n + 1):
        log_extreme = min(
            log_extreme, calibrated_log_probability_m_from_n(ordered, i, presorted=True)
        )
    log_max = math.log(maximum_anomalous_probability)
    if log_joint > log_max and log_extreme > log_max:
        return 0.0, math.exp(style.joint_weight * log_joint) * math.exp(
            style.extreme_weight * log_extreme
        )
    frac = _NORMAL_RANGE_SCORE_FRACTION
    if log_joint < _LOG_SMALLEST:
        t = min((log_joint - _LOG_SMALLEST) / (-100000.0 - _LOG_SMALLEST), 1.0)
        score = (frac + (1.0 - frac) * t) * style.joint_weight * _SMALLEST_DEVIATION
    else:
        score = frac * style.joint_weight * anomaly_score(math.exp(log_joint))
    if log_extreme < _LOG_SMALLEST:
        t = min((log_extreme - _LOG_SMALLEST) / (-1500.0 - _LOG_SMALLEST), 1.0)
        score += (frac + (1.0 - frac) * t) * style.extreme_weight * _SMALLEST_DEVIATION
    else:
        score += frac * style.extreme_weight * anomaly_score(math.exp(log_extreme))
    if score > 0.0:
        probability = inverse_anomaly_score(min(score / frac, _SMALLEST_DEVIATION))
    else:
        probability = math.exp(style.joint_weight * log_joint) * math.exp(
            style.extreme_weight * log_extreme
        )
    return score, probability


def _aggregate_one(
    p: float, style: AggregationStyle, maximum_anomalous_probability: float
) -> tuple[float, float]:
    """:func:`aggregate` of a single probability: joint and extreme are both p itself."""
    log_p = min(math.log(max(p, SMALLEST_PROBABILITY)), 0.0)
    if log_p > math.log(maximum_anomalous_probability):
        return 0.0, math.exp(style.joint_weight * log_p) * math.exp(style.extreme_weight * log_p)
    frac = _NORMAL_RANGE_SCORE_FRACTION
    if log_p < _LOG_SMALLEST:
        t = min((log_p - _LOG_SMALLEST) / (-100000.0 - _LOG_SMALLEST), 1.0)
        joint = (frac + (1.0 - frac) * t) * style.joint_weight * _SMALLEST_DEVIATION
        t = min((log_p - _LOG_SMALLEST) / (-1500.0 - _LOG_SMALLEST), 1.0)
        score = joint + (frac + (1.0 - frac) * t) * style.extreme_weight * _SMALLEST_DEVIATION
    else:
        deviation = anomaly_score(math.exp(log_p))
        score = frac * style.joint_weight * deviation + frac * style.extreme_weight * deviation
    if score > 0.0:
        return score, inverse_anomaly_score(min(score / frac, _SMALLEST_DEVIATION))
    return score, math.exp(style.joint_weight * log_p) * math.exp(style.extreme_weight * log_p)


# --- Beta distribution helpers ------------------------------------------------------------------


def beta_quantile(a: float, b: float, q: float) -> float:
    return float(betaincinv(a, b, q))


def beta_cdf(a: float, b: float, x: float) -> float:
    return float(betainc(a, b, x))


def cdf_quantile(n: float, p: float, q: float) -> float:
    """Finite-sample correction of an empirical c.d.f. value ``p`` from ``n`` samples:
    the ``q`` quantile of Beta(n·p + 1/3, n·(1 - p) + 1/3) (``CQDigest::cdfQuantile``)."""
    if q == 0.5:
        return p
    a = n * p + 1.0 / 3.0
    b = n * (1.0 - p) + 1.0 / 3.0
    if not (a > 0 and b > 0):
        return p
    return beta_quantile(a, b, q)
