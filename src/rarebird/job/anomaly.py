"""Stage 3: the anomaly detection job. Events in (already matched by the datafeed), results out.

:class:`AnomalyJob` does what Elastic's ``autodetect`` process does for a ``rare`` job:

- assigns each event to its epoch-aligned bucket of ``bucket_span``; an event older than the
  bucket being built is counted as out of order and dropped (Elastic's
  ``out_of_order_timestamp_count``); an event without the by-field is counted
  (``missing_field_count``) and only counts towards the bucket's ``event_count``;
- the bucket holding the job's very first event is not analysed (no results, nothing learnt),
  as Elastic's engine does: the first bucket may be partial;
- finalises a bucket when time moves past it: the model learns it, then scores it, the
  normalisers learn and normalise (see :mod:`rarebird.detectors.aggregate`), values unseen for
  the prune window are forgotten; results, kept events and renormalised scores are handed
  over by :meth:`AnomalyJob.take_output` (the job does no I/O: the engine writes them with the
  model state);
- with ``renormalize`` (live detection, ``detect`` and ``serve``), rescores the earlier results of
  the last ``max(30 days, 100 buckets)`` when a normaliser's scope maximum jumps by more than
  10 % or (``renormalize_every_s``) every 6 hours of data, writing only "big" changes, as
  Elasticsearch's ``ScoresUpdater`` does (``initial_*`` scores never change). A plain replay
  (``job run``) keeps the engine's initial scores, which is what the oracle of Elastic's engine
  shows; ``job run --renormalize`` renormalises on jumps only, as a datafeed's lookback does;
- tracks model memory against ``model_memory_limit``: ``ok``, ``soft_limit`` from 60 %,
  ``hard_limit`` at the limit, where new by-field values are refused and counted.

The state is versioned JSON (:meth:`AnomalyJob.to_state`); a job stopped after any bucket and
resumed gives the same results as one that never stopped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from rarebird.definitions import JobConfig
from rarebird.detectors.aggregate import Leaf, Normalizers, score_bucket
from rarebird.detectors.rare import RareModel
from rarebird.errors import StateError
from rarebird.events import EventGroup, ProcessEvent, value_getter
from rarebird.job.buckets import Bucket
from rarebird.job.interim import interim_results
from rarebird.job.memory import MemoryGauge, at_hard_limit
from rarebird.job.renormalize import (
    ResultDoc,
    ResultsWindow,
    ScoreUpdate,
    renormalise,
    window_seconds,
)
from rarebird.job.stats import JobStats
from rarebird.results import BucketResults
from rarebird.timeutil import from_epoch_s, to_epoch_s

STATE_VERSION = 1
#: Elasticsearch renormalises at least this often (``maxQuantileInterval``, 6 h of data).
RENORMALIZE_INTERVAL_S = 21600
#: Who else the by-field value was, per event: after sudo ``user.name`` is root and the person
#: is only in ``user.audit.name``; with ``--identity login`` the account moves to
#: ``process.real_user.name``. Kept with each record so results show both.
IDENTITY_FIELDS = ("user.name", "user.audit.name", "user.effective.name", "process.real_user.name")


class AnomalyJob:
    """A running ``rare`` anomaly job: its model, normalisers, counts and the bucket being built."""

    def __init__(
        self,
        job: JobConfig,
        *,
        keep_events: bool = True,
        renormalize: bool = False,
        window: ResultsWindow | None = None,
        renormalize_every_s: float | None = RENORMALIZE_INTERVAL_S,
    ) -> None:
        self.config = job
        self._memory = MemoryGauge()
        self.renormalize = renormalize
        #: data time between periodic renormalisations; None: only when a maximum jumps
        self.renormalize_every_s = renormalize_every_s
        self.window = window
        self.keep_events = keep_events
        self.span = job.bucket_span_s
        self.by_field = job.detector.by_field_name
        self.use_null = job.detector.use_null
        self.influencers = tuple(job.influencers)
        self._by_value = value_getter(self.by_field)
        self._influence_values = tuple((n, value_getter(n)) for n in self.influencers)
        self._identity_values = tuple(
            (n, value_getter(n)) for n in IDENTITY_FIELDS if n != self.by_field
        )
        self._influence_names = frozenset(self.influencers)
        self._identity_names = frozenset(n for n, _ in self._identity_values)
        self.model = RareModel(self.span)
        self.normalizers = Normalizers.create(self.span)
        self.stats = JobStats()
        self.current: Bucket | None = None
        self.skip_bucket: int | None = None
        self.last_renormalised_s: float | None = None
        self._pending_results: list[BucketResults] = []
        self._pending_events: list[ProcessEvent] = []
        #: renormalised scores not yet taken: doc id -> update
        self._score_updates: dict[str, ScoreUpdate] = {}

    # --- lifecycle -----------------------------------------------------------------------
    @classmethod
    def restore(
        cls,
        job: JobConfig,
        state: dict[str, Any],
        *,
        keep_events: bool = True,
        renormalize: bool = False,
        window: ResultsWindow | None = None,
        renormalize_every_s: float | None = RENORMALIZE_INTERVAL_S,
    ) -> AnomalyJob:
        """The job as saved by :meth:`to_state` (raises :class:`StateError` when the state was
        made with another definition)."""
        instance = cls(job, keep_events=keep_events, renormalize=renormalize, window=window,
                       renormalize_every_s=renormalize_every_s)  # fmt: skip
        instance._restore(state)
        return instance

    def _restore(self, state: dict[str, Any]) -> None:
        cfg = state["config"]
        mine = self._config_fingerprint()
        if cfg != mine:
            changed = sorted(k for k in mine if cfg.get(k) != mine[k])
            raise StateError(
                f"job {self.config.job_id!r} was run with a different definition "
                f"({', '.join(changed)} changed); use another --store or job id"
            )
        self.model = RareModel.from_state(state["model"])
        self.normalizers = Normalizers.from_state(state["normalizers"])
        self.stats = JobStats.from_dict(state["stats"])
        self._memory = MemoryGauge(self.stats)
        self.current = Bucket.from_state(state["current"]) if state["current"] else None
        self.skip_bucket = state["skip_bucket"]
        self.last_renormalised_s = state["last_renormalised_s"]

    def _config_fingerprint(self) -> dict[str, Any]:
        return {
            "bucket_span_s": self.span,
            "by_field": self.by_field,
            "function": self.config.detector.function,
            "use_null": self.use_null,
            "influencers": list(self.influencers),
        }

    def to_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "job_id": self.config.job_id,
            "config": self._config_fingerprint(),
            "model": self.model.to_state(),
            "normalizers": self.normalizers.to_state(),
            "stats": asdict(self.stats),
            "current": self.current.to_state() if self.current else None,
            "skip_bucket": self.skip_bucket,
            "last_renormalised_s": self.last_renormalised_s,
        }

    @property
    def pending(self) -> int:
        """Results and events held in memory until the next :meth:`take_output`."""
        return len(self._pending_results) + len(self._pending_events)

    def take_output(self) -> JobOutput:
        """What the job produced since the last call, to be written to the store: results of
        the buckets finalised, the events kept for triage and renormalised scores. Result
        ids are Elastic's and events are keyed by content, so writing them again (a resumed
        job) changes nothing."""
        out = JobOutput(
            tuple(self._pending_results),
            tuple(self._pending_events),
            tuple(self._score_updates.values()),
        )
        self._pending_results.clear()
        self._pending_events.clear()
        self._score_updates.clear()
        return out

    # --- feeding -------------------------------------------------------------------------
    def feed(self, event: ProcessEvent) -> list[BucketResults]:
        """Add one event (already matched by the datafeed). Returns the results of buckets the
        event's arrival finalised (also kept for the next :meth:`save`)."""
        ts = to_epoch_s(event.timestamp)
        finalised: list[BucketResults] = []
        bucket = self._bucket_of(ts, 1, finalised)
        if bucket is None:
            return finalised
        self._count(ts, ts, 1)
        outcome = self._gather(bucket, event)
        if outcome != "kept":
            self._drop(outcome, 1)
        elif self.keep_events:
            self._pending_events.append(event)
        return finalised

    def feed_group(self, group: EventGroup) -> list[BucketResults]:
        """Add the ``group.count`` events of one by-field value in one bucket, counted where
        they were scanned (``job run --aggregate``): the same model, counts and results as
        feeding those events one by one, in order. The events themselves are not kept."""
        first = to_epoch_s(group.first)
        finalised: list[BucketResults] = []
        bucket = self._bucket_of(first, group.count, finalised)
        if bucket is None:
            return finalised
        self._count(first, to_epoch_s(group.last), group.count)
        n = group.count
        bucket.event_count += n
        value, why = self._admit(bucket, group.value)
        if value is None:
            self._drop(why, n)
            return finalised
        # the fields in the order their first values came (as the events would add them)
        influences = {f: vs for f, vs in group.values.items() if f in self._influence_names}
        identities = {
            f: tuple(v for v in vs if v != value)
            for f, vs in group.values.items()
            if f in self._identity_names
        }
        bucket.add_many(value, n, influences, identities)
        return finalised

    def _bucket_of(self, ts: float, n: int, finalised: list[BucketResults]) -> Bucket | None:
        """The bucket an event at ``ts`` goes to, finalising the ones it closes (into
        ``finalised``); None (``n`` events counted out of order) when that bucket is closed."""
        index = int(ts // self.span)
        if self.current is None:
            last_end = self.stats.last_finalised_bucket_end
            if last_end is None:
                # a brand-new job: its first bucket may be partial and is not analysed
                self.current = Bucket(index)
                self.skip_bucket = index
            else:
                self.current = Bucket(int(last_end // self.span))
        if index < self.current.index:
            self.stats.out_of_order_timestamp_count += n
            return None
        if index > self.current.index:
            finalised.extend(self._finalise_until(index))
            self.current = Bucket(index)
        return self.current

    def _count(self, first: float, last: float, n: int) -> None:
        stats = self.stats
        stats.processed_record_count += n
        if stats.earliest_record_timestamp is None or first < stats.earliest_record_timestamp:
            stats.earliest_record_timestamp = first
        if stats.latest_record_timestamp is None or last > stats.latest_record_timestamp:
            stats.latest_record_timestamp = last

    def _admit(self, bucket: Bucket, value: str | None) -> tuple[str | None, str]:
        """The by-field value events of ``bucket`` are modelled under, or (None, why not):
        ``missing`` the field, or a new value ``refused`` at the memory limit."""
        if value is None:
            if not self.use_null:
                return None, "missing"
            value = ""
        if (
            value not in bucket.counts
            and value not in self.model
            and at_hard_limit(
                self.stats, self.model, self.config.model_memory_limit, len(bucket.counts)
            )  # fmt: skip
        ):
            return None, "refused"
        return value, ""

    def _drop(self, why: str, n: int) -> None:
        """Count ``n`` events the job did not model (:meth:`_admit`'s reason)."""
        if why == "missing":
            self.stats.missing_field_count += n
        else:
            self.stats.new_values_refused += n
            self.stats.bucket_allocation_failures_count += n

    def _gather(self, bucket: Bucket, event: ProcessEvent) -> str:
        """Add an event of ``bucket`` to it: ``kept``, or why not (``missing``, ``refused``)."""
        bucket.event_count += 1
        value, why = self._admit(bucket, self._by_value(event))
        if value is None:
            return why
        influences = {}
        for name, get in self._influence_values:
            v = get(event)
            if v is not None:
                influences[name] = v
        identities = {}
        for name, get in self._identity_values:
            v = get(event)
            if v is not None and v != value:
                identities[name] = v
        bucket.add(value, influences, identities)
        return "kept"

    def feed_all(self, events: Iterable[ProcessEvent]) -> Iterator[BucketResults]:
        for event in events:
            yield from self.feed(event)

    def advance_to(self, when: datetime) -> list[BucketResults]:
        """Finalise every bucket that ends at or before ``when`` (as time passing does)."""
        if self.current is None:
            last_end = self.stats.last_finalised_bucket_end
            if last_end is None:
                return []
            self.current = Bucket(int(last_end // self.span))
        index = int(to_epoch_s(when) // self.span)
        if index <= self.current.index:
            return []
        finalised = self._finalise_until(index)
        self.current = Bucket(index)
        return finalised

    def finish(self) -> list[BucketResults]:
        """End of input: finalise the bucket of the last event, as a datafeed with an end
        time does, so the results cover the whole input."""
        if self.current is None:
            return []
        if self.current.event_count == 0:
            # nothing arrived for the bucket after the last finalised one
            self.current = None
            return []
        end = self.current.index + 1
        finalised = self._finalise_until(end)
        self.current = None
        return finalised

    def interim(self, *, elastic: bool = False) -> BucketResults | None:
        """Interim results for the bucket being built; nothing is learnt, normalisers only read.

        By default (rarebird's early warning) the users seen so far are scored as if the
        bucket closed now with just them, so a never-seen user scores as it will when the
        bucket is final. With ``elastic=True`` they are scored as Elastic's engine does for
        interim buckets: with the model as of the last final bucket, a value it has never seen
        getting the smallest probability of any known value (which rarely flags a new user).
        None when there is nothing to score yet.
        """
        return interim_results(self, self.current, elastic=elastic)

    def interim_with(
        self, events: Sequence[ProcessEvent], *, elastic: bool = False
    ) -> BucketResults | None:
        """Interim results of the bucket ``events`` fall in (all in one bucket, at or after
        the one being built) as if they had been fed, without feeding them: the job is not
        changed. None when that bucket is final already or nothing can be scored."""
        if not events:
            return None
        index = int(to_epoch_s(events[0].timestamp) // self.span)
        current = self.current
        if current is not None and current.index == index:
            bucket = copy.deepcopy(current)
        elif current is not None and current.index > index:
            return None
        else:
            last_end = self.stats.last_finalised_bucket_end
            if last_end is not None and index < int(last_end // self.span):
                return None
            bucket = Bucket(index)
        for event in events:
            if int(to_epoch_s(event.timestamp) // self.span) == index:
                self._gather(bucket, event)
        return interim_results(self, bucket, elastic=elastic)

    @property
    def next_bucket_start(self) -> datetime | None:
        return None if self.current is None else from_epoch_s(self.current.index * self.span)

    # --- finalising ----------------------------------------------------------------------
    def _finalise_until(self, index: int) -> list[BucketResults]:
        assert self.current is not None
        out = []
        bucket = self.current
        if bucket.index == self.skip_bucket:
            # the job's first (possibly partial) bucket: neither scored nor learnt, but its
            # users get their person ids (which order the engine's results)
            self.model.register(bucket.order)
            self.skip_bucket = None
            start = bucket.index + 1
            self.stats.last_finalised_bucket_end = float((bucket.index + 1) * self.span)
        else:
            out.append(self._finalise(bucket))
            start = bucket.index + 1
        for empty in range(start, index):
            out.append(self._finalise(Bucket(empty)))
        return out

    def _finalise(self, bucket: Bucket) -> BucketResults:
        stats = self.stats
        timestamp = from_epoch_s(bucket.index * self.span)
        self.normalizers.propagate_forward(1.0)
        self.model.learn(bucket.index, bucket.order)
        values = self.model.result_order(bucket.order)
        leaves = [
            Leaf(
                score,
                {k: tuple(v) for k, v in bucket.influences[score.value].items()},
                bucket.counts[score.value],
                {k: tuple(v) for k, v in bucket.identities.get(score.value, {}).items()},
            )
            for score in self.model.score(bucket.index, values)
        ]
        results, big_change = score_bucket(
            job_id=self.config.job_id,
            timestamp=timestamp,
            bucket_span_s=self.span,
            by_field=self.by_field,
            influencer_fields=self.influencers,
            leaves=leaves,
            normalizers=self.normalizers,
            event_count=bucket.event_count,
            model_context=self._model_context() if leaves else None,
        )
        pruned = self.model.prune(bucket.index)
        stats.pruned_by_field_count += len(pruned)
        stats.bucket_count += 1
        if bucket.event_count == 0:
            stats.empty_bucket_count += 1
        stats.record_count += len(results.records)
        stats.last_finalised_bucket_end = float((bucket.index + 1) * self.span)
        self._memory.update(stats, self.model, self.normalizers, self.config.model_memory_limit)
        bucket_end = (bucket.index + 1) * self.span
        if self.last_renormalised_s is None:
            self.last_renormalised_s = float(bucket_end)
        self._pending_results.append(results)
        every = self.renormalize_every_s
        due = big_change or (every is not None and bucket_end - self.last_renormalised_s >= every)
        if due and self.renormalize:
            # as Elasticsearch does on new quantiles: rescore the window with the state as of
            # this bucket (so the outcome does not depend on when results are committed)
            self._renormalise(bucket_end)
            self.last_renormalised_s = float(bucket_end)
        return results

    def _model_context(self) -> dict[str, float]:
        model = self.model
        return {
            "values_known": float(len(model)),
            "total_concentration": model.total_concentration(),
            "median_concentration": model.sorted.median() / model.inv_scale,
        }

    # --- renormalisation -------------------------------------------------------------------
    def _renormalise(self, end_s: int) -> None:
        """Rescore the results of the renormalisation window with the normalisers as they are
        now (see :mod:`rarebird.job.renormalize`)."""
        window = window_seconds(self.config.renormalization_window_days, self.span)
        # Elasticsearch rescores [t - window, t), t the start of the triggering bucket
        start_ms = int((end_s - self.span - window) * 1000)
        docs: dict[str, ResultDoc] = {}
        if self.window is not None:
            docs.update(self.window.window_docs(self.config.job_id, start_ms))
        for results in self._pending_results:
            if to_epoch_s(results.bucket.timestamp) * 1000 < start_ms:
                continue
            docs[results.bucket.doc_id] = results.bucket.to_doc()
            for rec in results.records:
                docs[rec.doc_id] = rec.to_doc()
            for infl in results.influencers:
                docs[infl.doc_id] = infl.to_doc()
        for doc_id, update in self._score_updates.items():
            if doc_id in docs:
                docs[doc_id] = update.doc
        updates = renormalise(
            docs, job_id=self.config.job_id, by_field=self.by_field, normalizers=self.normalizers
        )
        for update in updates:
            self._score_updates[update.doc_id] = update
        if updates:
            self.stats.renormalisations += 1


@dataclass(frozen=True)
class JobOutput:
    """What a job produced since the last :meth:`AnomalyJob.take_output`."""

    results: tuple[BucketResults, ...] = ()
    events: tuple[ProcessEvent, ...] = ()
    score_updates: tuple[ScoreUpdate, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.results or self.events or self.score_updates)
