"""The triage pages as an ASGI app (:func:`create_app`), and :func:`run_ui` to serve them.

Server-rendered HTML (Jinja2, autoescaped), inline SVG for the pictures, one static CSS file
and one small script; nothing is loaded from elsewhere. Each request opens the store, reads
what its page needs through :mod:`rarebird.store.views` and closes it, in a worker thread.
``rarebird serve`` can mount the same app (the factory takes a store path, not a store).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from rarebird.clock import SYSTEM_CLOCK, Clock
from rarebird.definitions.rule import load_rule
from rarebird.errors import RarebirdError
from rarebird.store import open_store
from rarebird.web.context import HERE, UI, BadRequest, Ctx, NotFound, Page
from rarebird.web.security import (
    LOOPBACK_HOSTS,
    MIN_TOKEN_LENGTH,
    SESSION_COOKIE,
    FormError,
    SecurityHeaders,
    is_loopback,
    new_token,
    read_form,
    safe_next,
    same_origin,
)


def _endpoint(ui: UI, page: Page, *, post: bool = False) -> Callable[[Request], Awaitable[Response]]:  # fmt: skip
    async def endpoint(request: Request) -> Response:
        session = ui.sessions.get(request)
        if session is None:
            if post:
                return PlainTextResponse("not logged in", status_code=403)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        form: dict[str, list[str]] = {}
        if post:
            if not same_origin(request):
                return ui.error(session, 403, "cross-origin request refused")
            try:
                form = await read_form(request)
            except FormError as exc:
                return ui.error(session, exc.status, str(exc))
            given = form.get("csrf", [""])[0]
            if not ui.sessions.csrf_ok(session, given):
                return ui.error(session, 403, "missing or wrong CSRF token: reload the page")
        ctx = Ctx(ui, request, session, form)
        try:
            return await run_in_threadpool(page, ctx)
        except BadRequest as exc:
            return ui.error(session, 400, str(exc))
        except NotFound as exc:
            return ui.error(session, 404, str(exc))
        except RarebirdError as exc:
            return ui.error(session, 400, str(exc))

    return endpoint


def _login(ui: UI) -> Callable[[Request], Awaitable[Response]]:
    async def login(request: Request) -> Response:
        target = safe_next(request.query_params.get("next"))
        token = request.query_params.get("token")
        if request.method == "POST":
            try:
                form = await read_form(request)
            except FormError as exc:
                return ui.error(None, exc.status, str(exc))
            token = form.get("token", [""])[0]
            target = safe_next(form.get("next", [""])[0])
        if token is None:
            return ui.render("login.html", None, next=target, failed=False)
        if not ui.sessions.check_token(token):
            return ui.render("login.html", None, status=403, next=target, failed=True)
        session = ui.sessions.open()
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE, session.id, httponly=True, samesite="strict", path="/",
            secure=request.url.scheme == "https",
        )  # fmt: skip
        return response

    return login


def _logout(ctx: Ctx) -> Response:
    ctx.ui.sessions.close(ctx.session.id)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def create_app(
    store_path: str,
    *,
    token: str,
    rule_path: str | None = None,
    allowed_hosts: tuple[str, ...] | None = LOOPBACK_HOSTS,
    clock: Clock = SYSTEM_CLOCK,
) -> Starlette:
    """The triage pages over the store at ``store_path``, behind ``token``.

    ``allowed_hosts`` are the ``Host`` names served (None: any; the default: loopback only).
    ``rule_path`` is the rule exceptions are added to (default: the packaged rule)."""
    from rarebird.web import explorer, pages

    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the UI token must be at least {MIN_TOKEN_LENGTH} characters")
    open_store(store_path).close()  # create and migrate once, before serving
    ui = UI(store_path, token, load_rule(rule_path), clock)

    def get(path: str, page: Page) -> Route:
        return Route(path, _endpoint(ui, page), methods=["GET"])

    def post(path: str, page: Page) -> Route:
        return Route(path, _endpoint(ui, page, post=True), methods=["POST"])

    routes = [
        Route("/", lambda r: RedirectResponse("/alerts", status_code=303), methods=["GET"]),
        Route("/login", _login(ui), methods=["GET", "POST"]),
        post("/logout", _logout),
        get("/alerts", pages.alerts_page),
        post("/alerts/status", pages.bulk_status),
        get("/alerts/{alert_id}", pages.alert_page),
        post("/alerts/{alert_id}/status", pages.alert_status),
        post("/alerts/{alert_id}/exception", pages.alert_exception),
        get("/anomalies", explorer.anomalies_page),
        get("/users/{user:path}", explorer.user_page),
        get("/jobs", explorer.jobs_page),
        Route("/healthz", lambda r: PlainTextResponse("ok"), methods=["GET"]),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    return Starlette(routes=routes, middleware=middleware)


def login_url(host: str, port: int, token: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/login?token={token}&next=/alerts"


def pages_for(
    store_path: str, *, host: str, port: int, token: str | None, rule_path: str | None = None
) -> tuple[Starlette, str]:
    """The pages to serve on ``host:port`` and the login URL to announce. Without a ``token``
    one is generated (and shown in the URL); a bind beyond loopback needs a token given by the
    operator (the URL then names ``$RAREBIRD_UI_TOKEN``)."""
    generated = token is None
    if token is None:
        if not is_loopback(host):
            raise RarebirdError(
                f"refusing to serve the pages on {host} without a token: set RAREBIRD_UI_TOKEN "
                "(or bind to 127.0.0.1)"
            )
        token = new_token()
    hosts = (*LOOPBACK_HOSTS, host) if is_loopback(host) else None
    app = create_app(store_path, token=token, rule_path=rule_path, allowed_hosts=hosts)
    return app, login_url(host, port, token if generated else "$RAREBIRD_UI_TOKEN")


def run_ui(
    store_path: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token: str | None = None,
    rule_path: str | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the pages with uvicorn until interrupted. Without a ``token`` one is generated
    and the login URL announced; a bind beyond loopback needs a token given by the operator."""
    import uvicorn

    app, url = pages_for(store_path, host=host, port=port, token=token, rule_path=rule_path)
    announce(f"rarebird ui: serving {store_path}; log in at {url}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        http="h11",
        timeout_keep_alive=5,
        limit_concurrency=64,
        h11_max_incomplete_event_size=16 * 1024,
        server_header=False,
        proxy_headers=False,
    )
