"""The triage pages in a real browser: Debian's headless chromium, driven by Playwright,
against the real ``rarebird ui`` process over a store made by ``rarebird detect``.

Screenshots of each step go to ``tests/artifacts/`` (git-ignored). Skipped, saying why, when
chromium is not installed (``.ci/run`` installs it on Debian).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.web_support import TOKEN, XSS_ARG, XSS_USER, build_store

CHROMIUM = os.environ.get("RAREBIRD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no chromium at {CHROMIUM} "
        "(apt-get install chromium chromium-driver; .ci/run does)",
    ),  # fmt: skip
]
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``rarebird ui`` on a free loopback port; yields its base URL."""
    store = build_store(tmp_path_factory.mktemp("browser"))
    port = _free_port()
    env = {**os.environ, "RAREBIRD_UI_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rarebird", "ui", "--store", str(store), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read() if proc.stdout else ""
                    pytest.fail(f"rarebird ui did not start: {out}")
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


@dataclass
class Browser:
    page: Any
    base: str
    folder: Path
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def go(self, path: str) -> None:
        response = self.page.goto(self.base + path)
        assert response is not None
        assert response.status == 200, (path, response.status)

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)


@pytest.fixture
def browser(server: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Browser]:
    folder = ARTIFACTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        page = context.new_page()
        b = Browser(page, server, folder)
        page.on("dialog", lambda d: (b.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: b.errors.append(str(e)))
        page.on("console", lambda m: b.errors.append(m.text) if m.type == "error" else None)
        try:
            yield b
        finally:
            context.close()
    print(f"screenshots: {folder}")


def test_log_in_filter_open_acknowledge_and_except(browser: Browser) -> None:
    page = browser.page
    browser.go(f"/login?token={TOKEN}&next=/alerts")
    assert page.url.endswith("/alerts")
    assert page.locator("table.alerts tbody tr").count() == 5
    browser.shot("1-alerts")
    # filter: alice's alerts since a relative time
    page.fill("input[name=user]", "alice")
    page.fill("input[name=from]", "3650d")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state()
    rows = page.locator("table.alerts tbody tr")
    assert rows.count() == 3
    assert "user=alice" in page.url
    browser.shot("2-filtered")
    # open the newest, read why, acknowledge it
    rows.first.locator("a.open-alert").click()
    page.wait_for_load_state()
    assert page.locator("#workflow-status").inner_text().startswith("open")
    why = page.locator("ul.why").inner_text()
    assert "nagios, root and svc_backup account for 99 %" in why
    assert "Investigation guide" in page.inner_text("section.guide")
    browser.shot("3-alert")
    page.click("#mark-acknowledged")
    page.wait_for_load_state()
    assert page.locator("#workflow-status").inner_text().startswith("acknowledged")
    browser.shot("4-acknowledged")
    alert_url = page.url
    # it left the open alerts and shows among the acknowledged ones
    browser.go("/alerts?status=acknowledged")
    assert page.locator("table.alerts tbody tr").count() == 1
    browser.go("/alerts")
    assert page.locator("table.alerts tbody tr").count() == 4
    # add an exception from the alert
    page.goto(alert_url)
    page.check("input[name=field][value='user.name']")
    page.uncheck("input[name=field][value='host.name']")
    page.click("#add-exception")
    page.wait_for_load_state()
    added = page.locator("#exceptions").inner_text()
    assert "Exceptions added from this alert" in added
    assert "user.name is alice" in added
    browser.shot("5-exception")
    # bulk: select all (the vendored script) and close
    browser.go("/alerts")
    page.check("#select-all")
    assert page.locator("input.pick:checked").count() == 4
    page.click("#bulk button[value=closed]")
    page.wait_for_load_state()
    assert page.locator("table.alerts tbody tr td.muted").inner_text() == "No alerts match."
    browser.go("/alerts?status=closed")
    assert page.locator("table.alerts tbody tr").count() == 4
    browser.shot("6-closed")
    assert browser.errors == []


def test_explorer_user_and_jobs_pages(browser: Browser) -> None:
    page = browser.page
    browser.go(f"/login?token={TOKEN}&next=/anomalies")
    assert page.locator("svg.swimlane").count() == 2
    browser.shot("1-explorer")
    # click a user's cell: the anomalies table narrows to that user and cell
    page.locator("svg.by a rect").first.click()
    page.wait_for_load_state()
    assert "sel_from=" in page.url
    assert page.locator("table.anomalies tbody tr").count() >= 1
    browser.shot("2-cell")
    browser.go("/anomalies?view=host.name&from=3650d")
    browser.shot("3-by-host")
    browser.go("/users/alice")
    assert page.locator("svg.timeline rect").count() > 10
    browser.shot("4-user")
    browser.go("/jobs")
    assert "bucket_count" in page.inner_text("table.stats")
    browser.shot("5-jobs")
    assert browser.errors == []


def test_a_hostile_user_name_is_shown_escaped_and_runs_nothing(browser: Browser) -> None:
    page = browser.page
    browser.go(f"/login?token={TOKEN}&next=/alerts%3Fstatus%3Dall")
    assert XSS_USER in page.inner_text("table.alerts")
    href = page.locator("table.alerts tr", has_text=XSS_USER).locator("a.open-alert").get_attribute("href")  # fmt: skip
    assert href
    paths = ["/alerts?status=all", href, "/anomalies", "/anomalies?view=host.name",
             "/anomalies?user=" + quote(XSS_USER), f"/users/{quote(XSS_USER, safe='')}", "/jobs"]  # fmt: skip
    for n, path in enumerate(paths):
        browser.go(path)
        page.wait_for_timeout(100)
        assert page.locator("img").count() == 0, path
        browser.shot(f"{n}-{path.strip('/').split('/')[0].split('?')[0]}")
    browser.go(href)
    assert XSS_USER in page.inner_text("main")
    assert XSS_ARG in page.inner_text("main")
    assert browser.dialogs == []
    assert browser.errors == []
