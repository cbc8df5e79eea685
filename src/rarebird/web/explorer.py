"""The Anomaly Explorer, a user's timeline, and the job's health."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.responses import Response

from rarebird.run.state import EngineState
from rarebird.store import views
from rarebird.timeutil import from_epoch_ms, to_epoch_ms
from rarebird.web.context import BadRequest, Ctx, NotFound
from rarebird.web.pages import parse_when
from rarebird.web.svg import pick_cell, swimlane, timeline

#: the Explorer's default range: this much before the job's last bucket
DEFAULT_RANGE_MS = 7 * views.DAY_MS
VIEW_BY = ("user.name", "host.name")
LANES = 10
ROWS = 25


def _job(ctx: Ctx, jobs: list[str]) -> str:
    job = ctx.param("job") or (jobs[0] if jobs else "")
    if jobs and job not in jobs:
        raise NotFound(f"no job {job!r} in this store")
    return job


def _ms(text: str, name: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{name}: expected epoch milliseconds") from None


def _page(text: str) -> int:
    try:
        return max(1, int(text or "1"))
    except ValueError:
        raise BadRequest("page: expected a number") from None


def anomalies_page(ctx: Ctx) -> Response:
    view = ctx.param("view", "user.name")
    if view not in VIEW_BY:
        raise BadRequest(f"view: one of {', '.join(VIEW_BY)}")
    now = ctx.ui.clock.now()
    with ctx.ui.store() as store:
        jobs = views.job_ids(store)
        job = _job(ctx, jobs)
        bounds = views.result_bounds(store, job) if job else None
        if bounds is None:
            return ctx.render("anomalies.html", page_title="Anomaly Explorer", empty=True,
                              jobs=jobs, job=job)  # fmt: skip
        bucket_ms = views.bucket_span_ms(store, job)
        last_end = bounds[1] + bucket_ms
        until = parse_when(ctx.param("to"), now)
        since = parse_when(ctx.param("from"), now)
        end = to_epoch_ms(until) if until else last_end
        start = to_epoch_ms(since) if since else max(bounds[0], end - DEFAULT_RANGE_MS)
        if end <= start:
            raise BadRequest("the time range is empty: 'from' must be before 'to'")
        cell = pick_cell(end - start, bucket_ms)
        start = start // cell * cell
        ncells = -(-(end - start) // cell)
        lane_page = _page(ctx.param("lanes"))
        overall = views.overall_lane(store, job, start, end, cell)
        lane_total, lanes = views.lanes_by(
            store, job, view, start, end, cell, limit=LANES, offset=(lane_page - 1) * LANES
        )
        sel_from = _ms(ctx.param("sel_from"), "sel_from") or start
        sel_to = _ms(ctx.param("sel_to"), "sel_to") or end
        user = ctx.param("user") or None
        host = ctx.param("host") or None
        page = _page(ctx.param("page"))
        total, rows = views.anomalies_page(
            store, job, sel_from, sel_to, user=user, host=host,
            offset=(page - 1) * ROWS, limit=ROWS,
        )  # fmt: skip
    base = {"job": job, "view": view, "from": ctx.param("from"), "to": ctx.param("to")}

    def link(**changes: str | int | None) -> str:
        merged = {**base, **{k: v for k, v in changes.items()}}
        return "/anomalies?" + urlencode({k: v for k, v in merged.items() if v})

    def cell_link(lane: views.Lane, i: int) -> str:
        pick = {} if lane.label == "Overall" else {view.split(".")[0]: lane.label}
        lo = start + i * cell
        return link(sel_from=lo, sel_to=lo + cell, **pick) + "#anomalies"

    def lane_link(lane: views.Lane) -> str:
        return (
            f"/users/{quote(lane.label, safe='')}" if view == "user.name" else link(host=lane.label)
        )

    selection = {"user": user, "host": host, "sel_from": ctx.param("sel_from"),
                 "sel_to": ctx.param("sel_to")}  # fmt: skip
    return ctx.render(
        "anomalies.html", page_title="Anomaly Explorer", empty=False, jobs=jobs, job=job,
        view=view, views=VIEW_BY, range_from=from_epoch_ms(start), range_to=from_epoch_ms(end),
        cell_minutes=cell // 60_000,
        overall=swimlane([overall], start, cell, ncells, cell_link),
        lanes=swimlane(lanes, start, cell, ncells, cell_link, lane_link),
        lane_total=lane_total, lane_page=lane_page, lane_pages=max(1, -(-lane_total // LANES)),
        rows=rows, total=total, page=page, pages=max(1, -(-total // ROWS)), link=link,
        selection=selection, sel_from=from_epoch_ms(sel_from), sel_to=from_epoch_ms(sel_to),
        filters={"from": ctx.param("from"), "to": ctx.param("to")},
    )  # fmt: skip


def user_page(ctx: Ctx) -> Response:
    user = str(ctx.request.path_params["user"])
    days_text = ctx.param("days", "30")
    try:
        days = min(max(1, int(days_text)), 366)
    except ValueError:
        raise BadRequest("days: expected a number") from None
    with ctx.ui.store() as store:
        jobs = views.job_ids(store)
        job = _job(ctx, jobs)
        seen = views.user_bounds(store, job, user)
        bounds = views.result_bounds(store, job)
        alerts = views.alerts_page(store, views.AlertQuery(user=user, limit=50))
        if seen is None and bounds is None and not alerts.total:
            raise NotFound(f"nothing about user {user!r} in this store")
        end_ms = (seen[1] if seen else bounds[1] if bounds else 0) // views.DAY_MS * views.DAY_MS
        end_ms += views.DAY_MS
        start_ms = end_ms - days * views.DAY_MS
        counts = views.user_days(store, job, user, start_ms, end_ms)
        # the anomalies of the days shown (each explained: a year of them reads a year of events)
        total, records = views.anomalies_page(store, job, start_ms, end_ms, user=user, limit=ROWS)
    anomaly_days = {
        (to_epoch_ms(r.time) - start_ms) // views.DAY_MS
        for r in records
        if start_ms <= to_epoch_ms(r.time) < end_ms
    }
    return ctx.render(
        "user.html", page_title=f"User {user}", user=user, job=job, days=days,
        first_seen=from_epoch_ms(seen[0]) if seen else None,
        last_seen=from_epoch_ms(seen[1]) if seen else None,
        total_events=sum(c.user_events for c in counts),
        chart=timeline(counts, user, {int(d) for d in anomaly_days}),
        records=records, record_total=total, alerts=alerts.rows, alert_total=alerts.total,
    )  # fmt: skip


def jobs_page(ctx: Ctx) -> Response:
    with ctx.ui.store() as store:
        jobs = views.job_health(store)
        extra = {
            j.job_id: (views.late_and_gaps(store, j.job_id), views.last_snapshots(store, j.job_id),
                       _engine_state(views.service_state(store, j.job_id)))
            for j in jobs
        }  # fmt: skip
        run_total, runs = views.rule_runs(store, limit=20)
        _, warned = views.rule_runs(store, limit=20, with_warnings=True)
    return ctx.render(
        "jobs.html", page_title="Jobs", jobs=jobs, extra=extra, run_total=run_total,
        runs=runs, warned=warned,
    )  # fmt: skip


def _engine_state(text: str | None) -> EngineState | None:
    return None if text is None else EngineState.from_json(text)
