"""gzip inputs inflated by ISA-L read exactly as with the standard library, damaged or not.

Rotated audit logs (``audit.log.1.gz``) and gzipped NDJSON are decompressed with ``isal``'s
igzip when it is installed (issue 10). Whatever the file (whole, several members, cut off,
corrupt in the middle, a wrong CRC, garbage or zeros after the end), the bytes handed out, the
error raised at the end, and so the events and the reported issues, must be those of the
standard library's ``gzip`` (``RAREBIRD_GZIP=zlib``).
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from rarebird.sources import SourceOptions
from rarebird.sources.ecs import EcsSource
from rarebird.sources.gunzip import ENV, GzipInput

isal = pytest.importorskip("isal")

LINE = (
    b'{"@timestamp":"2026-01-05T10:00:%02d.000Z","event":{"type":["start"],"category":["process"]},'
    b'"host":{"name":"web-01","os":{"type":"linux"}},"process":{"name":"%s","args":["%s","-tan"]},'
    b'"user":{"name":"u%d"}}\n'
)
DATA = b"".join(LINE % (i % 60, b"ss" if i % 9 == 0 else b"sshd", b"x", i % 7) for i in range(6000))
GZ = gzip.compress(DATA)
HALF = len(GZ) // 2

CASES = {
    "whole": GZ,
    "two members": GZ + gzip.compress(DATA[:5000]),
    "cut off": GZ[:HALF],
    "corrupt middle": GZ[:HALF] + bytes(200) + GZ[HALF + 200 :],
    "wrong crc": GZ[:-8] + b"\0\0\0\0" + GZ[-4:],
    "garbage after": GZ + b"garbage",
    "zeros after": GZ + bytes(16),
}


def read_all(path: Path) -> tuple[bytes, str | None, bool]:
    with open(path, "rb") as raw:
        stream = GzipInput(raw)
        fast = stream.fast
        out = io.BytesIO()
        buf = bytearray(50_000)
        error = None
        while True:
            try:
                n = stream.readinto(buf)
            except Exception as exc:
                error = type(exc).__name__
                break
            if not n:
                break
            out.write(buf[:n])
        stream.close()
    return out.getvalue(), error, fast


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_bytes_and_error_as_the_standard_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    path = tmp_path / "audit.log.1.gz"
    path.write_bytes(CASES[case])
    data, error, fast = read_all(path)
    assert fast
    monkeypatch.setenv(ENV, "zlib")
    reference = read_all(path)
    assert reference[2] is False
    assert (data, error) == reference[:2]
    if case == "whole":
        assert data == DATA


@pytest.mark.parametrize("case", ["whole", "cut off", "corrupt middle"])
def test_the_same_events_and_issues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    path = tmp_path / "fleet.ndjson.gz"
    path.write_bytes(CASES[case])

    def run() -> tuple[object, ...]:
        src = EcsSource(str(path), SourceOptions(), chunk_bytes=64 * 1024)
        events = list(src)
        issues = [(i.location.line, i.reason) for i in src.stats.issues]
        return events, issues, src.stats.lines

    fast = run()
    monkeypatch.setenv(ENV, "zlib")
    assert fast == run()
    assert len(fast[0]) > 100  # type: ignore[arg-type]


def test_lines_and_peeks_after_a_fallback(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(CASES["wrong crc"])
    with open(path, "rb") as raw:
        stream = GzipInput(raw)
        assert stream.peek(10).startswith(b'{"@timest')
        lines: list[bytes] = []

        def read_lines() -> None:
            while line := stream.readline():
                lines.append(line)

        with pytest.raises(gzip.BadGzipFile):
            read_lines()
        assert not stream.fast  # fell back to the standard library, which raised
        stream.close()
    assert b"".join(lines) == DATA
