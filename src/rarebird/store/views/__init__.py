"""What the triage pages and the CLI's explanations read: every SQL statement of ``web/`` and
of :mod:`rarebird.explain`'s inputs, as typed functions over the :class:`Store`.

Each query is bounded (a page, a time range, an index range) so that a page costs the same on
a store of a hundred alerts or a million anomaly records (``bench/ui_pages.py``).
"""

from __future__ import annotations

from rarebird.store.views.alerts import (
    ALERT_SORTS,
    AlertPage,
    AlertQuery,
    AlertRow,
    alert_status_counts,
    alerts_page,
)
from rarebird.store.views.anomalies import (
    AnomalyRow,
    Lane,
    anomalies_page,
    anomaly_row,
    bucket_span_ms,
    job_ids,
    lanes_by,
    overall_lane,
    result_bounds,
)
from rarebird.store.views.health import (
    DayCount,
    JobHealth,
    RunRow,
    job_health,
    last_snapshots,
    late_and_gaps,
    rule_runs,
    service_state,
    user_bounds,
    user_days,
)
from rarebird.store.views.records import (
    DAY_MS,
    FLEET_WINDOW,
    EventRow,
    FleetCache,
    StoredRecord,
    event_row,
    events_between,
    explain_record,
    fleet_activity,
    fleet_window,
    score_rank,
    stored_record,
    user_activity,
)

__all__ = [
    "ALERT_SORTS",
    "DAY_MS",
    "FLEET_WINDOW",
    "AlertPage",
    "AlertQuery",
    "AlertRow",
    "AnomalyRow",
    "DayCount",
    "EventRow",
    "FleetCache",
    "JobHealth",
    "Lane",
    "RunRow",
    "StoredRecord",
    "alert_status_counts",
    "alerts_page",
    "anomalies_page",
    "anomaly_row",
    "bucket_span_ms",
    "event_row",
    "events_between",
    "explain_record",
    "fleet_activity",
    "fleet_window",
    "job_health",
    "job_ids",
    "lanes_by",
    "last_snapshots",
    "late_and_gaps",
    "overall_lane",
    "result_bounds",
    "rule_runs",
    "score_rank",
    "service_state",
    "stored_record",
    "user_activity",
    "user_bounds",
    "user_days",
]
