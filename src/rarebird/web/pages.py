"""The Alerts pages: the alerts table with its workflow, and one alert (Kibana's flyout)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.responses import RedirectResponse, Response

from rarebird.alerts import CLOSE_REASONS, WORKFLOW_STATUSES, Alert, AlertLookupError
from rarebird.evidence import events_behind, propose_from_alert
from rarebird.explain import RecordFacts, explain
from rarebird.rules.exception_items import DEFAULT_PROPOSAL_FIELDS, propose_item
from rarebird.store import views
from rarebird.store.alerts import get_alert, set_workflow_status
from rarebird.store.exceptions import list_ids_for_rule, load_items, save_item
from rarebird.store.runs import counted_runs
from rarebird.timeutil import parse_date_math_offset, parse_duration, parse_timestamp
from rarebird.web.context import BadRequest, Ctx, NotFound
from rarebird.web.security import safe_next

PAGE_SIZE = 50
#: how far around an anomaly the page shows the commands on the same host(s)
AROUND = timedelta(hours=1)
#: the fields "add an exception from this alert" can match, as Kibana's flyout offers them
EXCEPTION_FIELDS = ("user.name", "host.name", "process.name")

_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def parse_when(text: str, now: datetime) -> datetime | None:
    """A time filter: empty, a duration back from now (``24h``, ``now-7d``) or a timestamp."""
    if not text:
        return None
    try:
        if text.startswith("now"):
            return now + parse_date_math_offset(text)
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        return parse_timestamp(text)
    except ValueError:
        raise BadRequest(f"{text!r}: give a duration back from now (24h, 7d) or a time") from None


def _int(text: str, default: int, name: str) -> int:
    if not text:
        return default
    try:
        return max(1, int(text))
    except ValueError:
        raise BadRequest(f"{name}: expected a number, got {text!r}") from None


def alerts_page(ctx: Ctx) -> Response:
    status = ctx.param("status", "open")
    if status not in (*WORKFLOW_STATUSES, "all"):
        raise BadRequest(f"status: one of open, acknowledged, closed, all (got {status!r})")
    sort = ctx.param("sort", "time")
    if sort not in views.ALERT_SORTS:
        raise BadRequest(f"sort: one of {', '.join(views.ALERT_SORTS)}")
    order = ctx.param("order", "desc")
    page = _int(ctx.param("page"), 1, "page")
    now = ctx.ui.clock.now()
    since, until = ctx.param("from"), ctx.param("to")
    query = views.AlertQuery(
        statuses=() if status == "all" else (status,),
        user=ctx.param("user") or None,
        host=ctx.param("host") or None,
        since=parse_when(since, now),
        until=parse_when(until, now),
        sort=sort,
        descending=order != "asc",
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    with ctx.ui.store() as store:
        result = views.alerts_page(store, query)
        counts = views.alert_status_counts(store)
    filters = {"status": status, "user": query.user or "", "host": query.host or "",
               "from": since, "to": until, "sort": sort, "order": order}  # fmt: skip
    pages = max(1, -(-result.total // PAGE_SIZE))

    def link(**changes: str | int) -> str:
        merged = {**filters, **{k: str(v) for k, v in changes.items()}}
        return "/alerts?" + urlencode({k: v for k, v in merged.items() if v})

    return ctx.render(
        "alerts.html", page_title="Alerts", alerts=result.rows, total=result.total,
        counts=counts, filters=filters, page=page, pages=pages, link=link,
        statuses=WORKFLOW_STATUSES, here=link(page=page),
    )  # fmt: skip


def _set_status(ctx: Ctx, ids: list[str]) -> None:
    status = ctx.field("status")
    if status not in WORKFLOW_STATUSES:
        raise BadRequest(f"status: one of {', '.join(WORKFLOW_STATUSES)} (got {status!r})")
    if not ids:
        raise BadRequest("no alert chosen")
    reason = ctx.field("reason") or None
    with ctx.ui.store() as store:
        try:
            set_workflow_status(store, ids, status, now=ctx.ui.clock.now(), reason=reason)
        except AlertLookupError as exc:
            raise NotFound(str(exc)) from None


def bulk_status(ctx: Ctx) -> Response:
    """Acknowledge / close / reopen the alerts ticked on the alerts page."""
    _set_status(ctx, ctx.fields("ids"))
    return RedirectResponse(safe_next(ctx.field("next")), status_code=303)


def alert_status(ctx: Ctx) -> Response:
    """``POST /alerts/<id>/status`` with ``status`` (and, closing, ``reason``)."""
    alert_id = ctx.request.path_params["alert_id"]
    _set_status(ctx, [alert_id])
    return RedirectResponse(safe_next(ctx.field("next"), f"/alerts/{alert_id}"), status_code=303)


def _alert(ctx: Ctx) -> tuple[str, Alert]:
    alert_id = str(ctx.request.path_params["alert_id"])
    with ctx.ui.store() as store:
        try:
            return alert_id, get_alert(store, alert_id)
        except AlertLookupError as exc:
            raise NotFound(str(exc)) from None


@dataclass(frozen=True, slots=True)
class OtherUser:
    """Another user's commands on the same host(s) around the anomaly."""

    user: str
    count: int
    commands: str
    first: str
    last: str


