"""What every page handler gets: the app's state (:class:`UI`), the request's context
(:class:`Ctx`), and the two errors a page raises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from rarebird.clock import Clock
from rarebird.definitions.rule import RuleConfig
from rarebird.explain import SEVERITY_COLOURS, severity
from rarebird.store import Store, open_store
from rarebird.timeutil import from_epoch_ms, iso
from rarebird.web.security import (
    Session,
    Sessions,
)

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Ctx:
    """What a page handler gets: the request, its session, its form (POST) and the app."""

    ui: UI
    request: Request
    session: Session
    form: dict[str, list[str]]

    def param(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0].strip() if values else default

    def fields(self, name: str) -> list[str]:
        return [v.strip() for v in self.form.get(name, []) if v.strip()]

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return self.ui.render(template, self.session, status=status, **context)


Page = Callable[[Ctx], Response]


class UI:
    """The app's state: where the store is, the rule, the sessions, the templates."""

    def __init__(self, store_path: str, token: str, rule: RuleConfig, clock: Clock) -> None:
        self.store_path = store_path
        self.rule = rule
        self.clock = clock
        self.sessions = Sessions(token)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(severity=severity, colours=SEVERITY_COLOURS)
        self.env.filters.update(
            when=lambda d: d.strftime("%Y-%m-%d %H:%M"),
            score=lambda s: f"{s:.2f}",
            num=lambda n: f"{n:,}",
            quote=lambda s: quote(str(s), safe=""),
            ms=lambda v: "-" if v is None else iso(from_epoch_ms(int(v))),
        )

    @contextmanager
    def store(self) -> Iterator[Store]:
        store = open_store(self.store_path)
        try:
            yield store
        finally:
            store.close()

    def render(
        self, template: str, session: Session | None, status: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            csrf=session.csrf if session else "", **context
        )
        return HTMLResponse(html, status_code=status)

    def error(self, session: Session | None, status: int, message: str) -> HTMLResponse:
        return self.render("error.html", session, status=status, status_code=status, message=message)  # fmt: skip


class BadRequest(Exception):
    """A parameter a page cannot use (400)."""


class NotFound(Exception):
    """What the page names is not in the store (404)."""
