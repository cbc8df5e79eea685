"""The triage pages over HTTP (Starlette's test client) on a store made by ``rarebird detect``:
login, sessions, CSRF, headers, the workflow, exceptions, and escaping of hostile strings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from rarebird.errors import RarebirdError
from rarebird.store import open_store
from rarebird.store.alerts import get_alert, list_alerts
from rarebird.store.exceptions import load_items
from rarebird.web.app import create_app, run_ui
from rarebird.web.security import CSP, safe_next
from tests.web_support import TOKEN, XSS_ARG, XSS_USER, build_store


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_store(tmp_path_factory.mktemp("web"))


@pytest.fixture
def copy(store_path: Path, tmp_path: Path) -> str:
    """Each test works on its own copy, so workflow changes do not leak between tests."""
    path = tmp_path / "copy.db"
    with open_store(str(store_path)) as src, open_store(str(path)) as dst:
        src.backup(dst)
    return str(path)


@pytest.fixture
def client(copy: str) -> Iterator[TestClient]:
    app = create_app(copy, token=TOKEN, allowed_hosts=None)
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as c:
        yield c


def login(c: TestClient) -> None:
    r = c.get(f"/login?token={TOKEN}&next=/alerts")
    assert r.status_code == 303
    assert r.headers["location"] == "/alerts"


def csrf(c: TestClient, path: str = "/alerts") -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', c.get(path).text)
    assert match
    return match.group(1)


def alert_ids(c: TestClient, query: str = "status=all") -> list[str]:
    return re.findall(r'href="/alerts/([0-9a-f]{64})"', c.get(f"/alerts?{query}").text)


def test_pages_need_a_login(client: TestClient) -> None:
    r = client.get("/alerts?status=open")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=" + quote("/alerts?status=open", safe="")
    assert client.get("/login?token=wrong").status_code == 403
    assert client.post("/alerts/status", data={"status": "closed"}).status_code == 403


def test_login_sets_an_httponly_samesite_cookie(client: TestClient) -> None:
    r = client.get(f"/login?token={TOKEN}&next=//evil.example/")
    assert r.headers["location"] == "/alerts"  # no open redirect
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert client.get("/alerts").status_code == 200
    # the form login works as well, and logging out ends the session
    fresh = client.post("/login", data={"token": TOKEN, "next": "/jobs"})
    assert fresh.headers["location"] == "/jobs"
    client.post("/logout", data={"csrf": csrf(client)})
    assert client.get("/alerts").status_code == 303


def test_every_page_has_the_strict_headers(client: TestClient) -> None:
    login(client)
    for path in ("/alerts", "/anomalies", "/jobs", "/users/alice", "/login"):
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-security-policy"] == CSP
        assert "'unsafe-inline'" not in CSP
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["cache-control"] == "no-store"
        assert "<script>" not in r.text  # the only script is /static/app.js
        assert " style=" not in r.text


def test_a_state_change_needs_the_csrf_token(client: TestClient, copy: str) -> None:
    login(client)
    target = alert_ids(client)[0]
    no_token = client.post(f"/alerts/{target}/status", data={"status": "acknowledged"})
    assert no_token.status_code == 403
    wrong = client.post(f"/alerts/{target}/status", data={"status": "closed", "csrf": "0" * 64})
    assert wrong.status_code == 403
    foreign = client.post(f"/alerts/{target}/status", headers={"origin": "http://evil.example"},
                          data={"status": "closed", "csrf": csrf(client)})  # fmt: skip
    assert foreign.status_code == 403
    with open_store(copy) as store:
        assert get_alert(store, target).workflow_status == "open"


def test_workflow_one_alert_and_in_bulk(client: TestClient, copy: str) -> None:
    login(client)
    token = csrf(client)
    first, *rest = alert_ids(client)
    r = client.post(f"/alerts/{first}/status", data={"status": "acknowledged", "csrf": token})
    assert r.status_code == 303
    assert r.headers["location"] == f"/alerts/{first}"
    page = client.get(f"/alerts/{first}").text
    assert '<dd id="workflow-status" class="wf">acknowledged' in page
    assert client.post(f"/alerts/{first}/status", data={"status": "bogus", "csrf": token}).status_code == 400  # fmt: skip
    bulk = client.post("/alerts/status", data={"ids": rest[:2], "status": "closed", "csrf": token,
                                               "next": "/alerts?status=closed"})  # fmt: skip
    assert bulk.headers["location"] == "/alerts?status=closed"
    with open_store(copy) as store:
        statuses = {a.id: a.workflow_status for a in list_alerts(store)}
    assert statuses[first] == "acknowledged"
    assert [statuses[i] for i in rest[:2]] == ["closed", "closed"]
    assert sorted(alert_ids(client, "status=closed")) == sorted(rest[:2])
    assert first not in alert_ids(client, "status=open")


def test_filters_sort_and_relative_times(client: TestClient) -> None:
    login(client)
    assert len(alert_ids(client, "status=all&user=alice")) == 3
    assert len(alert_ids(client, "status=all&host=web-1")) == 2
    assert alert_ids(client, "status=all&from=1h") == []  # the data is from February 2026
    assert len(alert_ids(client, "status=all&from=3650d")) == 5
    assert len(alert_ids(client, "status=all&from=2026-02-17T00:00:00Z")) == 3
    by_score = client.get("/alerts?status=all&sort=score&order=desc").text
    scores = [float(s) for s in re.findall(r'class="sev sev-\w+" title="\w+">([\d.]+)', by_score)]
    assert scores == sorted(scores, reverse=True)
    assert client.get("/alerts?from=yesterday-ish").status_code == 400
    assert client.get("/alerts?sort=rowid").status_code == 400


def test_the_alert_page_explains_in_plain_words(client: TestClient) -> None:
    login(client)
    alice = alert_ids(client, "status=all&user=alice")[-1]  # her first anomaly
    page = client.get(f"/alerts/{alice}").text
    assert "First time alice ran these commands." in page
    # what drove it: the service accounts hold nearly all the activity
    assert "nagios, root and svc_backup account for 99 %" in page
    assert "rarer than typical" not in page
    assert "ceiling" not in page
    assert "<h2>Investigation guide</h2>" in page
    assert "<h3>Possible investigation steps</h3>" in page
    assert client.get("/alerts/" + "f" * 64).status_code == 404


def test_exception_from_an_alert_is_the_clis(client: TestClient, copy: str) -> None:
    login(client)
    bob = alert_ids(client, "status=all&user=bob")[0]
    page = client.get(f"/alerts/{bob}").text
    assert "user.name is bob AND host.name is web-1" in page
    r = client.post(f"/alerts/{bob}/exception", data={"csrf": csrf(client), "field": ["user.name", "host.name"], "close": "on"})  # fmt: skip
    assert r.status_code == 303
    with open_store(copy) as store:
        (item,) = load_items(store)
        assert get_alert(store, bob).workflow_status == "closed"
    assert item.describe() == "user.name is bob AND host.name is web-1"
    assert item.description == f"Proposed from alert {bob}"
    assert item.item_id in client.get(f"/alerts/{bob}").text


def test_hostile_strings_are_escaped_on_every_page(client: TestClient) -> None:
    login(client)
    (hostile,) = alert_ids(client, "status=all&user=" + quote(XSS_USER))
    pages = ["/alerts?status=all", f"/alerts/{hostile}", "/anomalies",
             "/anomalies?view=host.name", f"/users/{quote(XSS_USER, safe='')}", "/jobs",
             "/anomalies?user=" + quote(XSS_USER)]  # fmt: skip
    for path in pages:
        text = client.get(path).text
        assert "<img src=x" not in text, path
        assert "<script>alert" not in text, path
    assert "&lt;img src=x onerror=alert(1)&gt;" in client.get(f"/alerts/{hostile}").text
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in client.get(f"/alerts/{hostile}").text
    assert XSS_ARG not in client.get(f"/alerts/{hostile}").text


def test_loopback_only_hosts_and_binds(store_path: Path) -> None:
    app = create_app(str(store_path), token=TOKEN)  # default: loopback Host headers only
    with TestClient(app, base_url="http://attacker.example", follow_redirects=False) as c:
        assert c.get("/login").status_code == 400
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as c:
        assert c.get("/login").status_code == 200
    with pytest.raises(RarebirdError, match="without a token"):
        run_ui(str(store_path), host="0.0.0.0", token=None)
    with pytest.raises(ValueError, match="at least 16"):
        create_app(str(store_path), token="short")


def test_safe_next() -> None:
    assert safe_next("/users/alice") == "/users/alice"
    for bad in ("https://evil.example/", "//evil.example", "/\\evil", "", None, "alerts"):
        assert safe_next(bad) == "/alerts"


def test_the_alert_page_says_when_a_run_did_not_keep_its_events(copy: str) -> None:
    """A ``job run --aggregate`` over the same job: its events are not in the store."""
    from datetime import UTC, datetime

    from rarebird.store.runs import record_counted_run

    when = datetime(2026, 3, 1, tzinfo=UTC)
    with open_store(copy) as store:
        job_id = str(store.scalar("SELECT job_id FROM job_state"))
        record_counted_run(store, job_id, started=when, finished=when, inputs=["day.parquet"],
                           counted_by="DuckDB", events=10, first=when, last=when)  # fmt: skip
    app = create_app(copy, token=TOKEN, allowed_hosts=None)
    with TestClient(app, base_url="http://127.0.0.1:8765", follow_redirects=False) as c:
        login(c)
        page = c.get(f"/alerts/{alert_ids(c)[0]}").text
    assert "1 run(s) of this job counted their events in the scan" in page
