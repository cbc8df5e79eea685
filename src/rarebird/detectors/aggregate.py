"""One bucket's results: record, bucket and influencer scores, as Elastic's results hierarchy.

Elastic's engine arranges a bucket's results in a tree (elastic/ml-cpp ``CHierarchicalResults``,
``CHierarchicalResultsAggregator``, ``CHierarchicalResultsProbabilityFinalizer``,
``CHierarchicalResultsNormalizer``); for a one-detector ``rare by user.name`` job it is:

- one **leaf** per user present, with the model's probability p;
- a **person** node joining the leaves (the leaf itself when only one user is present) and the
  **root** (the bucket): the leaves' probabilities are combined in the "attributes" style
  (half joint probability of less likely samples, half the most extreme of the 1-5 smallest),
  then in the "detectors" style, giving ``raw = 0.8 · anomaly_score(p_node)``;
- one **pivot** per influencer value, over the leaves it influenced (same combination), and one
  **pivot root** per influencer field over its pivots, in the "people" style
  (``1 - (1 - p_min)^N``);
- every node with raw > 0 gets probability ``inverse_anomaly_score(raw)``.

Each level has its own :class:`~rarebird.detectors.normalize.ScoreNormalizer`: records
(``leaf``), ``person``, the bucket (``root``), each influencer field (``influencer``) and each
influencer field at bucket level (``influencer_bucket``). Every bucket they all age by one
bucket, learn the raw scores of the nodes (``0`` when p > 0.035), then score them.

These rules were checked number for number against the oracle scenarios in
``../shared/oracle`` (probabilities, raw scores and normalised scores of records, buckets,
bucket influencers and influencers).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rarebird.detectors.maths import (
    ATTRIBUTES,
    DETECTORS,
    MAXIMUM_ANOMALOUS_PROBABILITY,
    PEOPLE,
    aggregate,
    anomaly_score,
    inverse_anomaly_score,
)
from rarebird.detectors.normalize import ScoreNormalizer
from rarebird.detectors.rare import ValueScore
from rarebird.results import (
    AnomalyRecord,
    BucketInfluencer,
    BucketResult,
    BucketResults,
    Influence,
    InfluencerResult,
)

#: Elasticsearch asks autodetect for at most this many records per bucket
#: (``xpack.ml.max_anomaly_records``).
MAX_ANOMALY_RECORDS = 500
#: Results within this factor of a written descendant's probability are written too.
OUTPUT_TOLERANCE = 1.2
BUCKET_TIME = "bucket_time"
#: Nodes whose children all have at least this probability are not anomalous, whatever their
#: number (joint >= 0.5, calibrated extremes >= 0.14): their arithmetic is skipped.
UNREMARKABLE = 0.5
_SEP = "\x1f"


@dataclass(frozen=True, slots=True)
class Leaf:
    """One user present in the bucket: the model's score and the influencer values seen."""

    score: ValueScore
    influences: Mapping[str, tuple[str, ...]]
    event_count: int = 0
    #: the same person under other identity fields (e.g. user.audit.name after sudo)
    identities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass
