"""Control characters in alert text, made harmless for whoever reads a sink's output.

User names, process arguments and host names in an alert come from the events, and so from
whoever ran the process: any local user chooses the arguments of their own ``ss``. Printed raw
to a terminal (``tail -f`` of a syslog file, ``less`` of an NDJSON file), an escape sequence in
them can clear the screen, hide or forge lines, set the window title or plant a link. So:

- text outputs (syslog) show every C0 control, DEL, C1 control and Unicode bidirectional
  override as a visible escape (``\\x1b``, ``\\x9b``, ``\\u202e``); a backslash is shown as
  ``\\\\`` so that an escape in the output always means a control character in the alert;
- JSON outputs (NDJSON, ``_bulk`` bodies, the syslog ``msg="json"`` form) keep the exact value
  -- a JSON reader gets the same string back -- but write DEL, C1 controls and bidi overrides
  as ``\\u`` escapes too (JSON requires it only for C0, which orjson already does).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

#: C0 controls, DEL, C1 controls, and the bidirectional overrides and isolates
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\\\\]")
#: the same, UTF-8 encoded, as JSON leaves them (C0 is always escaped by JSON itself)
_JSON_UNSAFE = re.compile(b"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\x8e\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def _visible(m: re.Match[str]) -> str:
    ch = m.group()
    if ch == "\\":
        return "\\\\"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    r"""``text`` with every control character shown as an escape.

    >>> escape_controls("root\x1b[2J\x1b]0;owned\x07")
    'root\\x1b[2J\\x1b]0;owned\\x07'
    >>> escape_controls("a\\b\u202e")
    'a\\\\b\\u202e'
    """
    return _CONTROL.sub(_visible, text)


def _json_escape(m: re.Match[bytes]) -> bytes:
    return f"\\u{ord(m.group().decode()):04x}".encode()


def json_bytes(doc: Any) -> bytes:
    r"""``doc`` as compact JSON with no raw control character of any kind.

    >>> json_bytes({"user": "a\x1b\x9b\u202eb"})
    b'{"user":"a\\u001b\\u009b\\u202eb"}'
    >>> orjson.loads(json_bytes({"user": "a\x1b\x9b\u202eb"}))["user"] == "a\x1b\x9b\u202eb"
    True
    """
    return json_unsafe_escaped(orjson.dumps(doc))


def json_unsafe_escaped(data: bytes) -> bytes:
    """JSON text with DEL, C1 controls and bidi overrides written as ``\\u`` escapes."""
    return _JSON_UNSAFE.sub(_json_escape, data)
