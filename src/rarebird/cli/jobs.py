"""``rarebird jobs list``: the packaged jobs, what their datafeeds select, and their rules."""

from __future__ import annotations

from rarebird.cli._common import handle_errors, main
from rarebird.cli._output import Column, Rows, echo, emit, format_option


@main.group()
def jobs() -> None:
    """The packaged anomaly jobs (Elastic's Linux discovery family)."""


@jobs.command("list")
@format_option()
@handle_errors
def jobs_list(fmt: str) -> None:
    """Show each packaged job: id, description, the tools its datafeed selects, its rule."""
    from rarebird.definitions.family import FAMILIES, PACKAGED_JOBS, datafeed_tools, load_packaged

    rows = []
    docs = []
    for pj in PACKAGED_JOBS:
        d = load_packaged(pj.job_id)
        assert d.rule is not None
        families = [name for name, ids in FAMILIES.items() if pj.job_id in ids]
        tools = datafeed_tools(d.datafeed)
        rows.append([
            pj.job_id, d.job.display_name, ", ".join(tools), d.rule.rule_id, d.rule.name,
            d.rule.anomaly_threshold, ", ".join(families),
        ])  # fmt: skip
        docs.append({
            "job_id": pj.job_id, "description": d.job.description, "tools": list(tools),
            "rule_id": d.rule.rule_id, "rule_name": d.rule.name,
            "anomaly_threshold": d.rule.anomaly_threshold, "families": families,
        })  # fmt: skip
    columns = [
        Column("job_id", max_width=44), Column("description", ratio=2), Column("tools", ratio=2),
        Column("rule_id", drop=2), Column("rule", ratio=1, drop=1),
        Column("threshold", "number"), Column("families", drop=3),
    ]  # fmt: skip
    emit(Rows.of(columns, rows, empty="(no packaged jobs)", docs=docs), fmt)
    if fmt == "table":
        echo("(run a family in one pass: --jobs linux-discovery)", err=True)
