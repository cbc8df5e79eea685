"""The option blocks every command that reads events shares (``job run``, ``detect``,
``evaluate``, ``export``): the job and datafeed definitions, how inputs are read (format,
identity, accounts, host name, ``--workers``), the engine and the scoring profile."""

from __future__ import annotations

from typing import Any

import click

from rarebird.datafeed.feed import TimeLimits
from rarebird.run.replay import AUTO_WORKERS, ENGINES, InputOptions
from rarebird.sources import IDENTITIES, format_names
from rarebird.timeutil import parse_duration


def definition_options(func: Any) -> Any:
    func = click.option(
        "--datafeed",
        "datafeed_path",
        metavar="DATAFEED.json",
        help="Elastic datafeed JSON (default: the packaged v3_linux_network_connection_discovery datafeed).",
    )(func)
    func = click.option(
        "--jobs",
        "families",
        multiple=True,
        metavar="FAMILY",
        help="Every packaged job of a family (linux-discovery), fed by one pass over the input.",
    )(func)
    return click.option(
        "--job",
        "job_path",
        multiple=True,
        metavar="ID|JOB.json",
        help="A packaged job id (rarebird jobs list) or an Elastic anomaly job JSON; repeatable "
        "(default: the packaged v3_linux_network_connection_discovery job).",
    )(func)


def parse_workers(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """``--workers``: ``auto`` (:data:`AUTO_WORKERS`) or a number of processes, 1 or more."""
    text = str(value).strip().lower()
    if text == "auto":
        return AUTO_WORKERS
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise click.BadParameter(f"{value!r} is not auto or a number of processes (1 or more)")


def input_options(func: Any) -> Any:
    func = click.option(
        "--workers",
        metavar="auto|N",
        default="auto",
        callback=parse_workers,
        show_default=True,
        help="Processes reading one large file (raw auditd, ECS NDJSON; DuckDB threads for "
        "Parquet): auto shares the usable CPUs (affinity mask and container CPU quota) among the "
        "inputs, up to 8 a file; files under "
        "64 MB are read by one process.",
    )(func)
    func = click.option(
        "--identity",
        type=click.Choice(IDENTITIES),
        default="user",
        show_default=True,
        help="Model user.name as Elastic does, or the login user behind sudo (user.audit.*).",
    )(func)
    func = click.option("--host-name", metavar="NAME", help="host.name for inputs that lack one.")(
        func
    )
    func = click.option(
        "--group", "group_file", metavar="FILE", help="group(5) file for numeric gids."
    )(func)
    func = click.option(
        "--passwd", "passwd_file", metavar="FILE", help="passwd(5) file for numeric uids."
    )(func)
    return click.option(
        "--input-format",
        type=click.Choice(("auto", *format_names())),
        default="auto",
        show_default=True,
        metavar="FORMAT",
        help=f"auto (sniffed from the first lines), {', '.join(format_names())}.",
    )(func)


def engine_options(func: Any) -> Any:
    """``--engine`` and ``--spark-master`` (``job run`` and ``detect``)."""
    func = click.option(
        "--spark-master",
        metavar="URL",
        help="The Spark master with --engine spark (default: local[2]; spark://HOST:7077 ...).",
    )(func)
    return click.option(
        "--engine",
        "scan_engine",
        type=click.Choice(ENGINES),
        default="local",
        show_default=True,
        help="What scans Parquet inputs: DuckDB in this process, or Apache Spark (needs "
        "rarebird[spark] and Java 17+); the job, rule and results are the same.",
    )(func)


def input_settings(
    input_format: str,
    passwd_file: str | None,
    group_file: str | None,
    host_name: str | None,
    identity: str,
    workers: int = 1,
    engine: str = "local",
    spark_master: str | None = None,
) -> InputOptions:
    """The input options every command that reads events shares (``input_options``)."""
    if spark_master and engine != "spark":
        raise click.UsageError("--spark-master goes with --engine spark")
    return InputOptions(
        format=input_format,
        identity=identity,
        passwd=passwd_file,
        group=group_file,
        host_name=host_name,
        workers=workers,
        engine=engine,
        spark_master=spark_master,
    )


def _parse_profile_settings(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> Any:
    """``--profile-setting NAME=VALUE`` (repeated): the quiet profile's settings, or None."""
    if not value:
        return None
    from rarebird.definitions.profile_settings import settings_from

    given: dict[str, str] = {}
    for item in value:
        name, sep, number = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected NAME=VALUE, e.g. warm_up_days=7")
        given[name] = number
    try:
        return settings_from(given)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def profile_option(func: Any) -> Any:
    """``--profile default|quiet`` (the opt-in scoring profile, docs/RULE.md) and
    ``--profile-setting NAME=VALUE`` (its thresholds): ``profile_name``, ``profile_settings``."""
    func = click.option(
        "--profile-setting", "profile_settings", multiple=True, metavar="NAME=VALUE",
        callback=_parse_profile_settings,
        help="A threshold of the quiet profile (repeatable): warm_up_days, absence_days, "
        "burst_tools, burst_minutes, regular_days, regular_window_days, host_warm_up_days, "
        "new_host_tools (docs/RULE.md).",
    )(func)  # fmt: skip
    return click.option(
        "--profile", "profile_name", type=click.Choice(["default", "quiet"]), default="default",
        show_default=True,
        help="Scoring profile: default is Elastic's rule exactly; quiet keeps first "
        "occurrences, returns, bursts and service accounts, quiets regular users, and alerts "
        "a host's first discovery run (docs/RULE.md). quiet reads every event (no prefilter).",
    )(func)  # fmt: skip


def check_profile_settings(name: str, settings: Any) -> None:
    """Settings belong to the quiet profile: a usage error with the default one."""
    if settings is not None and name != "quiet":
        raise click.UsageError("--profile-setting goes with --profile quiet")


def make_profile(name: str, job_cfg: Any, settings: Any = None) -> Any:
    """The profile for one job (None for ``default``), with ``settings`` (None: the defaults)."""
    from rarebird.rules.profile import profile_for

    check_profile_settings(name, settings)
    return profile_for(name, job_cfg.job_id, job_cfg.bucket_span_s,
                       job_cfg.detectors[0].by_field_name, settings)  # fmt: skip


def _parse_max_future(ctx: click.Context, param: click.Parameter, value: str) -> TimeLimits:
    try:
        return TimeLimits(max_future=parse_duration(value.strip()))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def max_future_option(func: Any) -> Any:
    """``--max-future DURATION``: events stamped further ahead of now are quarantined (as
    ``serve``'s ``[service] max_future``); passed on as ``time_limits``."""
    return click.option(
        "--max-future", "time_limits", metavar="DURATION", default="1d", show_default=True,
        callback=_parse_max_future,
        help="Events stamped more than this after now (e.g. 6h, 2d) are quarantined: counted "
        "and shown, never modelled, so a host with a wrong clock cannot move the job's time.",
    )(func)  # fmt: skip


def missing_names_hint(by_field: str, missing: int) -> str | None:
    """What to do when matched events had no ``user.name``: most often a log that carries ids
    only (auditd's RAW format, no ``--passwd``)."""
    if not missing or by_field != "user.name":
        return None
    return (
        f"{missing:,} matched event(s) had no user.name and were not modelled: a log with ids "
        "only (auditd's log_format = RAW; ENRICHED names users) needs the passwd file of the "
        "host it came from: --passwd FILE (and --group FILE); uid 0 is named root regardless"
    )
