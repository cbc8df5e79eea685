"""The line formats' reader (Laurel, osquery, OCSF): a chunk searched once for the needles.

The rule it must keep is the line-by-line one (written out below as :func:`by_lines`): a line
longer than the limit is reported; a blank line (whitespace only) is skipped and not counted;
a line holding none of the needles is counted as prefiltered; every other line is parsed. The
chunked reader is held to it on arbitrary bytes with both searches and chunks small enough to
cut lines, grow the buffer and skip over long lines; then a Laurel log built from Laurel's own
test data is read by one and by two processes.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rarebird.definitions.datafeed import load_datafeed
from rarebird.events import ProcessEvent
from rarebird.sources import KEEP_ALL, Prefilter, SourceOptions, lines_parallel, ranges
from rarebird.sources.inputs import open_source
from rarebird.sources.laurel import LaurelSource
from rarebird.sources.lines import name_needles
from rarebird.sources.linescan import NeedleSearch, blocks
from rarebird.sources.multipattern import load_hyperscan

FEED = load_datafeed().query.prefilter
NEEDLES = name_needles(FEED, b'"', (b"\\u",))
assert NEEDLES is not None
HS = pytest.mark.skipif(load_hyperscan() is None, reason="hyperscan cannot run here")
SEARCHES = ["memmem", pytest.param("hyperscan", marks=HS)]
LAUREL = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "laurel" / "src" / "testdata"


def by_lines(data: bytes, needles: tuple[bytes, ...], limit: int) -> tuple[object, ...]:
    """The line-by-line rule: (lines, parsed line numbers, prefiltered, too-long line numbers)."""
    parsed, too_long = [], []
    prefiltered = 0
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the input ends with a line end: no line after it
    for no, line in enumerate(lines, 1):
        if len(line) > limit:
            too_long.append(no)
        elif not line.strip():
            continue
        elif any(n in line for n in needles):
            parsed.append(no)
        else:
            prefiltered += 1
    return len(lines), parsed, prefiltered, too_long


def by_blocks(data: bytes, search: NeedleSearch, limit: int, chunk: int) -> tuple[object, ...]:
    import io

    parsed, too_long = [], []
    lines = prefiltered = nbytes = 0
    for block in blocks(io.BytesIO(data), search, limit, chunk):
        lines += block.lines
        nbytes += block.nbytes
        prefiltered += block.unvisited
        for v in block.visits:
            if v.too_long:
                too_long.append(v.line_no)
                continue
            line = bytes(block.buf[v.start : v.end])
            if not line.strip():
                continue
            if v.hit:
                parsed.append(v.line_no)
            else:
                prefiltered += 1
    assert nbytes == len(data)
    return lines, parsed, prefiltered, too_long


PIECES = [b'"ss"', b"/netstat", b'"', b"route", b'"x', b"\\u", b"\\", b" ", b"\t", b"\r", b"\x0b",
          b"\n", b"\n", b"\n", b"abc", b"{}", b"\x00", b"\xff", b"/showmount\""]  # fmt: skip


@pytest.mark.parametrize("mode", SEARCHES)
@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES), max_size=60),
    limit=st.integers(1, 40),
    chunk=st.integers(1, 64),
)
def test_the_chunked_reader_keeps_the_line_by_line_rule(
    mode: str, parts: list[bytes], limit: int, chunk: int
) -> None:
    data = b"".join(parts)
    search = NeedleSearch(NEEDLES, mode)
    assert by_blocks(data, search, limit, chunk) == by_lines(data, NEEDLES, limit)


@pytest.mark.parametrize("mode", SEARCHES)
def test_blank_crlf_long_and_unterminated_lines(mode: str) -> None:
    data = (
        b'{"exe":"/usr/bin/ss"}\r\n'  # 1: parsed (CRLF)
        b"   \r\n"  # 2: blank
        b'{"exe":"/usr/bin/ls"}\n'  # 3: prefiltered
        b'  {"comm":"ss"}\n'  # 4: parsed, starts with spaces
        + b"x" * 50 + b'"ss"\n'  # 5: too long (54 bytes, limit 40)
        b"\n"  # 6: blank
        b'{"a":"\\u0073s"}'  # 7: parsed (an escape), no line end
    )  # fmt: skip
    expected = (7, [1, 4, 7], 1, [5])
    assert by_lines(data, NEEDLES, 40) == expected
    for chunk in (8, 23, 1 << 20):
        assert by_blocks(data, NeedleSearch(NEEDLES, mode), 40, chunk) == expected
    # a needle's second occurrence ending on the input's last byte
    tail = b'"ss"\n"ss"'
    assert by_blocks(tail, NeedleSearch(NEEDLES, mode), 40, 1 << 20) == (2, [1, 2], 0, [])


# --- a Laurel log: Laurel's own test events, some made discovery commands ---------------------


def _laurel_lines() -> list[dict[str, object]]:
    if not LAUREL.is_dir():
        pytest.skip("../shared/corpora is not here")
    docs = []
    for name in ("record-execve.json", "record-syscall-key.json", "record-nscd.json",
                 "record-perl-reverse-shell.json", "record-weblogic.json"):  # fmt: skip
        for text in (LAUREL / name).read_text().splitlines():
            if text.strip():
                docs.append(json.loads(text))
    return docs


@pytest.fixture(scope="module")
def laurel_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(3)
    docs = _laurel_lines()
    out = []
    for i in range(3000):
        doc = json.loads(json.dumps(rng.choice(docs)))
        sysc = doc.get("SYSCALL")
        sec = 1_700_000_000 + 7 * i
        doc["ID"] = f"{sec}.{i % 1000:03d}:{1000 + i}"
        if isinstance(sysc, dict) and sysc.get("syscall") == 59:
            r = rng.random()
            if r < 0.2:
                sysc["exe"] = rng.choice(["/usr/bin/ss", "/bin/netstat", "/sbin/route"])
                sysc["UID"] = rng.choice(["root", "alice", "nagios"])
            elif r < 0.3:
                sysc["comm"] = "ss"  # a decoy: comm is not process.name
        text = json.dumps(doc, separators=(",", ":")).encode()
        r = rng.random()
        if r < 0.02:
            text = b'{"ID":"1700000000.000:1","SYSCALL":{"exe":"/usr/bin/ss"'  # cut short
        elif r < 0.04:
            text = b"  \r"
        elif r < 0.06:
            text += b"\r"
        elif r < 0.065:
            text = text.replace(b'"exe":"/usr/bin/ss"', b'"exe":"/usr/bin/\\u0073s"')
        elif r < 0.07:
            text = b'{"ID":"1700000000.000:1","pad":"' + b"s" * 3000 + b'ss"}'  # too long
        out.append(text)
    path = tmp_path_factory.mktemp("laurel") / "laurel.log"
    path.write_bytes(b"\n".join(out) + b"\n")
    return path


class Read(NamedTuple):
    """What a read gave: its events and every count."""

    events: list[ProcessEvent]
    issues: list[tuple[str, str]]
    lines: int
    bytes: int
    prefiltered: int
    kept: int
    skipped: dict[str, int]


def read(path: Path, workers: int) -> Read:
    extra = {"workers": str(workers)} if workers > 1 else {}
    src = LaurelSource(str(path), SourceOptions(prefilter=FEED, max_line_bytes=2048, extra=extra))
    events = list(src)
    s = src.stats
    issues = [(str(i.location), i.reason) for i in s.issues]
    return Read(events, issues, s.lines, s.bytes, s.prefiltered, s.events, dict(s.skipped))


@pytest.mark.parametrize("mode", SEARCHES)
def test_a_laurel_log_read_by_two_processes_gives_what_one_gives(
    laurel_log: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("RAREBIRD_LINES_SEARCH", mode)
    one = read(laurel_log, 1)
    events, issues, lines, nbytes = one.events, one.issues, one.lines, one.bytes
    assert lines == 3000
    assert nbytes == laurel_log.stat().st_size
    assert len(events) > 300
    assert {e.process_name for e in events} == {"ss", "netstat", "route"}
    reasons = {r for _, r in issues}
    assert reasons == {"laurel: not JSON", "line too long"}
    data = laurel_log.read_bytes()
    assert one.prefiltered == by_lines(data, NEEDLES, 2048)[2]  # lines with no needle
    wanted = 0  # exec events of the datafeed's names, by Laurel's format
    for text in data.splitlines():
        try:
            sysc = json.loads(text).get("SYSCALL", {})
        except ValueError:
            continue
        if len(text) <= 2048 and sysc.get("syscall") == 59 and sysc["exe"].rsplit("/")[-1] in (
            "ss", "netstat", "route", "showmount"
        ):  # fmt: skip
            wanted += 1
    assert len(events) == one.kept == wanted
    monkeypatch.setattr(lines_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ranges, "MIN_PIECE_BYTES", 64 * 1024)
    assert read(laurel_log, 2) == one


def test_the_line_reader_names_its_search_and_processes(
    laurel_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAREBIRD_LINES_SEARCH", "memmem")

    def said(**extra: str) -> str:
        opened = open_source(str(laurel_log), "auto", SourceOptions(prefilter=FEED, extra=extra))
        list(opened)
        return opened.describe()

    assert said() == f"{laurel_log}: laurel (auto); names found by memmem"
    monkeypatch.setattr(lines_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(ranges, "MIN_PIECE_BYTES", 64 * 1024)
    assert said(workers="2") == f"{laurel_log}: laurel (auto); names found by memmem, 2 processes"


@pytest.mark.parametrize("prefilter", [FEED, KEEP_ALL], ids=["searched", "every-line"])
def test_a_gzip_log_cut_short_keeps_what_was_read_and_says_where(
    laurel_log: Path, tmp_path: Path, prefilter: Prefilter
) -> None:
    import gzip

    whole = gzip.compress(laurel_log.read_bytes())
    cut = tmp_path / "laurel.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    src = LaurelSource(str(cut), SourceOptions(prefilter=prefilter, max_line_bytes=2048))
    events = [e for e in src if FEED.holds(e)]  # before: EOFError, and "Aborted!"
    full = read(laurel_log, 1)

    def seen(evs: list[ProcessEvent]) -> list[tuple[object, ...]]:
        return [(e.timestamp, e.process_name, e.origin and e.origin.line) for e in evs]

    assert 0 < len(events) < len(full.events)
    assert seen(events) == seen(full.events)[: len(events)]
    last = src.stats.issues[-1]
    assert last.reason == "read error"
    assert "end-of-stream" in last.detail
    assert last.location.line == src.stats.lines + 1
