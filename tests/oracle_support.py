"""Reading Elastic's engine output in ``../shared/oracle``: scores, normaliser state, renormalising.

- :func:`engine_scores`: the engine's record, bucket, bucket-influencer and influencer scores.
- :func:`engine_quantiles`: the normaliser state the engine persisted (its ``quantiles``
  documents), decoded, with each maximum-score scope's key (a 64-bit MurmurHash2 "dictionary
  word", ``core::CCompressedDictionary``) mapped back to rarebird's scope name, in the form of
  :meth:`rarebird.detectors.normalize.ScoreNormalizer.to_state`.
- :func:`elasticsearch_renormalised`: what Elasticsearch's renormaliser (``ScoresUpdater``,
  ``Normalizer``) makes of the engine's results, given the engine's own quantiles documents.

Used by the oracle tests and ``bench/oracle_compare.py``.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rarebird.detectors.aggregate import Normalizers, scope
from rarebird.detectors.maths import MAXIMUM_ANOMALOUS_PROBABILITY, anomaly_score
from rarebird.detectors.normalize import ScoreNormalizer, decay_rate_for

Key = tuple[Any, ...]
KINDS = ("record", "bucket", "bucket_influencer", "influencer")
BUCKET_SPAN = 900
#: Elasticsearch's default renormalisation window: max(30 days, 100 buckets)
WINDOW_MS = max(30 * 86400, 100 * BUCKET_SPAN) * 1000


def scenarios(oracle: Path) -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in (oracle / "outputs").glob("*.json"))


def raw_output(oracle: Path, name: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = json.loads((oracle / "outputs" / f"{name}.json").read_text())
    return docs


# --- scores ------------------------------------------------------------------------------------
def engine_scores(docs: Iterable[dict[str, Any]]) -> dict[str, dict[Key, float]]:
    """Scores by kind and key: record (ts, user), bucket (ts,), bucket_influencer (ts, field),
    influencer (ts, field, value); ts in epoch seconds."""
    out: dict[str, dict[Key, float]] = {k: {} for k in KINDS}
    for doc in docs:
        for r in doc.get("records", []):
            out["record"][(r["timestamp"] // 1000, r["by_field_value"])] = r["record_score"]
        bucket = doc.get("bucket")
        if bucket is not None:
            ts = bucket["timestamp"] // 1000
            out["bucket"][(ts,)] = bucket["anomaly_score"]
            for bi in bucket.get("bucket_influencers", []):
                out["bucket_influencer"][(ts, bi["influencer_field_name"])] = bi["anomaly_score"]
        for i in doc.get("influencers", []):
            key = (i["timestamp"] // 1000, i["influencer_field_name"], i["influencer_field_value"])
            out["influencer"][key] = i["influencer_score"]
    return out


def rarebird_scores(
    records: Iterable[dict[str, Any]],
    buckets: Iterable[dict[str, Any]],
    influencers: Iterable[dict[str, Any]],
) -> dict[str, dict[Key, float]]:
    """The same keys from rarebird's result documents (``rarebird results --format json``)."""
    out: dict[str, dict[Key, float]] = {k: {} for k in KINDS}
    for r in records:
        out["record"][(r["timestamp"] // 1000, r["by_field_value"])] = r["record_score"]
    for b in buckets:
        ts = b["timestamp"] // 1000
        out["bucket"][(ts,)] = b["anomaly_score"]
        for bi in b.get("bucket_influencers", []):
            out["bucket_influencer"][(ts, bi["influencer_field_name"])] = bi["anomaly_score"]
    for i in influencers:
        key = (i["timestamp"] // 1000, i["influencer_field_name"], i["influencer_field_value"])
        out["influencer"][key] = i["influencer_score"]
    return out


def worst(got: dict[Key, float], want: dict[Key, float]) -> tuple[float, Key | None]:
    """Largest |got - want| over want's keys (keys missing from got count as infinite)."""
    result: tuple[float, Key | None] = (0.0, None)
    for key, value in want.items():
        delta = abs(got[key] - value) if key in got else math.inf
        if delta > result[0]:
            result = (delta, key)
    return result


# --- the engine's dictionary words ---------------------------------------------------------------
_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1
_SEED = 472882027  # CCompressedDictionary's first seed


def _murmur64(data: bytes, seed: int) -> int:
    """MurmurHash64A, little-endian (``core::CHashing::safeMurmurHash64``)."""
    h = (seed ^ (len(data) * _M)) & _MASK
    whole = len(data) - len(data) % 8
    for i in range(0, whole, 8):
        k = (int.from_bytes(data[i : i + 8], "little") * _M) & _MASK
        k ^= k >> 47
        h ^= (k * _M) & _MASK
        h = (h * _M) & _MASK
    tail = data[whole:]
    if tail:
        h ^= int.from_bytes(tail, "little")
        h = (h * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def dictionary_word(*words: str) -> int:
    h = _SEED
    for word in words:
        h = _murmur64(word.encode(), h)
    return h


def scope_key(rarebird_scope: str) -> int:
    """The engine's maximum-score key of a rarebird scope (partition fields are empty)."""
    field, _, value = rarebird_scope.partition("\x1f")
    return dictionary_word("", "", field, value)


# --- the engine's quantiles state ------------------------------------------------------------------
def _pairs(items: list[tuple[str, Any]]) -> dict[str, list[Any]]:
    """The engine's state JSON repeats keys (one ``c`` per q-digest node): keep them all."""
    out: dict[str, list[Any]] = {}
    for key, value in items:
        out.setdefault(key, []).append(value)
    return out


@dataclass(frozen=True)
class Quantiles:
    """One persisted normaliser state: at the end of the bucket starting ``time`` (s)."""

    time: int
    #: normaliser name (``leaf``, ``person``, ``root``, ``influencer:<field>``,
    #: ``influencer_bucket:<field>``) -> engine state, keyed by scope hash
    normalizers: dict[str, dict[str, Any]]


def engine_quantiles(docs: Iterable[dict[str, Any]]) -> list[Quantiles]:
    out = []
    for doc in docs:
        q = doc.get("quantiles")
        if q is None:
            continue
        text = gzip.decompress(base64.b64decode(q["quantile_state"])).decode()
        parts = json.loads(text, object_pairs_hook=_pairs)
        norms: dict[str, dict[str, Any]] = {}
        for part in parts:
            cue = part["mlcue"][0]
            field = part["mlquantilesdescription"][0].strip().split(" ")[0]
            if cue.startswith("inflb"):
                name = f"influencer_bucket:{field}"
            elif cue.startswith("infl"):
                name = f"influencer:{field}"
            elif cue.startswith("leaf"):
                name = "leaf"
            elif cue.startswith("per"):
                name = "person"
            else:
                assert cue == "sysChange", cue
                name = "root"
            norms[name] = _decode_normalizer(part["a"][0])
        out.append(Quantiles(int(q["timestamp"] // 1000), norms))
    return out


def _decode_digest(d: dict[str, list[Any]]) -> dict[str, Any]:
    nodes = [[int(c["a"][0]), int(c["b"][0]), int(c["c"][0])] for c in d.get("c", [])]
    return {"k": int(d["a"][0]), "n": int(d["b"][0]), "nodes": nodes}


def _decode_normalizer(a: dict[str, list[Any]]) -> dict[str, Any]:
    scores = a["g"][0].get("a", [])
    return {
        "high_percentile_score": int(a["a"][0]),
        "high_percentile_count": int(a["b"][0]),
        "pending": [int(a["i"][0]), float(a["j"][0])],
        "low": _decode_digest(a["d"][0]),
        "high": _decode_digest(a["e"][0]),
        "time_to_quantile_decay": float(a["f"][0]),
        # scope hash -> (max score aged to now, buckets since it was last raised)
        "max_scores": {
            int(e["a"][0]): (float(e["b"][0]["a"][0]), float(e["b"][0]["b"][0])) for e in scores
        },
    }


def _digest(state: dict[str, Any]) -> dict[str, Any]:
    return {"k": state["k"], "n": state["n"], "nodes": [list(node) for node in state["nodes"]]}


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A rarebird normaliser state (``ScoreNormalizer.to_state``) in the engine's terms."""
    alpha = math.exp(-2.0 * decay_rate_for(BUCKET_SPAN))
    now = state["time"]
    return {
        "high_percentile_score": state["high_percentile_score"],
        "high_percentile_count": state["high_percentile_count"],
        "pending": list(state["pending"]),
        "low": _digest(state["low"]),
        "high": _digest(state["high"]),
        "time_to_quantile_decay": state["time_to_quantile_decay"],
        "max_scores": {
            scope_key(name): (score * alpha ** (now - updated), now - updated)
            for name, score, updated in state["max_scores"]
        },
    }


def to_rarebird(engine: dict[str, Any], scopes: Iterable[str]) -> ScoreNormalizer:
    """A rarebird normaliser holding an engine state; ``scopes`` name the scope hashes."""
    alpha = math.exp(-2.0 * decay_rate_for(BUCKET_SPAN))
    names = {scope_key(s): s for s in scopes}
    decay = decay_rate_for(BUCKET_SPAN)
    max_scores = sorted(engine["max_scores"].items(), key=lambda item: -item[1][1])
    return ScoreNormalizer.from_state(
        {
            "bucket_span_s": BUCKET_SPAN,
            "high_percentile_score": engine["high_percentile_score"],
            "high_percentile_count": engine["high_percentile_count"],
            "low": {**engine["low"], "decay_rate": decay},
            "high": {**engine["high"], "decay_rate": decay},
            "time_to_quantile_decay": engine["time_to_quantile_decay"],
            "time": 0.0,
            "max_scores": [
                [names[key], score / alpha**since, -since]
                for key, (score, since) in max_scores
                if key in names
            ],
            "pending": engine["pending"],
        }
    )


def engine_normalizers(quantiles: Quantiles, scopes: Iterable[str]) -> Normalizers:
    names = list(scopes)
    norms = {k: to_rarebird(v, names) for k, v in quantiles.normalizers.items()}
    return Normalizers(
        BUCKET_SPAN,
        norms["leaf"],
        norms["person"],
        norms["root"],
        {k.split(":", 1)[1]: v for k, v in norms.items() if k.startswith("influencer:")},
        {k.split(":", 1)[1]: v for k, v in norms.items() if k.startswith("influencer_bucket:")},
    )


def scopes_of(docs: Iterable[dict[str, Any]]) -> set[str]:
    """Every scope the results can name: users, influencer values, their fields, the root."""
    out = {""}
    for doc in docs:
        for r in doc.get("records", []):
            out.add(scope(r["by_field_name"], r["by_field_value"]))
            out.add(scope(r["by_field_name"], None))
        for i in doc.get("influencers", []):
            out.add(scope(i["influencer_field_name"], i["influencer_field_value"]))
            out.add(scope(i["influencer_field_name"], None))
        for bi in doc.get("bucket", {}).get("bucket_influencers", []):
            out.add(scope(bi["influencer_field_name"], None))
    return out


# --- Elasticsearch's renormalisation ---------------------------------------------------------------
def is_big_update(old: float, new: float) -> bool:
    """``Normalizer.isBigUpdate``."""
    if int(old / 25.0) != int(new / 25.0) or abs(old - new) >= 1.5:
        return True
    return old * 0.33 > new if old > new else new * 0.33 > old


def _renormalised(norm: ScoreNormalizer | None, key: str, probability: float) -> float | None:
    if norm is None:
        return None
    if not norm.can_normalize():
        return 0.0
    raw = 0.0 if probability > MAXIMUM_ANOMALOUS_PROBABILITY else anomaly_score(probability)
    return norm.normalize(key, raw)


def elasticsearch_renormalised(docs: list[dict[str, Any]]) -> dict[str, dict[Key, float]]:
    """The scores Elasticsearch leaves after renormalising the engine's results with each of
    the engine's quantiles documents in turn, as ``ScoresUpdater.update`` does: results in
    ``[t - window, t)`` for quantiles of time ``t``; a score is replaced only on a big update;
    a bucket's score becomes the largest of its bucket influencers'. The last document (the
    state written when the job is flushed at the end of its input) is left out: rarebird
    renormalises at the buckets whose scoring triggered it, and the flush triggers none."""
    scores = engine_scores(docs)
    records = {(r["timestamp"] // 1000, r["by_field_value"]): r
               for d in docs for r in d.get("records", [])}  # fmt: skip
    influencers = {(i["timestamp"] // 1000, i["influencer_field_name"],
                    i["influencer_field_value"]): i
                   for d in docs for i in d.get("influencers", [])}  # fmt: skip
    buckets = {d["bucket"]["timestamp"] // 1000: d["bucket"] for d in docs if "bucket" in d}
    names = scopes_of(docs)
    quantiles = engine_quantiles(docs)[:-1]
    for q in quantiles:
        norms = engine_normalizers(q, names)
        start, end = (q.time * 1000 - WINDOW_MS) // 1000, q.time
        for key, rec in records.items():
            if start <= key[0] < end:
                new = _renormalised(norms.leaf, scope(rec["by_field_name"], key[1]),
                                    rec["probability"])  # fmt: skip
                if new is not None and is_big_update(scores["record"][key], new):
                    scores["record"][key] = new
        for key, infl in influencers.items():
            if start <= key[0] < end:
                new = _renormalised(norms.influencer.get(key[1]), scope(key[1], key[2]),
                                    infl["probability"])  # fmt: skip
                if new is not None and is_big_update(scores["influencer"][key], new):
                    scores["influencer"][key] = new
        for ts, bucket in buckets.items():
            if not start <= ts < end or scores["bucket"][(ts,)] <= 0.0:
                continue
            best = 0.0
            for bi in bucket.get("bucket_influencers", []):
                field = bi["influencer_field_name"]
                key = (ts, field)
                if field == "bucket_time":
                    new = _renormalised(norms.root, "", bi["probability"])
                else:
                    new = _renormalised(norms.influencer_bucket.get(field), scope(field, None),
                                        bi["probability"])  # fmt: skip
                if new is not None and is_big_update(scores["bucket_influencer"][key], new):
                    scores["bucket_influencer"][key] = new
                best = max(best, scores["bucket_influencer"][key])
            scores["bucket"][(ts,)] = best
    return scores
