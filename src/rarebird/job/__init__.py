"""Stage 3, the anomaly job: events in (matched by the datafeed), bucket results out.

``anomaly`` (:class:`AnomalyJob`: buckets, the model, scores, memory, state), ``buckets`` (the
bucket being built), ``renormalize`` (rescoring earlier results, over a :class:`ResultsWindow`),
``stats`` (Elastic's counts). The job imports no store: the engine persists what
:meth:`AnomalyJob.take_output` hands over, with :meth:`AnomalyJob.to_state`.
"""

from __future__ import annotations

from rarebird.job.anomaly import STATE_VERSION, AnomalyJob, JobOutput
from rarebird.job.renormalize import ResultsWindow, ScoreUpdate
from rarebird.job.stats import JobStats

__all__ = ["STATE_VERSION", "AnomalyJob", "JobOutput", "JobStats", "ResultsWindow", "ScoreUpdate"]
