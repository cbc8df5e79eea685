"""``rarebird evaluate``: the backtest table on a small labelled fleet (a real subprocess), the
report files, bad label rows named by file and line, HTML escaping, the New Terms baseline."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rarebird.errors import InputError
from rarebird.run.evaluate import (
    DAY_MS,
    ClassFigures,
    EvalAlert,
    Evaluation,
    Figures,
    new_terms_alerts,
    read_labels,
)
from rarebird.run.report import html_report, json_doc, markdown, sweep_svg

HEADER = "@timestamp,host.name,user.name,process.name,label\n"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    d = tmp_path_factory.mktemp("evaluate")
    done = _run("generate", "--profile", "labelled", "--hosts", "8", "--days", "24", "--file",
                str(d / "fleet.ndjson"), "--labels", str(d / "labels.csv"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = _run("evaluate", str(d / "fleet.ndjson"), "--labels", str(d / "labels.csv"),
                "--profile", "quiet", "--identity", "login", "--report", str(d / "r.html"),
                "--report", str(d / "r.md"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return d, done.stdout


def _row(out: str, start: str) -> list[str]:
    for line in out.splitlines():
        if line.startswith(start):
            return re.split(r"\s{2,}", line[len(start) :].strip())
    raise AssertionError(f"no row {start!r} in\n{out}")


def test_evaluate_scores_default_quiet_and_new_terms(evaluated: tuple[Path, str]) -> None:
    _, out = evaluated
    #                                      alerts attack benign /day precision classes
    assert _row(out, "ML rule (Elastic's, default)") == ["18", "4", "14", "1.80", "0.22", "3/4"]
    assert _row(out, "ML rule, --profile quiet") == ["5", "5", "0", "0.50", "1.00", "4/4"]
    assert _row(out, "New Terms on user.name (14-day history)") == ["3", "3", "0", "0.30", "1.00", "3/4"]  # fmt: skip
    # per class: events, caught, missed, alerts, alerts/day, time to alert
    assert _row(out, "ml         attack_host_first") == ["2", "0", "2", "0", "0.00", "-"]
    assert _row(out, "ml+quiet   attack_host_first") == ["2", "2", "0", "1", "0.10", "8 min"]
    assert _row(out, "ml+quiet   attack_sudo") == ["3", "3", "0", "1", "0.10", "20 min"]
    assert _row(out, "ml         attack_sudo") == ["3", "3", "0", "1", "0.10", "20 min"]
    assert _row(out, "ml         admin_troubleshooting") == [
        "20",
        "20",
        "0",
        "13",
        "1.30",
        "19 min",
    ]
    assert _row(out, "ml+quiet   admin_troubleshooting") == ["20", "0", "20", "0", "0.00", "-"]
    assert _row(out, "new_terms  attack_sudo") == ["3", "3", "0", "1", "0.10", "5 min"]
    # the sweep: threshold, alerts, benign, precision, classes, attack events
    assert _row(out, "ml+quiet         25") == ["5", "0", "1.00", "4/4", "12"]
    assert _row(out, "ml               10") == ["22", "18", "0.18", "3/4", "10"]
    assert _row(out, "ml               60") == ["3", "0", "1.00", "3/4", "8"]


def test_the_quiet_profile_is_never_later_than_the_default(evaluated: tuple[Path, str]) -> None:
    _, out = evaluated
    for label in ("attack_compromised_1", "attack_compromised_2", "attack_sudo"):
        assert _row(out, f"ml+quiet   {label}")[-1] == _row(out, f"ml         {label}")[-1]


def test_reports_are_written_as_html_with_an_svg_and_as_markdown(evaluated: tuple[Path, str]) -> None:  # fmt: skip
    d, _ = evaluated
    page = (d / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == 1
    assert "<td>ML rule, --profile quiet</td><td>5</td><td>5</td><td>0</td>" in page
    md = (d / "r.md").read_text()
    assert "| ML rule, \\-\\-profile quiet | 5 | 5 | 0 | 0.50 | 1.00 | 4/4 |" not in md
    assert "| ML rule, --profile quiet | 5 | 5 | 0 | 0.50 | 1.00 | 4/4 |" in md
    assert "## Threshold sweep" in md


def test_a_bad_label_row_is_named_by_file_and_line(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text(HEADER + "2026-02-02T10:00:00.000Z,web-01,alice,ss,admin\n"
                      "yesterday,web-01,alice,ss,admin\n")  # fmt: skip
    (tmp_path / "e.ndjson").write_text("")
    done = _run("evaluate", str(tmp_path / "e.ndjson"), "--labels", str(labels))
    assert done.returncode == 2
    assert f"{labels}:3: @timestamp 'yesterday' is not an ISO-8601 time" in done.stderr
    labels.write_text(HEADER + "2026-02-02T10:00:00Z,web-01,alice,ss\n")
    with pytest.raises(InputError, match=r"labels.csv:2: 4 columns, expected 5"):
        read_labels(str(labels))
    labels.write_text("time,host,user\n")
    with pytest.raises(InputError, match=r"labels.csv:1: the header has no @timestamp, host.name"):
        read_labels(str(labels))
    # columns in another order, and more of them, are read by name
    labels.write_text("label,process.name,note,user.name,host.name,@timestamp\n"
                      "attack_x,ss,hi,erin,web-01,2026-02-02T10:00:00Z\n")  # fmt: skip
    (got,) = read_labels(str(labels))
    assert (got.label, got.process, got.user, got.host, got.line) == ("attack_x", "ss", "erin", "web-01", 2)  # fmt: skip
    labels.write_text(HEADER + "2026-02-02T10:00:00Z,web-01,,ss,admin\n")
    with pytest.raises(InputError, match=r"labels.csv:2: every column needs a value"):
        read_labels(str(labels))


def _evaluation(user: str) -> Evaluation:
    alert = EvalAlert(user, 0, 900_000, 80.0, "<b>host</b>", "first_occurrence")
    classes = (ClassFigures("attack_<i>x</i>", 2, 1, 1, 60.0),)
    f = Figures("ml", 25.0, 1, 1, 1.0, classes, ((alert, ("attack_<i>x</i>",)),))
    return Evaluation(("<in>.ndjson",), "l.csv", "user", 25.0, 0, DAY_MS, 0, (), (f,),
                      {"ml": (f, Figures("ml", 50.0, 0, 0, 0.0, classes, ()))})  # fmt: skip


def test_html_and_markdown_escape_what_came_from_events() -> None:
    ev = _evaluation("<script>alert(1)</script>")
    page = html_report(ev)
    assert "<script>" not in page
    assert "<b>" not in page
    assert "<i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = markdown(ev)
    assert "<script>" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert sweep_svg(ev).startswith('<svg xmlns="http://www.w3.org/2000/svg"')


def test_new_terms_alerts_a_user_unseen_for_14_days_once_its_history_is_full() -> None:
    day = DAY_MS
    runs = [
        (0, "monitor", "h"), (13 * day, "alice", "h"),  # history
        (13 * day, "monitor", "h"), (14 * day + 5, "alice", "h"),  # seen within 14 days
        (15 * day + 60_000, "erin", "h"), (15 * day + 120_000, "erin", "h"),  # new: one alert
        (30 * day, "alice", "h"),  # alice again after 16 days: new again
    ]  # fmt: skip
    alerts = new_terms_alerts(runs, 0)
    assert [(a.user, a.bucket_ms, a.alerted_ms) for a in alerts] == [
        ("erin", 15 * day + 60_000, 15 * day + 900_000),
        ("alice", 30 * day, 30 * day),
    ]


def test_the_json_document_has_the_tables_figures() -> None:
    doc = json.loads(json.dumps(json_doc(_evaluation("erin"))))
    (ml,) = doc["detectors"]
    assert (ml["alerts"], ml["attack_alerts"], ml["benign_alerts"], ml["precision"]) == (
        1,
        1,
        0,
        1.0,
    )
    assert ml["classes"] == [{"label": "attack_<i>x</i>", "events": 2, "caught": 1, "missed": 1,
                              "alerts": 1, "time_to_alert_s": 60.0}]  # fmt: skip
    assert ml["listing"][0]["user"] == "erin"
    assert [f["threshold"] for f in doc["sweep"]["ml"]] == [25.0, 50.0]
