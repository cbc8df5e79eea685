"""Webhook sink: each alert as one JSON ``POST`` (the alert document as the body).

Delivery, so that nothing is lost while the receiver is down or restarting:

- a request that fails with a connection error, a timeout, ``408``, ``429`` or ``5xx`` is retried
  with exponential backoff (``backoff * 2**n``, at most ``max_backoff``; a numeric
  ``Retry-After`` is honoured up to that cap);
- when the retries are exhausted the receiver is taken to be down: that alert and every later one
  go, in order, to the **dead-letter file** (NDJSON, one ``{"alert": ..., "revision": ...,
  "attempts": ..., "error": ...}`` per line) without further waiting;
- every later ``write`` -- and ``close`` -- first re-sends the dead letters, oldest first, then
  the new alerts; while the receiver is still down that costs one attempt, not a full retry
  cycle, and at most one attempt per ``down_retry`` seconds (``close`` always tries once), so a
  replay that writes every few milliseconds is not slowed by a receiver that is gone. A later run with the same dead-letter file does the same, so alerts left by
  a run whose receiver never came back are delivered by the next one;
- other ``4xx`` answers are permanent for that alert: it is dead-lettered (kept, re-tried with
  the others later) and the queue moves on.

Headers: ``Content-Type: application/json``, ``Idempotency-Key: <alert id>-<revision>``,
``X-Rarebird-Alert-Id``, ``X-Rarebird-Alert-Revision`` (0 = new alert), so a receiver can drop
the duplicates a retry after a lost response may cause.
"""

from __future__ import annotations

import http.client
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from rarebird.alerts import Alert
from rarebird.sinks.base import SinkError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class _Letter:
    doc: Mapping[str, Any]
    revision: int
    attempts: int = 0
    error: str = ""

    @property
    def alert_id(self) -> str:
        return str(self.doc.get("kibana.alert.uuid", ""))

    def to_json(self) -> dict[str, Any]:
        return {"alert": self.doc, "revision": self.revision, "attempts": self.attempts,
                "error": self.error}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Result:
    ok: bool
    permanent: bool
    error: str
    retry_after: float | None = None


class WebhookSink:
    def __init__(
        self,
        url: str,
        *,
        dead_letter: str | None = None,
        retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        headers: Mapping[str, str] | None = None,
        down_retry: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkError(f"{url}: a webhook needs an http:// or https:// URL")
        self.url = url
        self._parts = parts
        self.dead_letter = dead_letter
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.down_retry = down_retry
        self._sleep = sleep
        self._monotonic = monotonic
        #: the receiver failed a whole retry cycle and has not answered since
        self._down = False
        self._down_since = 0.0
        #: dead letters when there is no file
        self._memory: list[_Letter] = []
        self.delivered = 0

    @property
    def name(self) -> str:
        return self.url

    # -- public ----------------------------------------------------------------------------

    def write(self, alerts: Sequence[Alert]) -> None:
        queue = self._load() + [_Letter(a.doc, a.revision) for a in alerts]
        self._save(self._deliver(queue))

    def pending(self) -> int:
        """How many alerts wait in the dead letters."""
        return len(self._load())

    def flush(self) -> int:
        """Re-send the dead letters now; returns how many are still undelivered."""
        left = self._deliver(self._load(), force=True)
        self._save(left)
        return len(left)

    def close(self) -> None:
        left = self.flush() if self.pending() else 0
        if left and self.dead_letter is None:
            raise SinkError(
                f"{self.url}: {left} alert(s) could not be delivered and there is no "
                "dead-letter file to keep them"
            )

    # -- delivery --------------------------------------------------------------------------

    def _deliver(self, queue: list[_Letter], *, force: bool = False) -> list[_Letter]:
        left: list[_Letter] = []
        blocked = (
            self._down and not force and self._monotonic() - self._down_since < self.down_retry
        )
        for letter in queue:
            if blocked:
                left.append(letter)
                continue
            attempts = 1 if self._down else 1 + self.retries
            result, used = self._send(letter, attempts)
            if result.ok:
                self._down = False
                self.delivered += 1
                continue
            failed = _Letter(letter.doc, letter.revision, letter.attempts + used, result.error)
            left.append(failed)
            if not result.permanent:
                self._down = True
                self._down_since = self._monotonic()
                blocked = True
        return left

    def _send(self, letter: _Letter, attempts: int) -> tuple[_Result, int]:
        body = orjson.dumps(letter.doc)
        result = _Result(False, False, "not attempted")
        for n in range(attempts):
            if n:
                delay = min(self.backoff * (2 ** (n - 1)), self.max_backoff)
                if result.retry_after is not None:
                    delay = min(max(delay, result.retry_after), self.max_backoff)
                self._sleep(delay)
            result = self._post(body, letter)
            if result.ok or result.permanent:
                return result, n + 1
        return result, attempts

    def _post(self, body: bytes, letter: _Letter) -> _Result:
        p = self._parts
        conn_cls = (
            http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        )
        conn = conn_cls(p.hostname or "", p.port, timeout=self.timeout)
        path = p.path or "/"
        if p.query:
            path += f"?{p.query}"
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "rarebird",
            "Idempotency-Key": f"{letter.alert_id}-{letter.revision}",
            "X-Rarebird-Alert-Id": letter.alert_id,
            "X-Rarebird-Alert-Revision": str(letter.revision),
            **self.headers,
        }
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            retry_after = _retry_after(resp.getheader("Retry-After"))
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            return _Result(False, False, f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()
        if 200 <= status < 300:
            return _Result(True, False, "")
        error = f"HTTP {status}"
        if status in RETRYABLE_STATUS or status >= 500:
            return _Result(False, False, error, retry_after)
        return _Result(False, True, error)

    # -- the dead-letter file ----------------------------------------------------------------

    def _load(self) -> list[_Letter]:
        if self.dead_letter is None:
            return list(self._memory)
        try:
            with open(self.dead_letter, "rb") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise SinkError(f"{self.dead_letter}: cannot read: {exc.strerror or exc}") from None
        out = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                out.append(_Letter(rec["alert"], int(rec.get("revision", 0)),
                                   int(rec.get("attempts", 0)), str(rec.get("error", ""))))  # fmt: skip
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise SinkError(f"{self.dead_letter}:{n}: not a dead letter ({exc})") from None
        return out

    def _save(self, letters: list[_Letter]) -> None:
        if self.dead_letter is None:
            self._memory = letters
            return
        if not letters:
            if os.path.exists(self.dead_letter):
                os.remove(self.dead_letter)
            return
        tmp = f"{self.dead_letter}.tmp"
        try:
            with open(tmp, "wb") as fh:
                fh.write(b"".join(orjson.dumps(x.to_json()) + b"\n" for x in letters))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.dead_letter)
        except OSError as exc:
            raise SinkError(f"{self.dead_letter}: cannot write: {exc.strerror or exc}") from None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