class Normalizers:
    """The normalisers of every results level of a job."""

    bucket_span_s: int
    leaf: ScoreNormalizer
    person: ScoreNormalizer
    root: ScoreNormalizer
    influencer: dict[str, ScoreNormalizer] = field(default_factory=dict)
    influencer_bucket: dict[str, ScoreNormalizer] = field(default_factory=dict)

    @classmethod
    def create(cls, bucket_span_s: int) -> Normalizers:
        return cls(
            bucket_span_s,
            ScoreNormalizer(bucket_span_s),
            ScoreNormalizer(bucket_span_s),
            ScoreNormalizer(bucket_span_s),
        )

    def for_influencer(self, name: str) -> ScoreNormalizer:
        """The influencer field's normaliser, made when a final bucket first needs it."""
        norm = self.influencer.get(name)
        if norm is None:
            norm = self.influencer[name] = _new_and_aged(self.bucket_span_s)
        return norm

    def for_influencer_bucket(self, name: str) -> ScoreNormalizer:
        norm = self.influencer_bucket.get(name)
        if norm is None:
            norm = self.influencer_bucket[name] = _new_and_aged(self.bucket_span_s)
        return norm

    def all(self) -> list[ScoreNormalizer]:
        return [self.leaf, self.person, self.root, *self.influencer.values(),
                *self.influencer_bucket.values()]  # fmt: skip

    def propagate_forward(self, buckets: float = 1.0) -> None:
        for norm in self.all():
            norm.propagate_forward(buckets)

    def to_state(self) -> dict[str, Any]:
        return {
            "bucket_span_s": self.bucket_span_s,
            "leaf": self.leaf.to_state(),
            "person": self.person.to_state(),
            "root": self.root.to_state(),
            "influencer": {k: v.to_state() for k, v in self.influencer.items()},
            "influencer_bucket": {k: v.to_state() for k, v in self.influencer_bucket.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Normalizers:
        return cls(
            int(state["bucket_span_s"]),
            ScoreNormalizer.from_state(state["leaf"]),
            ScoreNormalizer.from_state(state["person"]),
            ScoreNormalizer.from_state(state["root"]),
            {k: ScoreNormalizer.from_state(v) for k, v in state["influencer"].items()},
            {k: ScoreNormalizer.from_state(v) for k, v in state["influencer_bucket"].items()},
        )


def _new_and_aged(bucket_span_s: int) -> ScoreNormalizer:
    """A normaliser made while a final bucket is scored. The engine makes it when the
    bucket's results are first visited (``E_RefreshSettings``), *before* it ages every
    normaliser by the bucket (``CAnomalyJob::updateNormalizerAndNormalizeResults``), so it
    has aged one bucket when it learns its first score: its quantiles decay on the same
    schedule as the engine's (``time_to_quantile_decay`` in the oracle's quantiles state)."""
    norm = ScoreNormalizer(bucket_span_s)
    norm.propagate_forward(1.0)
    return norm


def scope(field_name: str, value: str | None) -> str:
    """Key of a maximum-score scope: a field name and a value (None: the field as a whole)."""
    return f"{field_name}{_SEP}{value if value is not None else ''}"


def _combine(
    probabilities: Sequence[float], memo: dict[tuple[float, ...], tuple[float, float]] | None = None
) -> tuple[float, float]:
    """(raw, probability before finalising) of a node over leaves. Nodes of a bucket often
    share their children's probabilities (a user alone on a host with one command): ``memo``
    remembers the answers of the bucket."""
    if len(probabilities) == 1:
        return aggregate(probabilities, DETECTORS)
    lowest = min(probabilities)
    if lowest >= UNREMARKABLE:
        # Children this likely cannot combine into an anomaly (test_aggregate_shortcut): the
        # node's raw score is 0 and no result of it is written; its probability only matters
        # through the minimum taken above it, which it cannot be. Skip the arithmetic.
        return 0.0, lowest
    key = tuple(sorted(probabilities))
    if memo is not None:
        hit = memo.get(key)
        if hit is not None:
            return hit
    result = aggregate([aggregate(key, ATTRIBUTES)[1]], DETECTORS)
    if memo is not None:
        memo[key] = result
    return result


def _combine_people(probabilities: Sequence[float]) -> tuple[float, float]:
    p = probabilities[0] if len(probabilities) == 1 else aggregate(probabilities, PEOPLE)[1]
    return aggregate([p], DETECTORS)


def _final(raw: float, probability: float) -> float:
    return inverse_anomaly_score(raw) if raw > 0.0 else probability


def _fed_score(probability: float) -> float:
    """The raw score a normaliser learns from a node: 0 above the anomalous cut-off."""
    return 0.0 if probability > MAXIMUM_ANOMALOUS_PROBABILITY else anomaly_score(probability)


@dataclass
class _Node:
    raw: float
    pre: float  # probability before finalising (what parents aggregate)
    probability: float  # finalised
    smallest: float  # smallest probability among the nodes below (before finalising)
    scope: str
    normalized: float = 0.0

    def written_by_itself(self) -> bool:
        return min(self.probability, self.smallest) < MAXIMUM_ANOMALOUS_PROBABILITY


def _node(raw_pre: tuple[float, float], children: Sequence[_Node], scope_key: str) -> _Node:
    raw, pre = raw_pre
    smallest = min(min(c.pre, c.smallest) for c in children)
    return _Node(raw, pre, _final(raw, pre), smallest, scope_key)


def _details(
    leaf: Leaf, node: _Node, ceilings: Mapping[str, float], context: Mapping[str, float] | None
) -> dict[str, Any]:
    """Why a record scored as it did: the model's view and the normaliser's ceilings."""
    out: dict[str, Any] = {
        "concentration": leaf.score.concentration,
        "raw_score": node.raw,
        "ceilings": dict(ceilings),
    }
    if leaf.identities:
        out["identities"] = {k: list(v) for k, v in leaf.identities.items()}
    if ceilings:
        out["bound_by"] = min(ceilings, key=lambda k: ceilings[k])
    if context:
        out.update(context)
    return out


def score_bucket(
    *,
    job_id: str,
    timestamp: datetime,
    bucket_span_s: int,
    by_field: str,
    influencer_fields: Sequence[str],
    leaves: Sequence[Leaf],
    normalizers: Normalizers,
    event_count: int,
    is_interim: bool = False,
    max_records: int = MAX_ANOMALY_RECORDS,
    model_context: Mapping[str, float] | None = None,
) -> tuple[BucketResults, bool]:
    """Score one bucket (leaves in person-id order). Final buckets also teach the normalisers
    (the caller ages them first); interim ones only read them. Returns the results and whether
    some scope's maximum score rose by more than 10 % (Elastic's trigger to renormalise)."""
    if not leaves:
        bucket = BucketResult(job_id, timestamp, bucket_span_s, 0.0, 0.0, event_count,
                              (), is_interim)  # fmt: skip
        return BucketResults(bucket), False

    # --- the main tree: leaves, person, root --------------------------------------------
    leaf_nodes = []
    for leaf in leaves:
        p = leaf.score.probability
        leaf_nodes.append(_Node(anomaly_score(p), p, p, p, scope(by_field, leaf.score.value)))
    if len(leaves) == 1:
        person = leaf_nodes[0]
        person_is_leaf = True
    else:
        person = _node(_combine([n.pre for n in leaf_nodes]), leaf_nodes, scope(by_field, None))
        person_is_leaf = False
    root = _node(_combine([person.pre]), [person], "")

    # --- pivots: one per influencer value, one root per influencer field ------------------
    memo: dict[tuple[float, ...], tuple[float, float]] = {}
    pivots: dict[str, dict[str, _Node]] = {}
    pivot_roots: dict[str, _Node] = {}
    for field_name in sorted(set(influencer_fields)):
        children: dict[str, list[_Node]] = {}
        for leaf, node in zip(leaves, leaf_nodes, strict=True):
            for value in leaf.influences.get(field_name, ()):
                children.setdefault(value, []).append(node)
        if not children:
            continue
        field_pivots = {}
        for value in sorted(children):
            kids = children[value]
            field_pivots[value] = _node(
                _combine([k.pre for k in kids], memo), kids, scope(field_name, value)
            )
        pivots[field_name] = field_pivots
        pivot_roots[field_name] = _node(
            _combine_people([n.pre for n in field_pivots.values()]),
            list(field_pivots.values()),
            scope(field_name, None),
        )

    # --- learn (final buckets only), then normalise ----------------------------------------
    big_change = False
    if not is_interim:
        for node in leaf_nodes:
            big_change |= normalizers.leaf.update(node.scope, _fed_score(node.probability))
            if person_is_leaf:
                big_change |= normalizers.person.update(node.scope, _fed_score(node.probability))
        if not person_is_leaf:
            big_change |= normalizers.person.update(person.scope, _fed_score(person.probability))
        big_change |= normalizers.root.update(root.scope, _fed_score(root.probability))
        for field_name, field_pivots in pivots.items():
            norm = normalizers.for_influencer(field_name)
            for node in field_pivots.values():
                big_change |= norm.update(node.scope, _fed_score(node.probability))
        for field_name, node in pivot_roots.items():
            norm = normalizers.for_influencer_bucket(field_name)
            big_change |= norm.update(node.scope, _fed_score(node.probability))

    def normalize(norm: ScoreNormalizer | None, node: _Node) -> float:
        if norm is None or not norm.can_normalize():
            return 0.0
        return norm.normalize(node.scope, _fed_score(node.probability))

    ceilings: dict[int, dict[str, float]] = {}
    for i, node in enumerate(leaf_nodes):
        node.normalized = normalize(normalizers.leaf, node)
        if node.probability < MAXIMUM_ANOMALOUS_PROBABILITY and normalizers.leaf.can_normalize():
            ceilings[i] = normalizers.leaf.explain(node.scope, _fed_score(node.probability))[1]
    root.normalized = normalize(normalizers.root, root)
    for field_name, field_pivots in pivots.items():
        field_norm = normalizers.influencer.get(field_name)
        for node in field_pivots.values():
            node.normalized = normalize(field_norm, node)
    for field_name, node in pivot_roots.items():
        node.normalized = normalize(normalizers.influencer_bucket.get(field_name), node)

    # --- what gets written -----------------------------------------------------------------
    root_written = root.written_by_itself()
    pivot_written = {
        f: {
            v: n.written_by_itself()
            or (pivot_roots[f].written_by_itself()
                and min(n.probability, n.smallest) <= OUTPUT_TOLERANCE * pivot_roots[f].smallest)
            for v, n in fp.items()
        }
        for f, fp in pivots.items()
    }  # fmt: skip
    records: list[tuple[Leaf, _Node, dict[str, float]]] = []
    for i, (leaf, node) in enumerate(zip(leaves, leaf_nodes, strict=True)):
        p = node.probability
        written = node.written_by_itself() or (
            root_written and p <= OUTPUT_TOLERANCE * root.smallest
        )
        if not written:
            for field_name, values in leaf.influences.items():
                for value in values:
                    pivot = pivots.get(field_name, {}).get(value)
                    if (
                        pivot is not None
                        and pivot_written[field_name][value]
                        and p <= OUTPUT_TOLERANCE * pivot.smallest
                    ):
                        written = True
        if written:
            records.append((leaf, node, ceilings.get(i, {})))
    records.sort(key=lambda item: item[1].probability)
    records = records[:max_records]

    record_docs = tuple(
        AnomalyRecord(
            job_id=job_id,
            timestamp=timestamp,
            bucket_span=bucket_span_s,
            by_field_name=by_field,
            by_field_value=leaf.score.value,
            probability=node.probability,
            record_score=node.normalized,
            initial_record_score=node.normalized,
            typical=(node.probability,),
            actual=(1.0,),
            influencers=tuple(
                Influence(f, leaf.influences[f])
                for f in influencer_fields
                if leaf.influences.get(f)
            ),
            is_interim=is_interim,
            first_occurrence=leaf.score.first_occurrence,
            relative_rarity=leaf.score.relative_rarity,
            event_count=leaf.event_count,
            details=_details(leaf, node, bound, model_context),
        )
        for leaf, node, bound in sorted(records, key=lambda item: item[0].score.value)
    )
    influencer_docs = tuple(
        InfluencerResult(
            job_id=job_id,
            timestamp=timestamp,
            bucket_span=bucket_span_s,
            influencer_field_name=f,
            influencer_field_value=v,
            probability=n.probability,
            influencer_score=n.normalized,
            initial_influencer_score=n.normalized,
            is_interim=is_interim,
        )
        for f, fp in pivots.items()
        for v, n in fp.items()
        if pivot_written[f][v]
    )
    bucket_influencers = [
        BucketInfluencer(job_id, timestamp, bucket_span_s, f, n.probability, n.raw,
                         n.normalized, n.normalized, is_interim)
        for f, n in pivot_roots.items()
        if n.written_by_itself()
    ]  # fmt: skip
    if record_docs or bucket_influencers:
        bucket_influencers.append(
            BucketInfluencer(
                job_id,
                timestamp,
                bucket_span_s,
                BUCKET_TIME,
                root.probability,
                root.raw,
                root.normalized,
                root.normalized,
                is_interim,
            )  # fmt: skip
        )
    score = max((b.anomaly_score for b in bucket_influencers), default=0.0)
    bucket = BucketResult(
        job_id, timestamp, bucket_span_s, score, score, event_count,
        tuple(bucket_influencers), is_interim,
    )  # fmt: skip
    counts = {leaf.score.value: leaf.event_count for leaf in leaves}
    return BucketResults(bucket, record_docs, influencer_docs, counts), big_change
