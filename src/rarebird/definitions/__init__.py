"""Stage 0: definitions as data. Elastic's job JSON, datafeed JSON and rule TOML, as published.

``load_job()``, ``load_datafeed()`` and ``load_rule()`` with no argument load the packaged
defaults (the ``v3_linux_network_connection_discovery`` job, its datafeed and rule
``c28c4d8c-f014-40ef-88b6-79a1d67cd499``); ``packaged_path(EA_JOB_FILE)`` etc. name the ``_ea``
revision shipped beside them.
"""

from __future__ import annotations

from rarebird.definitions._common import packaged_path, parse_byte_size
from rarebird.definitions.datafeed import (
    DEFAULT_DATAFEED_FILE,
    EA_DATAFEED_FILE,
    DatafeedConfig,
    datafeed_from_dict,
    default_frequency,
    default_query_delay,
    load_datafeed,
)
from rarebird.definitions.job import (
    DEFAULT_JOB_FILE,
    EA_JOB_FILE,
    DetectorConfig,
    JobConfig,
    job_from_dict,
    load_job,
)
from rarebird.definitions.rule import (
    DEFAULT_RULE_FILE,
    EA_RULE_FILE,
    AlertSuppression,
    ExceptionListRef,
    RuleConfig,
    load_rule,
    rule_from_dict,
)

__all__ = [
    "DEFAULT_DATAFEED_FILE",
    "DEFAULT_JOB_FILE",
    "DEFAULT_RULE_FILE",
    "EA_DATAFEED_FILE",
    "EA_JOB_FILE",
    "EA_RULE_FILE",
    "AlertSuppression",
    "DatafeedConfig",
    "DetectorConfig",
    "ExceptionListRef",
    "JobConfig",
    "RuleConfig",
    "datafeed_from_dict",
    "default_frequency",
    "default_query_delay",
    "job_from_dict",
    "load_datafeed",
    "load_job",
    "load_rule",
    "packaged_path",
    "parse_byte_size",
    "rule_from_dict",
]
