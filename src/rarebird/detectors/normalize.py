"""Raw anomaly scores to 0-100 scores, as Elastic's ``CAnomalyScore::CNormalizer`` does.

One :class:`ScoreNormalizer` keeps, for one level of the results (records, bucket, one influencer
field, ...): a q-digest of the discretised raw scores seen (plus a finer digest of the top 10 %),
and per "scope" (e.g. per ``user.name`` value) the largest recent raw score, which decays and is
forgotten after 50 idle buckets. ``normalize`` returns the minimum of four ceilings:

- c0, noise: scores barely above the typical (median) raw score stay low;
- c1, percentile: the score's percentile among all history, mapped through the knots
  (0,0) (70,1) (85,1.2) (90,1.5) (95,3) (97,20) (99,50) (99.9,90) (100,100), with a 70 %
  credible interval for finite samples;
- c2, scope maximum: a score well below this user's own recent maximum is scaled down;
- c3, probability cap: ``100·(0.05 + 0.95·(ln p − ln 0.05)/(ln 1e-4 − ln 0.05))``, so
  ``record_score >= 25`` needs p <= 0.0135.

Since ml-cpp 8.4 (PR #2285) only the largest of every ``count_per_sample`` consecutive updates
enters the digests: ``3600 / clamp(2·bucket_span, 300, 3600)`` = 2 for 15-minute buckets.

Source read: elastic/ml-cpp ``lib/model/CAnomalyScore.cc``; spec ``elastic-rare.md`` 2.2-2.3.
The sampling details of the newer engine were confirmed against the normaliser state that
Elastic's engine emitted for the oracle scenarios (``../shared/oracle``).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import OrderedDict
from typing import Any

from rarebird.detectors.maths import (
    LARGEST_SIGNIFICANT_PROBABILITY,
    SMALL_PROBABILITY,
    anomaly_score,
    cdf_quantile,
    inverse_anomaly_score,
)
from rarebird.detectors.qdigest import UINT32_MAX, QDigest

DISCRETIZATION_FACTOR = 1000.0
HIGH_PERCENTILE = 90.0
BIG_CHANGE_FACTOR = 1.1
QUANTILE_DECAY_TIME = 20.0
FORGET_MAX_SCORE_INTERVAL = 50.0
MAXIMUM_NORMALIZED_SCORE = 100.0
NOISE_PERCENTILE = 50.0
NOISE_MULTIPLIER = 1.0
CONFIDENCE_INTERVAL = 70.0
DIGEST_K = 201
STANDARD_BUCKET_LENGTH = 1800.0
KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 0.0),
    (70.0, 1.0),
    (85.0, 1.2),
    (90.0, 1.5),
    (95.0, 3.0),
    (97.0, 20.0),
    (99.0, 50.0),
    (99.9, 90.0),
    (100.0, 100.0),
)
_KNOT_X = [k[0] for k in KNOTS]

# c3: logarithmic interpolation of the cap between p = 0.05 (score 5) and p = 1e-4 (score 100).
_M = (anomaly_score(SMALL_PROBABILITY) - anomaly_score(LARGEST_SIGNIFICANT_PROBABILITY)) / (
    math.log(SMALL_PROBABILITY) - math.log(LARGEST_SIGNIFICANT_PROBABILITY)
)
_C = math.log(LARGEST_SIGNIFICANT_PROBABILITY)


def decay_rate_for(bucket_span_s: float) -> float:
    """Model decay per bucket: 0.0005 × min(1, bucket_span / 30 min) (``bucketNormalizationFactor``)."""
    return 0.0005 * min(1.0, bucket_span_s / STANDARD_BUCKET_LENGTH)


def count_per_sample(bucket_span_s: float) -> int:
    """How many updates make one digest sample: 3600 // clamp(2·bucket_span, 300, 3600)."""
    return int(3600 // min(max(2.0 * bucket_span_s, 300.0), 3600.0))


def probability_cap(score: float) -> float:
    """Ceiling c3 for a raw score (via its probability)."""
    p = inverse_anomaly_score(score)
    return MAXIMUM_NORMALIZED_SCORE * (0.95 * _M * (math.log(p) - _C) + 0.05)


class ScoreNormalizer:
    """Turns raw scores of one results level into 0-100 scores (see the module docstring)."""

    def __init__(self, bucket_span_s: float) -> None:
        self.bucket_span_s = bucket_span_s
        decay = decay_rate_for(bucket_span_s)
        # Older engines mapped the percentile to the 30-minute standard bucket (P^n); since
        # samples merge ``count_per_sample`` updates the oracle shows no such scaling.
        self.normalization_factor = 1.0
        self.decay_rate = decay * max(bucket_span_s / STANDARD_BUCKET_LENGTH, 1.0)
        self.count_per_sample = count_per_sample(bucket_span_s)
        self.high_percentile_score = UINT32_MAX
        self.high_percentile_count = 0
        self.low = QDigest(DIGEST_K, decay)
        self.high = QDigest(DIGEST_K, decay)
        self.time_to_quantile_decay = QUANTILE_DECAY_TIME
        #: scope -> (max score when last updated, time of that update); decays lazily with
        #: ``max_alpha`` per bucket and is forgotten 50 buckets after its last update
        self.max_scores: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.time = 0.0
        self.max_alpha = math.exp(-2.0 * self.decay_rate)
        self.pending_count = 0
        self.pending_max = 0.0
        #: discretised score -> (noise, percentile) ceilings while the digests stay as they are
        self._ceilings: dict[int, tuple[float, float]] = {}

    # --- updates -------------------------------------------------------------------------
    @staticmethod
    def discrete(score: float) -> int:
        return int(DISCRETIZATION_FACTOR * score + 0.5)

    def update(self, scope: str, score: float) -> bool:
        """Learn one raw score of ``scope``; True when it raised the scope's max by > 10 %."""
        old = self.max_score(scope)
        new = max(old, score)
        self.max_scores[scope] = (new, self.time)
        self.max_scores.move_to_end(scope)
        big_change = new > BIG_CHANGE_FACTOR * old
        self.pending_count += 1
        self.pending_max = max(self.pending_max, score)
        if self.pending_count >= self.count_per_sample:
            self._add_sample(self.discrete(self.pending_max))
            self.pending_count = 0
            self.pending_max = 0.0
        return big_change

    def _add_sample(self, discrete: int) -> None:
        self._ceilings.clear()
        n = self.low.n
        k = self.low.k
        if n + 1 == k:
            # The digest is about to compress: seed the fine summary of the top decile.
            summary = self.low.summary()
            if summary:
                target = int((HIGH_PERCENTILE / 100.0) * n + 0.5)
                self.high_percentile_score, self.high_percentile_count = summary[0]
                i = 1
                while i < len(summary):
                    if summary[i][1] > target:
                        self.high_percentile_score, self.high_percentile_count = summary[i - 1]
                        break
                    i += 1
                self.high_percentile_count = min(self.high_percentile_count, n)
                for j in range(i, len(summary)):
                    self.high.add(summary[j][0], summary[j][1] - summary[j - 1][1])
        self.low.add(discrete)
        if discrete <= self.high_percentile_score:
            self.high_percentile_count += 1
        else:
            self.high.add(discrete)
        if (n + 1) > k and (n + 1) % k == 0:
            self._refresh_high(n)

    def _refresh_high(self, n: int) -> None:
        target = int((HIGH_PERCENTILE / 100.0) * (n + 1) + 0.5)
        if self.high_percentile_count > target:
            low = self.low.summary()
            high = self.high.summary()
            counts = [c for _, c in low]
            i0 = min(bisect_left(counts, target), len(low) - 1)
            values_h = [v for v, _ in high]
            j = min(_upper_bound(values_h, low[i0][0]), len(high) - 1)
            r = low[i0][1]
            i = i0 + 1
            while i < len(low) and low[i0][1] + self.high.n < n + 1:
                while j < len(high) and high[j][0] <= low[i][0]:
                    r += high[j][1] - (high[j - 1][1] if j > 0 else 0)
                    j += 1
                x = low[i][0]
                m = low[i][1] - r if r < low[i][1] else 0
                r += m
                if m > 0:
                    self.high.add(x, m)
                i += 1
            self.high_percentile_score, self.high_percentile_count = low[i0]
            if self.high_percentile_count > n + 1:
                self.high_percentile_count = n
        else:
            self.high_percentile_score = self.low.quantile(HIGH_PERCENTILE / 100.0)
            lower, _ = self.low.cdf(self.high_percentile_score)
            self.high_percentile_count = int((n + 1) * lower + 0.5)

    def propagate_forward(self, buckets: float = 1.0) -> None:
        """Age by ``buckets`` buckets: max scores decay and are forgotten after 50 idle
        buckets; the digests age once every 20 samples."""
        if buckets < 0:
            return
        self.time += buckets
        scores = self.max_scores
        while scores:
            scope, (_, updated) = next(iter(scores.items()))
            if self.time - updated <= FORGET_MAX_SCORE_INTERVAL:
                break
            del scores[scope]
        self.time_to_quantile_decay -= buckets / self.count_per_sample
        if self.time_to_quantile_decay <= 0.0:
            steps = math.floor(
                (QUANTILE_DECAY_TIME - self.time_to_quantile_decay) / QUANTILE_DECAY_TIME
            )
            self._ceilings.clear()
            n = self.low.n
            self.low.propagate_forwards_by_time(steps)
            self.high.propagate_forwards_by_time(steps)
            if n > 0:
                self.high_percentile_count = int(self.low.n / n * self.high_percentile_count + 0.5)
            self.time_to_quantile_decay += QUANTILE_DECAY_TIME + math.floor(
                -self.time_to_quantile_decay / QUANTILE_DECAY_TIME
            )

    def forget_scope(self, scope: str) -> None:
        self.max_scores.pop(scope, None)

    # --- normalisation ---------------------------------------------------------------------
    def can_normalize(self) -> bool:
        return self.low.n > 0

    def max_score(self, scope: str) -> float:
        """The scope's largest recent raw score, decayed to now (0 when none or forgotten)."""
        entry = self.max_scores.get(scope)
        if entry is None:
            return 0.0
        score, updated = entry
        return float(score * self.max_alpha ** (self.time - updated))

    def normalize(self, scope: str, score: float) -> float:
        """The 0-100 score of raw ``score`` for ``scope`` (0 when there is no history yet)."""
        return self.explain(scope, score)[0]

    def explain(self, scope: str, score: float) -> tuple[float, dict[str, float]]:
        """The normalised score and each ceiling (``noise``, ``percentile``, ``max``, ``cap``)."""
        if score == 0.0 or self.low.n == 0:
            return 0.0, {}
        discrete = self.discrete(score)
        cached = self._ceilings.get(discrete)
        if cached is None:
            cached = self._ceilings[discrete] = self._distribution_ceilings(score)
        ceilings = {"noise": cached[0], "percentile": cached[1]}
        # c2: scope maximum
        max_score = self.max_score(scope)
        if max_score != 0.0:
            ratio = score / max_score
            ceilings["max"] = MAXIMUM_NORMALIZED_SCORE * min(1.5 * ratio, 0.5 + 0.5 * ratio)
        # c3: probability cap
        ceilings["cap"] = probability_cap(score)
        return min(min(ceilings.values()), MAXIMUM_NORMALIZED_SCORE), ceilings

    def _distribution_ceilings(self, score: float) -> tuple[float, float]:
        """Ceilings c0 (noise) and c1 (percentile): they depend on the discretised score and the
        digests only, so :meth:`explain` keeps them until the digests change."""
        discrete = self.discrete(score)
        # c0: noise ceiling
        noise = self.low.quantile(NOISE_PERCENTILE / 100.0)
        knot_value = KNOTS[bisect_left(KNOTS, (NOISE_PERCENTILE, 0.0))][1]
        signal = NOISE_MULTIPLIER * 10.0 / DISCRETIZATION_FACTOR * (discrete - noise)
        l0, u0 = self.low.cdf(0)
        noise_ceiling = knot_value * max(1.0 + signal, 0.0) + MAXIMUM_NORMALIZED_SCORE * max(
            2.0 * min(50.0 * (l0 + u0) / NOISE_PERCENTILE, 1.0) - 1.0, 0.0
        )
        # c1: percentile ceiling
        lower, upper = self._quantile(score)
        lower_pct = 100.0 * lower ** (1.0 / self.normalization_factor)
        upper_pct = 100.0 * upper ** (1.0 / self.normalization_factor)
        if lower_pct > upper_pct:
            lower_pct, upper_pct = upper_pct, lower_pct
        lower_pct = min(max(lower_pct, 0.0), 100.0)
        upper_pct = min(max(upper_pct, 0.0), 100.0)
        percentile_ceiling = (_knot_score(lower_pct) + _knot_score(upper_pct)) / 2.0
        return noise_ceiling, percentile_ceiling

    def _quantile(self, score: float) -> tuple[float, float]:
        discrete = self.discrete(score)
        n = float(self.low.n)
        lower_q = (100.0 - CONFIDENCE_INTERVAL) / 200.0
        upper_q = (100.0 + CONFIDENCE_INTERVAL) / 200.0
        f = self.high_percentile_count / n
        fl = cdf_quantile(n, f, lower_q)
        fu = cdf_quantile(n, f, upper_q)
        if discrete <= self.high_percentile_score or self.high.n == 0:
            lower, upper = self.low.cdf(discrete)
            pdf_lower, pdf_upper = self.low.pdf(discrete)
            lower = min(max(lower - pdf_upper, 0.0), fl)
            upper = min(max(upper - pdf_lower, 0.0), fu)
        else:
            lower, upper = self.high.cdf(discrete)
            cut_lower, cut_upper = self.high.cdf(self.high_percentile_score)
            pdf_lower, pdf_upper = self.high.pdf(discrete)
            eps = 2.220446049250313e-16
            lower = fl + (1.0 - fl) * max(lower - cut_upper - pdf_upper, 0.0) / max(
                1.0 - cut_upper, eps
            )
            upper = fu + (1.0 - fu) * max(upper - cut_lower - pdf_lower, 0.0) / max(
                1.0 - cut_lower, eps
            )
        return cdf_quantile(n, lower, lower_q), cdf_quantile(n, upper, upper_q)

    # --- state -----------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "bucket_span_s": self.bucket_span_s,
            "high_percentile_score": self.high_percentile_score,
            "high_percentile_count": self.high_percentile_count,
            "low": self.low.to_state(),
            "high": self.high.to_state(),
            "time_to_quantile_decay": self.time_to_quantile_decay,
            "time": self.time,
            "max_scores": [[k, v[0], v[1]] for k, v in self.max_scores.items()],
            "pending": [self.pending_count, self.pending_max],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ScoreNormalizer:
        norm = cls(float(state["bucket_span_s"]))
        norm.high_percentile_score = int(state["high_percentile_score"])
        norm.high_percentile_count = int(state["high_percentile_count"])
        norm.low = QDigest.from_state(state["low"])
        norm.high = QDigest.from_state(state["high"])
        norm.time_to_quantile_decay = float(state["time_to_quantile_decay"])
        norm.time = float(state["time"])
        norm.max_scores = OrderedDict(
            (k, (float(score), float(t))) for k, score, t in state["max_scores"]
        )
        norm.pending_count = int(state["pending"][0])
        norm.pending_max = float(state["pending"][1])
        return norm


def _knot_score(percentile: float) -> float:
    i = max(bisect_left(_KNOT_X, percentile), 1)
    if i >= len(KNOTS):
        return MAXIMUM_NORMALIZED_SCORE
    (x0, y0), (x1, y1) = KNOTS[i - 1], KNOTS[i]
    return y0 + (y1 - y0) * (percentile - x0) / (x1 - x0)


def _upper_bound(values: list[int], x: int) -> int:
    from bisect import bisect_right

    return bisect_right(values, x)