def others_by_user(events: tuple[views.EventRow, ...], skip: list[str]) -> tuple[OtherUser, ...]:
    groups: dict[str, list[views.EventRow]] = {}
    for e in events:
        if e.user not in skip:
            groups.setdefault(e.user or "-", []).append(e)
    out = []
    for user, rows in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        commands = sorted({e.command for e in rows})
        shown = "; ".join(commands[:4]) + (" ..." if len(commands) > 4 else "")
        out.append(OtherUser(user, len(rows), shown, rows[0].time, rows[-1].time))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert's fields as the page shows them."""

    id: str
    status: str
    reason: str
    rule_name: str
    rule_id: str
    rule_severity: str
    risk_score: str
    score: float
    initial_score: float
    probability: float
    anomaly_time: str
    alerted_at: str
    users: tuple[str, ...]
    hosts: tuple[str, ...]
    processes: tuple[str, ...]
    args: tuple[str, ...]
    workflow_user: str
    workflow_reason: str
    workflow_updated: str
    duplicates: int

    @classmethod
    def of(cls, a: Alert) -> AlertView:
        d = a.doc
        return cls(
            a.id, a.workflow_status, str(d.get("kibana.alert.reason", "")),
            str(d.get("kibana.alert.rule.name", "")), str(d.get("kibana.alert.rule.rule_id", "")),
            a.severity, str(d.get("kibana.alert.risk_score", "")), a.record_score,
            float(d.get("initial_record_score", a.record_score)),
            float(d.get("probability", 1.0)), str(d.get("kibana.alert.original_time", "")),
            str(d.get("@timestamp", "")), tuple(a.values("user.name")),
            tuple(a.values("host.name")), tuple(a.values("process.name")),
            tuple(a.values("process.args")), str(d.get("kibana.alert.workflow_user", "")),
            str(d.get("kibana.alert.workflow_reason", "")),
            str(d.get("kibana.alert.workflow_status_updated_at", "")), a.suppressed_count,
        )  # fmt: skip


def alert_page(ctx: Ctx) -> Response:
    _, alert = _alert(ctx)
    now = ctx.ui.clock.now()
    job_id = str(alert.doc.get("job_id", ""))
    span = timedelta(seconds=int(alert.doc.get("bucket_span", 900)))
    with ctx.ui.store() as store:
        record = views.stored_record(store, alert.record_id)
        # the quiet profile's reason travels on the alert, not on the job's record
        profile = {k: v for k, v in alert.doc.items() if k.startswith("rarebird.profile.")}
        explanation = (
            views.explain_record(
                store, {**record.doc, **profile}, record.details, views.FleetCache()
            )  # fmt: skip
            if record is not None
            else explain(RecordFacts.from_docs(alert.doc, None))
            if profile
            else None
        )
        behind = tuple(views.event_row(e) for e in events_behind(store, alert))
        around = views.events_between(
            store, job_id, alert.original_time - AROUND, alert.original_time + span + AROUND,
            hosts=alert.values("host.name"), limit=300,
        )  # fmt: skip
        counted = len(counted_runs(store, job_id))
        added = [
            i for i in load_items(store, list_ids_for_rule(store, ctx.ui.rule))
            if i.description == f"Proposed from alert {alert.id}"
        ]  # fmt: skip
    anomaly = views.anomaly_row(alert.record_id, record.doc, "") if record else None
    proposal = propose_item(alert.doc, list_id="-", now=now, fields=DEFAULT_PROPOSAL_FIELDS)
    note = str(alert.doc.get("kibana.alert.rule.note") or "")
    user = alert.values("user.name")
    return ctx.render(
        "alert.html", page_title=f"Alert {alert.id[:12]}", a=AlertView.of(alert),
        anomaly=anomaly, explanation=explanation, behind=behind,
        others=others_by_user(around, user), statuses=WORKFLOW_STATUSES,
        close_reasons=CLOSE_REASONS, guide=Markup(_MARKDOWN.render(note)) if note else None,
        proposal=proposal.describe(), exception_fields=EXCEPTION_FIELDS,
        default_fields=DEFAULT_PROPOSAL_FIELDS, added=added, counted=counted,
    )  # fmt: skip


def alert_exception(ctx: Ctx) -> Response:
    """Add the exception the CLI's ``exceptions add --from-alert`` would add (and, if asked,
    close the alert as Kibana's "close this alert" box does)."""
    _, alert = _alert(ctx)
    fields = [f for f in ctx.fields("field") if f in EXCEPTION_FIELDS] or list(DEFAULT_PROPOSAL_FIELDS)  # fmt: skip
    now = ctx.ui.clock.now()
    with ctx.ui.store() as store:
        try:
            item = propose_from_alert(
                store, alert, ctx.ui.rule, now=now, fields=fields,
                with_parents=ctx.field("with_parents") == "on",
            )  # fmt: skip
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        save_item(store, item)
        if ctx.field("close") == "on":
            set_workflow_status(store, [alert.id], "closed", now=now, reason="false_positive")
    return RedirectResponse(f"/alerts/{alert.id}#exceptions", status_code=303)
