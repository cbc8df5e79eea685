"""Webhook sink: each alert as one JSON ``POST`` (the alert document as the body).

``write`` posts the alerts in order, once each; the first failure raises
:class:`~rarebird.sinks.base.SinkError` saying how many went through, whether it is worth
retrying (connection errors, timeouts, ``408``, ``425``, ``429``, ``5xx``) and the
``Retry-After`` the receiver asked for. Retries with backoff, the outbox that keeps what is not
delivered yet, and the dead letters (alerts refused for good by another ``4xx``) are the
delivery's (:mod:`rarebird.run.delivery`).

Headers: ``Content-Type: application/json``, ``Idempotency-Key: <alert id>-<revision>``,
``X-Rarebird-Alert-Id``, ``X-Rarebird-Alert-Revision`` (0 = new alert), so a receiver can drop
the duplicates an at-least-once delivery may cause, and the authentication
:func:`auth_headers` builds from the configuration or the environment -- never from the
command line, where every local user could read it in ``ps``:

``RAREBIRD_WEBHOOK_AUTH``   ``bearer`` (``Authorization: Bearer <token>``), ``splunk`` (Splunk
                            HEC: ``Authorization: Splunk <token>``) or ``header:<Name>``
                            (``<Name>: <token>``)
``RAREBIRD_WEBHOOK_TOKEN``  the token (or ``RAREBIRD_WEBHOOK_TOKEN_FILE``: a file holding it)
"""

from __future__ import annotations

import http.client
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from rarebird.alerts import Alert
from rarebird.sinks.base import SinkError

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def auth_headers(kind: str | None, token: str | None, *, where: str = "webhook") -> dict[str, str]:
    """The authentication header for ``kind`` (``bearer``, ``splunk``, ``header:<Name>``).

    >>> auth_headers("splunk", "abc")
    {'Authorization': 'Splunk abc'}
    >>> auth_headers("header:X-Api-Key", "abc")
    {'X-Api-Key': 'abc'}
    """
    if not kind:
        return {}
    if not token:
        raise SinkError(f"{where}: authentication {kind!r} needs a token")
    if any(c in token for c in "\r\n\x00"):
        raise SinkError(f"{where}: the token holds a line break or NUL")
    if kind == "bearer":
        return {"Authorization": f"Bearer {token}"}
    if kind == "splunk":
        return {"Authorization": f"Splunk {token}"}
    if kind.startswith("header:") and _HEADER_NAME.match(kind[7:]):
        return {kind[7:]: token}
    raise SinkError(f"{where}: unknown authentication {kind!r} (bearer, splunk or header:NAME)")


def auth_from_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """:func:`auth_headers` from ``RAREBIRD_WEBHOOK_AUTH`` / ``_TOKEN`` / ``_TOKEN_FILE``."""
    env = os.environ if env is None else env
    kind = env.get("RAREBIRD_WEBHOOK_AUTH")
    if not kind:
        return {}
    token = env.get("RAREBIRD_WEBHOOK_TOKEN")
    path = env.get("RAREBIRD_WEBHOOK_TOKEN_FILE")
    if token is None and path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SinkError(f"RAREBIRD_WEBHOOK_TOKEN_FILE: cannot read {path}: "
                            f"{exc.strerror or exc}") from None  # fmt: skip
    return auth_headers(kind, token, where="RAREBIRD_WEBHOOK_AUTH")


class WebhookSink:
    def __init__(
        self, url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SinkError(f"{url}: a webhook needs an http:// or https:// URL")
        self.url = url
        self._parts = parts
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.delivered = 0

    @property
    def name(self) -> str:
        return self.url

    def write(self, alerts: Sequence[Alert]) -> None:
        for n, alert in enumerate(alerts):
            error, retryable, retry_after = self._post(alert)
            if error:
                raise SinkError(f"{self.url}: {error}", delivered=n, retryable=retryable,
                                retry_after=retry_after)  # fmt: skip
            self.delivered += 1

    def close(self) -> None:
        pass

    def _post(self, alert: Alert) -> tuple[str, bool, float | None]:
        """('', ...) when delivered; else (error, retryable, Retry-After)."""
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
            "Idempotency-Key": f"{alert.id}-{alert.revision}",
            "X-Rarebird-Alert-Id": alert.id,
            "X-Rarebird-Alert-Revision": str(alert.revision),
            **self.headers,
        }
        try:
            conn.request("POST", path, body=orjson.dumps(alert.doc), headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
            retry_after = _retry_after(resp.getheader("Retry-After"))
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            return f"{type(exc).__name__}: {exc}", True, None
        finally:
            conn.close()
        if 200 <= status < 300:
            return "", False, None
        return f"HTTP {status}", status in RETRYABLE_STATUS or status >= 500, retry_after


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
