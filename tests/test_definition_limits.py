"""Timings that make no sense are definition errors naming the file and the key -- not a
ZeroDivisionError (``interval = "0s"``) or a ``detect`` that never ends (``"1ms"``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from rarebird.definitions import load_datafeed, load_job, load_rule, packaged_path
from rarebird.errors import DefinitionError
from tests.serve_support import RAREBIRD, serve_env

RULE = "discovery_ml_linux_system_network_connection_discovery.toml"
JOB = "v3_linux_network_connection_discovery.json"
DATAFEED = "datafeed_v3_linux_network_connection_discovery.json"


def rule_with(tmp_path: Path, interval: str) -> Path:
    text = Path(packaged_path(RULE)).read_text()
    path = tmp_path / "rule.toml"
    path.write_text(text.replace('interval = "15m"', f'interval = "{interval}"'))
    return path


@pytest.mark.parametrize("interval", ["0s", "1ms", "999ms"])
def test_a_rule_interval_under_a_second_is_refused(tmp_path: Path, interval: str) -> None:
    path = rule_with(tmp_path, interval)
    with pytest.raises(DefinitionError) as err:
        load_rule(str(path))
    assert str(err.value) == (
        f"{path}: rule.interval: {interval!r} is too short: a rule runs at most once a second"
    )


def test_detect_with_a_zero_interval_exits_1_with_the_file_and_key(tmp_path: Path) -> None:
    path = rule_with(tmp_path, "0s")
    events = tmp_path / "events.ndjson"
    events.write_text("")
    out = subprocess.run(
        [*RAREBIRD, "detect", "--store", str(tmp_path / "s.db"), "--rule", str(path), "--quiet",
         str(events)],
        capture_output=True, text=True, env=serve_env(), timeout=60,
    )  # fmt: skip
    assert out.returncode == 1
    assert out.stderr == (
        f"rarebird: error: {path}: rule.interval: '0s' is too short: a rule runs at most once "
        "a second\n"
    )
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("frequency", "500ms", "must be at least 1s (the datafeed searches at most once a second)"),
        ("frequency", "0s", "must be positive"),
        ("query_delay", "-5s", None),
    ],
)
def test_datafeed_timings(tmp_path: Path, key: str, value: str, message: str | None) -> None:
    doc = json.loads(Path(packaged_path(DATAFEED)).read_text())
    doc[key] = value
    path = tmp_path / "datafeed.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DefinitionError) as err:
        load_datafeed(str(path))
    assert err.value.key is not None
    assert err.value.key.endswith(key)
    assert err.value.path == str(path)
    if message is not None:
        assert err.value.message == message


@pytest.mark.parametrize("span", ["0s", "-15m", "1500ms"])
def test_bucket_span_must_be_whole_positive_seconds(tmp_path: Path, span: str) -> None:
    doc = json.loads(Path(packaged_path(JOB)).read_text())
    doc["analysis_config"]["bucket_span"] = span
    path = tmp_path / "job.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(DefinitionError) as err:
        load_job(str(path))
    assert err.value.key is not None
    assert err.value.key.endswith("bucket_span")
