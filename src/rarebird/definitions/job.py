"""Anomaly detection job definitions, read from Elastic's job JSON as published."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rarebird.definitions._common import packaged_path, parse_byte_size, read_json_file
from rarebird.definitions.reader import Reader

DEFAULT_JOB_FILE = "v3_linux_network_connection_discovery.json"
EA_JOB_FILE = "v3_linux_network_connection_discovery_ea.json"

#: functions rarebird implements (Elastic's engine has many more)
SUPPORTED_FUNCTIONS = frozenset({"rare"})

_JOB_KEYS = frozenset(
    {
        "job_id", "job_type", "job_version", "description", "groups", "analysis_config",
        "analysis_limits", "background_persist_interval", "custom_settings",
        "daily_model_snapshot_retention_after_days", "data_description", "datafeed_config",
        "model_plot_config", "model_snapshot_retention_days", "renormalization_window_days",
        "results_index_name", "results_retention_days", "allow_lazy_open", "create_time",
        "finished_time", "model_snapshot_id", "blocked", "deleting", "datafeed_id",
    }
)  # fmt: skip
_ANALYSIS_KEYS = frozenset(
    {
        "bucket_span", "categorization_field_name", "categorization_filters",
        "categorization_analyzer", "detectors", "influencers", "latency", "model_prune_window",
        "multivariate_by_fields", "per_partition_categorization", "summary_count_field_name",
    }
)  # fmt: skip
_ANALYSIS_UNSUPPORTED = {
    "categorization_field_name": "categorization jobs are not supported (rarebird runs rare jobs)",
    "summary_count_field_name": "pre-summarised input is not supported",
}
_DETECTOR_KEYS = frozenset(
    {
        "by_field_name", "custom_rules", "detector_description", "detector_index",
        "exclude_frequent", "field_name", "function", "over_field_name",
        "partition_field_name", "use_null",
    }
)  # fmt: skip
_DETECTOR_UNSUPPORTED = {
    "over_field_name": "population analysis (over_field_name) is not supported",
    "partition_field_name": "partition_field_name is not supported",
    "field_name": "the rare function takes no field_name",
    "exclude_frequent": "exclude_frequent cannot be used with rare (Elastic rejects it too)",
}
_LIMIT_KEYS = frozenset({"model_memory_limit", "categorization_examples_limit"})
_DATA_KEYS = frozenset(
    {"time_field", "time_format", "format", "field_delimiter", "quote_character"}
)


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    function: str
    by_field_name: str
    detector_index: int = 0
    detector_description: str = ""
    use_null: bool = False

    @property
    def description(self) -> str:
        return self.detector_description or f'{self.function} by "{self.by_field_name}"'


@dataclass(frozen=True, slots=True)
class JobConfig:
    """One anomaly detection job, as Elastic defines it."""

    job_id: str
    bucket_span: timedelta
    detectors: tuple[DetectorConfig, ...]
    influencers: tuple[str, ...]
    model_memory_limit: int
    time_field: str = "@timestamp"
    description: str = ""
    groups: tuple[str, ...] = ()
    model_prune_window: timedelta | None = None
    renormalization_window_days: int | None = None
    allow_lazy_open: bool = False
    custom_settings: dict[str, Any] = field(default_factory=dict)
    #: the file it was read from ("" when built in code)
    source: str = ""

    @property
    def bucket_span_s(self) -> int:
        return int(self.bucket_span.total_seconds())

    @property
    def detector(self) -> DetectorConfig:
        return self.detectors[0]

    @property
    def display_name(self) -> str:
        name = self.custom_settings.get("security_app_display_name")
        return name if isinstance(name, str) else self.job_id


def load_job(path: str | None = None, job_id: str | None = None) -> JobConfig:
    """Load a job JSON file (Elastic's format). ``None`` loads the packaged default job.

    The job id is, in order: ``job_id`` given here, the file's ``job_id`` key, the file name
    without ``.json`` (Kibana module convention).
    """
    path = path or packaged_path(DEFAULT_JOB_FILE)
    return job_from_dict(read_json_file(path), path, job_id)


def job_from_dict(doc: dict[str, Any], path: str = "<job>", job_id: str | None = None) -> JobConfig:
    top = Reader(path, doc)
    top.check_keys(_JOB_KEYS)
    jt = top.string("job_type", "anomaly_detector")
    if jt != "anomaly_detector":
        raise top.fail("job_type", f"expected 'anomaly_detector', got {jt!r}")
    job_id = job_id or top.string("job_id") or Path(path).name.removesuffix(".json")
    analysis = top.obj("analysis_config")
    if analysis is None:
        raise top.fail("analysis_config", "is required")
    analysis.check_keys(_ANALYSIS_KEYS, _ANALYSIS_UNSUPPORTED)
    span = analysis.duration("bucket_span")
    if span is None:
        raise analysis.fail("bucket_span", "is required")
    if span.total_seconds() != int(span.total_seconds()):
        raise analysis.fail("bucket_span", "must be a whole number of seconds")
    detectors = []
    det_readers = analysis.obj_list("detectors")
    if not det_readers:
        raise analysis.fail("detectors", "at least one detector is required")
    if len(det_readers) > 1:
        raise analysis.fail("detectors", "rarebird runs jobs with exactly one detector")
    for i, det in enumerate(det_readers):
        det.check_keys(_DETECTOR_KEYS, _DETECTOR_UNSUPPORTED)
        function = det.req_string("function")
        if function not in SUPPORTED_FUNCTIONS:
            raise det.fail(
                "function",
                f"unsupported function {function!r} (rarebird implements: "
                f"{', '.join(sorted(SUPPORTED_FUNCTIONS))})",
            )
        by = det.string("by_field_name")
        if not by:
            raise det.fail("by_field_name", f"the {function} function needs a by_field_name")
        if det.raw("custom_rules"):
            raise det.fail("custom_rules", "custom rules are not allowed with the rare function")
        index = det.integer("detector_index", i)
        assert index is not None
        detectors.append(
            DetectorConfig(
                function=function,
                by_field_name=by,
                detector_index=index,
                detector_description=det.string("detector_description", "") or "",
                use_null=det.flag("use_null", False),
            )
        )
    influencers = analysis.str_list("influencers")
    limits = top.obj("analysis_limits")
    memory = 1024 << 20  # Elastic's default model_memory_limit is 1gb
    if limits is not None:
        limits.check_keys(_LIMIT_KEYS)
        raw = limits.raw("model_memory_limit")
        if raw is not None:
            try:
                memory = parse_byte_size(raw)
            except ValueError as exc:
                raise limits.fail("model_memory_limit", str(exc)) from None
            if memory < (1 << 20):
                raise limits.fail("model_memory_limit", "must be at least 1mb")
    data = top.obj("data_description")
    time_field = "@timestamp"
    if data is not None:
        data.check_keys(_DATA_KEYS)
        time_field = data.string("time_field", "@timestamp") or "@timestamp"
        fmt = data.string("format", "xcontent")
        if fmt not in ("xcontent", "XCONTENT", "json", "JSON"):
            raise data.fail("format", "only xcontent/JSON input is supported")
    custom = top.raw("custom_settings") or {}
    if not isinstance(custom, dict):
        raise top.fail("custom_settings", "expected an object")
    renorm = top.integer("renormalization_window_days")
    return JobConfig(
        job_id=job_id,
        bucket_span=span,
        detectors=tuple(detectors),
        influencers=influencers,
        model_memory_limit=memory,
        time_field=time_field,
        description=top.string("description", "") or "",
        groups=top.str_list("groups"),
        model_prune_window=analysis.duration("model_prune_window"),
        renormalization_window_days=renorm,
        allow_lazy_open=top.flag("allow_lazy_open", False),
        custom_settings=dict(custom),
        source=path,
    )
