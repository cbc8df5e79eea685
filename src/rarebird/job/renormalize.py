"""Renormalisation: rescoring the recent results with the normalisers as they are now.

As Elasticsearch does when autodetect persists new quantiles (``ScoresUpdater``,
``Normalizer``): the results of the last ``max(30 days, 100 buckets)`` (or the job's
``renormalization_window_days``) get the score their probability has under the current
normalisers, and only the *big* changes are written; ``initial_*`` scores never change. The job
reads the stored part of the window through a :class:`ResultsWindow` (the store implements it),
so this module does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from rarebird.detectors.aggregate import Normalizers, scope
from rarebird.detectors.maths import MAXIMUM_ANOMALOUS_PROBABILITY, anomaly_score
from rarebird.detectors.normalize import ScoreNormalizer

#: An Elastic result document (bucket, record or influencer), as stored.
ResultDoc = dict[str, Any]


class ResultsWindow(Protocol):
    """Where the job's earlier results can be read back for renormalisation."""

    def window_docs(self, job_id: str, start_ms: int) -> dict[str, ResultDoc]:
        """Final record, influencer and bucket documents from ``start_ms`` on, by id."""
        ...


@dataclass(frozen=True, slots=True)
class ScoreUpdate:
    """A renormalised current score for one stored result document."""

    doc_id: str
    score: float
    doc: ResultDoc


def window_seconds(renormalization_window_days: int | None, bucket_span_s: int) -> int:
    """How far back renormalisation reaches: the job's setting, else max(30 days, 100 buckets)."""
    if renormalization_window_days is not None:
        return renormalization_window_days * 86400
    return max(30 * 86400, 100 * bucket_span_s)


def renormalise(
    docs: Mapping[str, ResultDoc], *, job_id: str, by_field: str, normalizers: Normalizers
) -> list[ScoreUpdate]:
    """The big score changes of ``docs`` under ``normalizers`` (a bucket's changed bucket
    influencers come with it)."""
    updates: list[ScoreUpdate] = []
    norms = normalizers
    for doc_id, doc in docs.items():
        kind = doc["result_type"]
        if kind == "record":
            key = scope(by_field, doc["by_field_value"])
            new = _renormalised(norms.leaf, key, doc["probability"])
            if is_big_update(doc["record_score"], new):
                updates.append(ScoreUpdate(doc_id, new, {**doc, "record_score": new}))
        elif kind == "influencer":
            name = doc["influencer_field_name"]
            norm = norms.influencer.get(name)
            if norm is None:
                continue
            new = _renormalised(
                norm, scope(name, doc["influencer_field_value"]), doc["probability"]
            )
            if is_big_update(doc["influencer_score"], new):
                updates.append(ScoreUpdate(doc_id, new, {**doc, "influencer_score": new}))
        elif kind == "bucket" and doc["anomaly_score"] > 0:
            updates.extend(_bucket_updates(doc_id, doc, job_id, norms))
    return updates


def _bucket_updates(
    doc_id: str, doc: ResultDoc, job_id: str, norms: Normalizers
) -> list[ScoreUpdate]:
    out: list[ScoreUpdate] = []
    influencers = []
    for bi in doc.get("bucket_influencers", []):
        name = bi["influencer_field_name"]
        norm: ScoreNormalizer | None
        if name == "bucket_time":
            norm, key = norms.root, ""
        else:
            norm, key = norms.influencer_bucket.get(name), scope(name, None)
        new = bi["anomaly_score"] if norm is None else _renormalised(norm, key, bi["probability"])
        if is_big_update(bi["anomaly_score"], new):
            bi = {**bi, "anomaly_score": new}
            bi_id = f"{job_id}_bucket_influencer_{doc['timestamp']}_{doc['bucket_span']}_{name}"
            out.append(ScoreUpdate(bi_id, new, bi))
        influencers.append(bi)
    if out:
        score = max(b["anomaly_score"] for b in influencers)
        out.append(
            ScoreUpdate(
                doc_id, score, {**doc, "anomaly_score": score, "bucket_influencers": influencers}
            )
        )
    return out


def _renormalised(norm: ScoreNormalizer, key: str, probability: float) -> float:
    if not norm.can_normalize():
        return 0.0
    raw = 0.0 if probability > MAXIMUM_ANOMALOUS_PROBABILITY else anomaly_score(probability)
    return float(norm.normalize(key, raw))


def is_big_update(old: float, new: float) -> bool:
    """Elasticsearch writes a renormalised score only when the change matters
    (``Normalizer.isBigUpdate``): another severity band, |Δ| >= 1.5, or a ratio below 1/3."""
    if int(old // 25) != int(new // 25):
        return True
    if abs(old - new) >= 1.5:
        return True
    lo, hi = min(old, new), max(old, new)
    return hi > 0 and lo < 0.33 * hi
