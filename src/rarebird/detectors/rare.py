"""The ``rare`` detector's model: a decayed Dirichlet over the values of the by-field.

What Elastic's engine keeps for ``rare by user.name`` (elastic/ml-cpp ``CEventRateModel``,
``CMultinomialConjugate``; spec ``elastic-rare.md`` section 1):

- one concentration ``a_i`` per ``user.name`` value; each final bucket adds 1 to every value
  present (however many events), then, if anything was present, multiplies every ``a_i`` by
  ``exp(-decay)`` with ``decay = 0.0005 · min(1, bucket_span / 30 min)``; empty buckets do not
  decay anything;
- the probability of value i is the "probability of less likely categories": the total share of
  the values at most as frequent as i, averaged over ``n`` slices of i's Beta(a_i, A - a_i)
  posterior (``n`` = 7, 5, 3 or 1 as the total A passes 100, 1,000, 10,000), with the 1.05
  bias of the engine;
- values unseen for 16,000 buckets are pruned (and are new again if they come back).

Concentrations are stored scaled by a global factor so that the per-bucket decay of *every*
value is one multiplication (``a_i = w_i / inv_scale``); only the values present in a bucket
are touched, and the sorted weights answer the "less likely" mass queries (see
:mod:`rarebird.detectors.sortedweights`).
"""

from __future__ import annotations

import math
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rarebird.detectors.boost_order import unordered_order
from rarebird.detectors.maths import beta_cdf, beta_quantile
from rarebird.detectors.normalize import decay_rate_for
from rarebird.detectors.sortedweights import SortedWeights

#: Elastic's default prune window for rare: 4 / decay_rate buckets (16,000 at 15 minutes).
PRUNE_WINDOW_SCALE = 4.0
#: Bias of the engine's less-likely-categories interpolation.
SAMPLE_BIAS = 1.05
#: Renormalise the stored weights before the scale factor could overflow.
_MAX_INV_SCALE = 1e150

#: Memory accounting (bytes) used for ``model_bytes``; calibrated against tracemalloc in tests.
BYTES_PER_VALUE = 320
BYTES_BASE = 64 * 1024


def number_prior_samples(total: float) -> int:
    """How many Beta slices to average over: 7 / 5 / 3 / 1 as A passes 100 / 1e3 / 1e4."""
    if total <= 100.0:
        return 7
    if total <= 1000.0:
        return 5
    if total <= 10000.0:
        return 3
    return 1


def beta_samples(a: float, b: float, n: int) -> list[float]:
    """Means of ``n`` equal-probability slices of Beta(a, b) (``generateBetaSamples``)."""
    mean = a / (a + b)
    if n == 1 or a == 0.0 or b == 0.0:
        return [mean]
    dq = 1.0 / n
    q = dq
    f = 0.0
    scaled = mean / dq
    out = []
    for _ in range(1, n):
        xq = beta_quantile(a, b, q)
        fq = beta_cdf(a + 1.0, b, xq)
        out.append(scaled * (fq - f))
        f = fq
        q += dq
    out.append(scaled * (1.0 - f))
    return out


@dataclass(frozen=True, slots=True)
class ValueScore:
    """The model's view of one by-field value in one bucket."""

    value: str
    probability: float
    first_occurrence: bool
    relative_rarity: float
    concentration: float


