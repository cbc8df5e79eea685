"""``rarebird evaluate``: a backtest of the job and rule (and the New Terms baseline) against
labelled events (:mod:`rarebird.run.evaluate`)."""

from __future__ import annotations

from typing import Any

import click

from rarebird.cli._common import handle_errors, main
from rarebird.cli._inputs import (
    check_profile_settings,
    definition_options,
    input_options,
    input_settings,
    profile_option,
)
from rarebird.cli._output import Column, Rows, echo, emit, format_option, write_json
from rarebird.cli._rules_common import load_rule, rule_option


@main.command()
@definition_options
@rule_option
@input_options
@profile_option
@click.option("--labels", "labels_path", required=True, metavar="LABELS.csv",
              help="Labels: @timestamp,host.name,user.name,process.name,label per labelled event; "
              "labels named attack* are positives.")  # fmt: skip
@click.option("--report", "reports", multiple=True, metavar="FILE.html|FILE.md",
              help="Also write the report (HTML with an SVG plot of the sweep, or Markdown); "
              "repeatable.")  # fmt: skip
@click.option("--warm-up", "warm_up_days", type=click.IntRange(0, 365), default=14,
              show_default=True, help="Days at the start of the input left out of the figures "
              "(learning time for every detector).")  # fmt: skip
@format_option(choices=("table", "json"))
@click.argument("inputs", nargs=-1, required=True)
@handle_errors
def evaluate(
    job_path: tuple[str, ...],
    families: tuple[str, ...],
    datafeed_path: str | None,
    rule_path: str | None,
    input_format: str,
    passwd_file: str | None,
    group_file: str | None,
    host_name: str | None,
    identity: str,
    workers: int,
    profile_name: str,
    profile_settings: Any,
    labels_path: str,
    reports: tuple[str, ...],
    warm_up_days: int,
    fmt: str,
    inputs: tuple[str, ...],
) -> None:
    """Replay INPUTS through the job and rule (as `detect` does, in a throw-away store) and
    score the alerts against LABELS: per label class events caught and missed, alerts, time to
    the first alert, alerts per day and precision, for the ML rule (and with `--profile quiet`
    the quiet profile beside it) and a New Terms rule on user.name with 14 days of history; and
    the same swept over the anomaly threshold. See docs/RULE.md for the definitions."""
    from rarebird.definitions.family import select_jobs
    from rarebird.run.evaluate import evaluate as run_evaluate
    from rarebird.run.evaluate import window_text
    from rarebird.run.report import (
        CLASS_HEADER,
        SUMMARY_HEADER,
        SWEEP_HEADER,
        class_rows,
        json_doc,
        summary_rows,
        sweep_rows,
        write_report,
    )

    for path in reports:
        if not path.lower().endswith((".html", ".htm", ".md")):
            raise click.BadParameter(f"{path}: write .html or .md", param_hint="--report")
    defs = select_jobs(job_path, families, datafeed_path=datafeed_path, with_rule=False)
    if len(defs) > 1:
        raise click.UsageError("evaluate takes one job")
    job, datafeed = defs[0].job, defs[0].datafeed
    packaged_rule = rule_path is None and job_path and not job_path[0].endswith(".json")
    rule = (select_jobs(job_path)[0].rule if packaged_rule else None) or load_rule(rule_path)
    settings = input_settings(input_format, passwd_file, group_file, host_name, identity, workers)
    check_profile_settings(profile_name, profile_settings)
    profiles = ("default",) if profile_name == "default" else ("default", profile_name)
    ev = run_evaluate(inputs, labels_path, job, datafeed, rule, settings, profiles=profiles,
                      profile_settings=profile_settings, warm_up_days=warm_up_days)  # fmt: skip
    numbers = {"events", "caught", "missed", "alerts", "attack alerts", "benign alerts", "benign",
               "alerts/day", "precision", "threshold", "attack events caught"}  # fmt: skip

    def cols(header: tuple[str, ...]) -> list[Column]:
        return [Column(h, "number" if h in numbers else "text") for h in header]

    if fmt == "json":
        write_json(json_doc(ev))
    else:
        echo(f"scored {window_text(ev)} UTC, identity {ev.identity}, rule threshold {ev.threshold:g}",
             err=True)  # fmt: skip
        emit(Rows.of(cols(SUMMARY_HEADER), summary_rows(ev)), "table")
        emit(Rows.of(cols(CLASS_HEADER), class_rows(ev)), "table")
        emit(Rows.of(cols(SWEEP_HEADER), sweep_rows(ev)), "table")
    if ev.unmatched_labels:
        first = ev.unmatched_labels[0]
        echo(f"rarebird: {len(ev.unmatched_labels)} labelled row(s) matched no event the datafeed "
             f"selects (first: {labels_path}:{first.line})", err=True)  # fmt: skip
    for path in reports:
        write_report(ev, path)
        echo(f"rarebird: report written to {path}", err=True)
