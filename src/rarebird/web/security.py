"""Who may see the pages, and what a page may do in the browser.

- **Token login**, as Jupyter does: ``/login?token=...&next=/alerts`` (or the login form)
  compares the token in constant time and sets a session cookie (``HttpOnly``,
  ``SameSite=Strict``, ``Path=/``); sessions live in the process, so a restart logs everyone out.
- **CSRF**: every state change is a POST whose form carries ``csrf``, an HMAC of the session id
  under a per-process secret; a POST without it, or from another origin, is refused (403).
- **Headers**: a strict Content-Security-Policy (``default-src 'self'``, no inline script or
  style), ``nosniff``, no framing, no referrer beyond the site, no caching of pages.
- **Hosts**: on a loopback bind only loopback ``Host`` headers are served (DNS rebinding).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "rarebird_session"
#: the largest form body a page sends (bulk actions on a page of ids)
MAX_FORM_BYTES = 64 * 1024
#: a token given by the operator must be at least this long
MIN_TOKEN_LENGTH = 16

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on form
    # posts, and the origin check below could not tell ours from a forged one
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def new_token() -> str:
    """A fresh login token (printed in the login URL)."""
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """Whether binding to ``host`` keeps the pages on this machine."""
    h = host.strip("[]")
    return h in ("localhost", "::1") or h.startswith("127.")


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    csrf: str


class Sessions:
    """The login token, the sessions it opened, and their CSRF tokens."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._secret = secrets.token_bytes(32)
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def check_token(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def open(self) -> Session:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._ids.add(sid)
        return Session(sid, self.csrf_for(sid))

    def close(self, sid: str) -> None:
        with self._lock:
            self._ids.discard(sid)

    def get(self, request: Request) -> Session | None:
        sid = request.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            known = sid in self._ids
        return Session(sid, self.csrf_for(sid)) if known else None

    def csrf_for(self, sid: str) -> str:
        return hmac.new(self._secret, sid.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session, given: str) -> bool:
        return hmac.compare_digest(given.encode(), session.csrf.encode())


def safe_next(target: str | None, default: str = "/alerts") -> str:
    """A redirect target only within this site (no scheme, no host, no ``//``).

    >>> safe_next("/alerts?status=open"), safe_next("//evil.example/"), safe_next("https://x/")
    ('/alerts?status=open', '/alerts', '/alerts')
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


async def read_form(request: Request) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body, at most :data:`MAX_FORM_BYTES`."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise FormError(415, "expected a form (application/x-www-form-urlencoded)")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(413, "form too large")
    try:
        return parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=2000)
    except (UnicodeDecodeError, ValueError):
        raise FormError(400, "malformed form") from None


class FormError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def same_origin(request: Request) -> bool:
    """A POST's ``Origin`` (when the browser sends one) names this server."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response, and ``no-store`` to pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(SECURITY_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
