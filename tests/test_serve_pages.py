"""``rarebird serve`` with ``[http] pages = true`` serves the triage pages beside its own
endpoints (same listener, same hostile-client limits), and ``[http] identity = "login"`` models
ingested events as the login user behind sudo, as for followed inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Mount

from rarebird.definitions.service import config_from_dict
from rarebird.errors import DefinitionError, RarebirdError
from rarebird.web.app import pages_for
from tests.serve_support import event, query
from tests.test_ingest import ndjson, serve_http

UI_TOKEN = "a-ui-token-of-at-least-16-chars"


def test_the_pages_share_the_service_listener(tmp_path: Path) -> None:
    store = str(tmp_path / "serve.db")
    app, url = pages_for(store, host="127.0.0.1", port=0, token=UI_TOKEN)
    assert url.endswith("$RAREBIRD_UI_TOKEN&next=/alerts")  # a given token is never printed
    gen = serve_http(tmp_path, routes=[Mount("/", app=app)])
    served = next(gen)
    try:
        status, _, body = served.request("GET", "/healthz")
        assert status == 200
        assert json.loads(body)["status"] == "ok"  # the service's own health, not the pages'
        status, headers, _ = served.request("GET", "/alerts")
        assert status == 303
        assert headers["location"].startswith("/login?next=")
        status, headers, _ = served.request("GET", f"/login?token={UI_TOKEN}&next=/alerts")
        assert status == 303
        cookie = headers["set-cookie"].split(";", 1)[0]
        status, headers, body = served.request("GET", "/alerts", headers={"Cookie": cookie})
        assert status == 200
        assert "default-src 'self'" in headers["content-security-policy"]
        assert b"<table" in body or b"No alerts" in body or b"no alerts" in body
        status, _, _ = served.request("POST", "/ingest", ndjson([]))
        assert status == 401  # ingest still wants its own bearer token
    finally:
        next(gen, None)


def test_a_listener_beyond_loopback_needs_a_ui_token() -> None:
    with pytest.raises(RarebirdError, match="RAREBIRD_UI_TOKEN"):
        pages_for("unused.db", host="0.0.0.0", port=9400, token=None)


def sudo_doc(when: datetime) -> dict[str, Any]:
    doc = event(when, "root")
    doc["user"]["audit"] = {"name": "mallory", "id": "1003"}
    return doc


def test_ingest_models_the_login_user_when_asked(tmp_path: Path) -> None:
    gen = serve_http(tmp_path, identity="login")
    served = next(gen)
    try:
        status, doc = served.ingest(ndjson([sudo_doc(datetime.now(UTC))]))
        assert (status, doc["kept"]) == (200, 1)
        (pending,) = query(served.store, "SELECT doc FROM serve_pending")
        stored = json.loads(pending[0])
        assert stored["user"]["name"] == "mallory"
        assert stored["process"]["real_user"]["name"] == "root"
    finally:
        next(gen, None)


def test_the_config_keys_are_read_and_checked(tmp_path: Path) -> None:
    base: dict[str, Any] = {"store": "s.db"}
    cfg = config_from_dict({**base, "http": {"listen": "127.0.0.1:9400", "pages": True,
                                             "identity": "login"}})  # fmt: skip
    assert (cfg.http.pages, cfg.http.identity) == (True, "login")
    with pytest.raises(DefinitionError, match=r"x\.toml.*http\.identity"):
        config_from_dict({**base, "http": {"identity": "human"}}, "x.toml")
