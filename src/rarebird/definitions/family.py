"""The packaged jobs, and families of them: which job file goes with which datafeed and rule.

Elastic ships the seed job as one of a family of Linux discovery jobs of the same shape
(``rare`` by ``user.name`` over process starts of a list of tools), each with its own datafeed
and detection rule. They are packaged as data (``data/README.md`` names the sources); this
module only says which files belong together. ``--job ID`` (repeatable) and ``--jobs FAMILY``
select them by id; a ``JOB.json`` path still selects a job file of one's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rarebird.definitions._common import packaged_path
from rarebird.definitions.datafeed import (
    DEFAULT_DATAFEED_FILE,
    DatafeedConfig,
    load_datafeed,
)
from rarebird.definitions.job import DEFAULT_JOB_FILE, JobConfig, load_job
from rarebird.definitions.rule import DEFAULT_RULE_FILE, RuleConfig, load_rule
from rarebird.errors import DefinitionError


@dataclass(frozen=True, slots=True)
class PackagedJob:
    """One packaged job: its id and the files of its job, datafeed and rule."""

    job_id: str
    job_file: str
    datafeed_file: str
    rule_file: str


def _linux(job_id: str, rule_stem: str) -> PackagedJob:
    return PackagedJob(
        job_id, f"{job_id}.json", f"datafeed_{job_id}.json", f"discovery_ml_linux_{rule_stem}.toml"
    )


#: every packaged job, the seed first
PACKAGED_JOBS: tuple[PackagedJob, ...] = (
    PackagedJob(
        "v3_linux_network_connection_discovery",
        DEFAULT_JOB_FILE,
        DEFAULT_DATAFEED_FILE,
        DEFAULT_RULE_FILE,
    ),  # fmt: skip
    _linux("v3_linux_network_configuration_discovery", "system_network_configuration_discovery"),
    _linux("v3_linux_system_information_discovery", "system_information_discovery"),
    _linux("v3_linux_system_process_discovery", "system_process_discovery"),
    _linux("v3_linux_system_user_discovery", "system_user_discovery"),
)

#: the seed job: what every command runs when no job is named
DEFAULT_JOB_ID = PACKAGED_JOBS[0].job_id

#: families of packaged jobs, by name (``--jobs NAME``)
FAMILIES: dict[str, tuple[str, ...]] = {
    "linux-discovery": tuple(p.job_id for p in PACKAGED_JOBS),
}


@dataclass(frozen=True)
class JobDefinitions:
    """A job with the datafeed that feeds it and (when there is one) the rule that reads it."""

    job: JobConfig
    datafeed: DatafeedConfig
    rule: RuleConfig | None


def packaged_job(job_id: str) -> PackagedJob:
    """The packaged job ``job_id``; a :class:`DefinitionError` naming the known ones if none."""
    for pj in PACKAGED_JOBS:
        if pj.job_id == job_id:
            return pj
    known = ", ".join(p.job_id for p in PACKAGED_JOBS)
    raise DefinitionError("--job", None, f"no packaged job {job_id!r} (packaged: {known})")


def family_jobs(name: str) -> tuple[str, ...]:
    """The job ids of family ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise DefinitionError(
            "--jobs", None, f"no job family {name!r} (known: {', '.join(sorted(FAMILIES))})"
        ) from None


def load_packaged(job_id: str, *, with_rule: bool = True) -> JobDefinitions:
    """Load a packaged job, its datafeed and (``with_rule``) its rule."""
    pj = packaged_job(job_id)
    return JobDefinitions(
        load_job(packaged_path(pj.job_file)),
        load_datafeed(packaged_path(pj.datafeed_file)),
        load_rule(packaged_path(pj.rule_file)) if with_rule else None,
    )


def select_jobs(
    jobs: Sequence[str] = (),
    families: Sequence[str] = (),
    *,
    datafeed_path: str | None = None,
    rule_path: str | None = None,
    job_id: str | None = None,
    with_rule: bool = True,
) -> list[JobDefinitions]:
    """The jobs a command runs, in order and without repeats.

    ``jobs``: packaged job ids, or a job file (a path ending in ``.json`` or an existing file);
    ``families``: family names. Nothing named: the seed job. ``datafeed_path`` / ``rule_path``
    / ``job_id`` replace the packaged datafeed / rule / id, and so need exactly one job.
    """
    names: list[str] = list(jobs)
    for family in families:
        names.extend(family_jobs(family))
    if not names:
        names = [DEFAULT_JOB_ID]
    unique = list(dict.fromkeys(names))
    if len(unique) > 1 and (datafeed_path or rule_path or job_id):
        what = "--datafeed" if datafeed_path else "--rule" if rule_path else "--job-id"
        raise DefinitionError(
            what, None, f"applies to one job, and {len(unique)} are selected "
            "(each packaged job brings its own datafeed and rule)",
        )  # fmt: skip
    out: list[JobDefinitions] = []
    for name in unique:
        if name.endswith(".json") or Path(name).is_file():
            # a job file of one's own: the seed's datafeed and rule unless others are given
            out.append(
                JobDefinitions(
                    load_job(name, job_id),
                    load_datafeed(datafeed_path),
                    load_rule(rule_path) if with_rule else None,
                )
            )
            continue
        pj = packaged_job(name)
        job = load_job(packaged_path(pj.job_file), job_id)
        datafeed = load_datafeed(datafeed_path or packaged_path(pj.datafeed_file))
        rule = load_rule(rule_path or packaged_path(pj.rule_file)) if with_rule else None
        out.append(JobDefinitions(job, datafeed, rule))
    ids = [d.job.job_id for d in out]
    twice = sorted({i for i in ids if ids.count(i) > 1})
    if twice:
        raise DefinitionError("--job", None, f"job id {twice[0]!r} is selected twice")
    return out


def datafeed_tools(datafeed: DatafeedConfig) -> tuple[str, ...]:
    """The ``process.name`` values a datafeed selects (every match has one of them), sorted;
    empty when its query does not limit ``process.name``."""
    cond = datafeed.query.prefilter.condition_for("process.name")
    return tuple(sorted(cond.values)) if cond is not None else ()
