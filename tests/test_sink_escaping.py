"""Attacker-chosen strings (user names, arguments, hosts, parent names) reach the text and JSON
outputs without a single raw control character: every C0 and C1 control, DEL, the ANSI / VT
sequences built from them (screen clear, cursor moves, hidden text, window title, OSC 8 links,
DCS) and the bidirectional overrides are fed in, through real sinks, to a real syslog listener
and real files."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import orjson

from rarebird.alerts import Alert, RuleIdentity, build_alert
from rarebird.sinks import SyslogSink, open_sink
from rarebird.sinks.escape import escape_controls
from rarebird.sinks.syslog import format_message
from tests.rule_support import at, record, rule

#: every control character one by one, then whole sequences a terminal acts on
SEQUENCES = [
    *(chr(c) for c in range(0x00, 0x20)),
    "\x7f",
    *(chr(c) for c in range(0x80, 0xA0)),
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b[8mhidden\x1b[0m",  # concealed text
    "\x1b[1A\x1b[2K",  # up one line, erase it: forge the previous row
    "\x1b]0;pwned\x07",  # window title
    "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "\x1bP+q544e\x1b\\",  # DCS request
    "\x9b31m\x9b2J",  # 8-bit CSI
    "\u202eexe.txt\u202c",  # right-to-left override
    "\u2066\u2067\u2068\u2069\u200e\u200f\u202a\u202b\u202d",
]
HOSTILE = "root" + "".join(SEQUENCES) + "\\x1b"

#: what may never appear raw in any output
FORBIDDEN = (
    {chr(c) for c in range(0x20)}
    | {chr(c) for c in range(0x7F, 0xA0)}
    | set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
)


def hostile_alert() -> Alert:
    r = rule()
    rec = record(at(0), HOSTILE, 80, hosts=(f"web{HOSTILE}",), procs=("ss",),
                 args=(f"ss -tunap {HOSTILE}",))  # fmt: skip
    return build_alert(rec, rec.doc_id, r, RuleIdentity.for_rule(r), at(15))


def raw_controls(text: str) -> set[str]:
    return {ch for ch in text if ch in FORBIDDEN}


def test_the_fixture_holds_every_sequence() -> None:
    alert = hostile_alert()
    assert HOSTILE in alert.values("user.name")
    assert raw_controls("".join(alert.values("user.name"))) == FORBIDDEN
    assert raw_controls(str(alert.doc["kibana.alert.reason"])) == FORBIDDEN


def test_escape_controls_shows_every_control_and_is_unambiguous() -> None:
    shown = escape_controls(HOSTILE)
    assert raw_controls(shown) == set()
    assert shown.startswith("root\\x00\\x01\\x02")
    assert "\\x1b[2J\\x1b[H" in shown
    assert "\\x9b31m" in shown
    assert "\\u202eexe.txt\\u202c" in shown
    assert shown.endswith("\\\\x1b")  # a literal backslash in the name stays distinguishable


def test_syslog_messages_over_udp_carry_no_control_character() -> None:
    alert = hostile_alert()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        port = listener.getsockname()[1]
        for msg in ("reason", "json"):
            sink = SyslogSink("127.0.0.1", port, protocol="udp", hostname="sensor-1", msg=msg)
            sink.write([alert])
            sink.close()
            got = listener.recv(65535).decode()
            assert raw_controls(got) == set(), msg
            if msg == "reason":
                sd_value = escape_controls(HOSTILE).replace('"', '\\"').replace("]", "\\]")
                assert f'user="{sd_value}"' in got
                assert f"by {escape_controls(HOSTILE)} on" in got
            else:
                doc = json.loads(got.split("] ", 1)[1])
                assert doc == alert.doc  # the JSON form keeps the exact values
    assert format_message(alert).count(b"\n") == 0


def test_ndjson_and_bulk_files_keep_the_values_and_no_raw_control(tmp_path: Path) -> None:
    alert = hostile_alert()
    for kind in ("ndjson", "es-bulk"):
        path = tmp_path / f"{kind}.out"
        sink = open_sink(f"{kind}:{path}")
        sink.write([alert])
        sink.close()
        text = path.read_bytes().decode()
        assert raw_controls(text.replace("\n", "")) == set(), kind
        assert text.count("\n") == (1 if kind == "ndjson" else 2)
        assert orjson.loads(text.splitlines()[-1]) == alert.doc