class RareModel:
    """Learns which by-field values are rare and scores the values of a bucket.

    Elastic's engine learns a final bucket first and then scores it; callers do the same:
    :meth:`learn`, then :meth:`score`.
    """

    def __init__(self, bucket_span_s: int, *, prune_window: int | None = None) -> None:
        self.bucket_span_s = bucket_span_s
        self.decay_rate = decay_rate_for(bucket_span_s)
        self.factor = math.exp(-self.decay_rate)
        self.prune_window = (
            prune_window
            if prune_window is not None
            else int(round(PRUNE_WINDOW_SCALE / self.decay_rate))
        )
        self.inv_scale = 1.0
        self.ids: dict[str, int] = {}
        self.names: list[str | None] = []
        self.weights = array("d")
        self.first_seen = array("q")
        self.last_seen = array("q")
        #: ids are handed out smallest first when recycled, as the engine's registry does
        self.free_ids: list[int] = []
        #: values given an id but not modelled yet (seen only in the job's first bucket)
        self.reserved: dict[str, int] = {}
        self.sorted = SortedWeights()
        self.recency: OrderedDict[int, None] = OrderedDict()
        self.non_empty_buckets = 0
        self._name_bytes = 0

    # --- size ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, value: str) -> bool:
        return value in self.ids

    def memory_bytes(self) -> int:
        return BYTES_BASE + len(self.ids) * BYTES_PER_VALUE + self._name_bytes

    def person_id(self, value: str) -> int | None:
        pid = self.ids.get(value)
        return self.reserved.get(value) if pid is None else pid

    def result_order(self, values: Sequence[str]) -> list[str]:
        """``values`` (present in a bucket) in the order the engine lists their results.

        The engine collects a bucket's people in a ``boost::unordered_set<std::size_t>`` of
        person ids and adds one result per id in that set's iteration order
        (``CIndividualModel::currentBucketPersonIds``, ``CAnomalyDetectorModel::addResults``).
        The order matters: the normaliser merges every two consecutive updates into one sample
        (``CAnomalyScore::CNormalizer::updateQuantiles``), so it decides which raw scores enter
        the q-digest."""
        by_id: dict[int, str] = {}
        for value in values:
            pid = self.person_id(value)
            by_id[len(self.names) + len(by_id) if pid is None else pid] = value
        return [by_id[pid] for pid in unordered_order(sorted(by_id))]

    def register(self, values: Sequence[str]) -> None:
        """Give ``values`` person ids without modelling them: the engine's data gatherer
        registers the people of the job's first bucket, which the model never samples."""
        for value in values:
            if value not in self.ids and value not in self.reserved:
                pid = self._allocate(value)
                self.reserved[value] = pid

    # --- learning ------------------------------------------------------------------------
    def learn(self, bucket: int, values: Sequence[str]) -> None:
        """Learn one final bucket in which ``values`` (distinct) were present."""
        add = self.inv_scale
        for value in values:
            pid = self.ids.get(value)
            if pid is None:
                pid = self._new_id(value, bucket)
            old = self.weights[pid]
            if old > 0.0:
                self.sorted.remove(old)
            new = old + add
            self.weights[pid] = new
            self.sorted.add(new)
            self.last_seen[pid] = bucket
            self.recency[pid] = None
            self.recency.move_to_end(pid)
        if values:
            self.non_empty_buckets += 1
            self.inv_scale /= self.factor
            if self.inv_scale > _MAX_INV_SCALE:
                self._rescale()

    def _allocate(self, value: str) -> int:
        """A person id for ``value``: the smallest free one, else the next (as
        ``CDynamicStringIdRegistry::addName``)."""
        if self.free_ids:
            pid = self.free_ids.pop()
            self.names[pid] = value
            self.weights[pid] = 0.0
        else:
            pid = len(self.names)
            self.names.append(value)
            self.weights.append(0.0)
            self.first_seen.append(0)
            self.last_seen.append(0)
        self._name_bytes += len(value)
        return pid

    def _new_id(self, value: str, bucket: int) -> int:
        pid = self.reserved.pop(value, None)
        if pid is None:
            pid = self._allocate(value)
        self.first_seen[pid] = bucket
        self.last_seen[pid] = bucket
        self.ids[value] = pid
        return pid

    def _rescale(self) -> None:
        scale = 1.0 / self.inv_scale
        for pid in self.ids.values():
            self.weights[pid] *= scale
        self.inv_scale = 1.0
        self.sorted = SortedWeights.from_values([self.weights[p] for p in self.ids.values()])

    def prune(self, bucket: int) -> list[str]:
        """Forget values unseen for more than ``prune_window`` buckets; returns them."""
        removed = []
        cutoff = bucket - self.prune_window
        while self.recency:
            pid = next(iter(self.recency))
            if self.last_seen[pid] >= cutoff:
                break
            del self.recency[pid]
            name = self.names[pid]
            assert name is not None
            self.sorted.remove(self.weights[pid])
            del self.ids[name]
            self._name_bytes -= len(name)
            self.names[pid] = None
            self.weights[pid] = 0.0
            self.free_ids.append(pid)
            removed.append(name)
        if removed:
            self.free_ids.sort(reverse=True)
        return removed

    # --- scoring -------------------------------------------------------------------------
    def concentration(self, value: str) -> float:
        pid = self.ids.get(value)
        return 0.0 if pid is None else self.weights[pid] / self.inv_scale

    def total_concentration(self) -> float:
        return self.sorted.total / self.inv_scale

    def probability(self, value: str) -> float | None:
        """P(less likely categories) of a known value; None if unknown or no history."""
        pid = self.ids.get(value)
        if pid is None or not len(self.sorted):
            return None
        return self._probability_of_weight(self.weights[pid])

    def smallest_probability(self) -> float | None:
        """The probability the engine gives a value it has never seen (interim results)."""
        if not len(self.sorted):
            return None
        return self._probability_of_weight(self.sorted.min())

    def _probability_of_weight(self, w: float) -> float:
        total_w = self.sorted.total
        a = w / self.inv_scale
        total = total_w / self.inv_scale
        acc = 0.0
        samples = beta_samples(a, total - a, number_prior_samples(total))
        for s in samples:
            x = SAMPLE_BIAS * s
            w_prev, mass_prev, w_r, mass_r, found = self.sorted.neighbours(x * total_w)
            if not found:
                acc += 1.0
                continue
            fl = w_prev / total_w
            fr = w_r / total_w
            alpha = 0.0 if fr - fl == 0.0 else (x - fl) / (fr - fl)
            alpha = min(alpha, 1.0)
            acc += (1.0 - alpha) * (mass_prev / total_w) + alpha * (mass_r / total_w)
        return min(max(acc / len(samples), 0.0), 1.0)

    def score(self, bucket: int, values: Sequence[str]) -> list[ValueScore]:
        """Scores of values present in ``bucket`` (after :meth:`learn` of that bucket)."""
        if not len(self.sorted):
            return []
        median = self.sorted.median()
        out = []
        for value in values:
            pid = self.ids.get(value)
            if pid is None:
                continue
            w = self.weights[pid]
            out.append(
                ValueScore(
                    value=value,
                    probability=self._probability_of_weight(w),
                    first_occurrence=self.first_seen[pid] == bucket,
                    relative_rarity=median / w,
                    concentration=w / self.inv_scale,
                )
            )
        return out

    @classmethod
    def from_concentrations(
        cls, concentrations: dict[str, float], bucket_span_s: int = 900, bucket: int = 0
    ) -> RareModel:
        """A model holding exactly these concentrations (for what-if questions and tests)."""
        model = cls(bucket_span_s)
        for value, a in concentrations.items():
            pid = model._new_id(value, bucket)
            model.weights[pid] = a
            model.sorted.add(a)
            model.recency[pid] = None
        return model

    def score_as_if_learnt(self, bucket: int, values: Sequence[str]) -> list[ValueScore]:
        """What :meth:`score` would say if ``bucket`` closed now with just ``values`` present:
        learn it on the side, score, and put everything back exactly (rarebird's early
        warning; the model is unchanged afterwards, id allocation included)."""
        saved_scale = self.inv_scale
        undo: list[tuple[int, float, bool, bool]] = []  # pid, old weight, new, from free list
        reserved = dict(self.reserved)
        add = self.inv_scale
        try:
            for value in values:
                pid = self.ids.get(value)
                is_new = pid is None
                from_free = is_new and value not in self.reserved and bool(self.free_ids)
                if pid is None:
                    pid = self._new_id(value, bucket)
                old = self.weights[pid]
                undo.append((pid, old, is_new, from_free))
                if old > 0.0:
                    self.sorted.remove(old)
                self.weights[pid] = old + add
                self.sorted.add(old + add)
            if values:
                self.inv_scale /= self.factor
            return self.score(bucket, values)
        finally:
            for pid, old, is_new, from_free in reversed(undo):
                self.sorted.remove(self.weights[pid])
                if old > 0.0:
                    self.sorted.add(old)
                if is_new:
                    name = self.names[pid]
                    assert name is not None
                    del self.ids[name]
                    if name in reserved:
                        self.weights[pid] = 0.0
                        continue
                    self._name_bytes -= len(name)
                    if from_free:
                        self.names[pid] = None
                        self.weights[pid] = 0.0
                        self.free_ids.append(pid)
                    else:
                        self.names.pop()
                        self.weights.pop()
                        self.first_seen.pop()
                        self.last_seen.pop()
                else:
                    self.weights[pid] = old
            self.inv_scale = saved_scale
            self.reserved = reserved

    # --- state ---------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        order = list(self.recency)
        return {
            "bucket_span_s": self.bucket_span_s,
            "prune_window": self.prune_window,
            "inv_scale": self.inv_scale,
            "non_empty_buckets": self.non_empty_buckets,
            "free_ids": list(self.free_ids),
            "reserved": [[pid, name] for name, pid in self.reserved.items()],
            "size": len(self.names),
            "values": [
                [pid, self.names[pid], self.weights[pid], self.first_seen[pid], self.last_seen[pid]]
                for pid in order
            ],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RareModel:
        model = cls(int(state["bucket_span_s"]), prune_window=int(state["prune_window"]))
        model.inv_scale = float(state["inv_scale"])
        model.non_empty_buckets = int(state["non_empty_buckets"])
        size = int(state["size"])
        model.names = [None] * size
        model.weights = array("d", [0.0] * size)
        model.first_seen = array("q", [0] * size)
        model.last_seen = array("q", [0] * size)
        for pid, name, w, first, last in state["values"]:
            model.names[pid] = name
            model.weights[pid] = float(w)
            model.first_seen[pid] = int(first)
            model.last_seen[pid] = int(last)
            model.ids[name] = pid
            model._name_bytes += len(name)
            model.recency[pid] = None
        model.free_ids = [int(x) for x in state["free_ids"]]
        for pid, name in state.get("reserved", []):
            model.names[pid] = name
            model.reserved[name] = int(pid)
            model._name_bytes += len(name)
        model.sorted = SortedWeights.from_values([model.weights[p] for p in model.ids.values()])
        return model
