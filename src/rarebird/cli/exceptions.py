"""``rarebird exceptions list|add|remove|import|export``: the rule's exception items."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from rarebird.cli._common import EXIT_USAGE, AliasedOption, handle_errors, main, time_value
from rarebird.cli._output import Column, Rows, echo, emit, escape_json
from rarebird.cli._rules_common import (
    format_option,
    load_rule,
    open_rule_store,
    rule_option,
    store_option,
)
from rarebird.clock import SYSTEM_CLOCK
from rarebird.errors import RarebirdError
from rarebird.timeutil import iso


@main.group()
def exceptions() -> None:
    """Rule exceptions: Elastic exception items, schedule windows, allow-lists."""


def _item_rows(items: Sequence[Any]) -> list[list[Any]]:
    return [[i.item_id, i.list_id, i.name, i.describe(),
             iso(i.expire_time) if i.expire_time else None] for i in items]  # fmt: skip


@exceptions.command("list")
@store_option
@rule_option
@click.option("--list", "list_id", help="Only this exception list.")
@click.option("--all", "all_lists", is_flag=True, help="Every list in the store, not only the rule's.")  # fmt: skip
@format_option()
@handle_errors
def exceptions_list(store_path: str, rule_path: str | None, list_id: str | None,
                    all_lists: bool, fmt: str) -> None:  # fmt: skip
    """The exception items the rule applies."""
    from rarebird.store.exceptions import list_ids_for_rule, load_items

    r = load_rule(rule_path)
    store = open_rule_store(store_path)
    try:
        if list_id:
            ids: list[str] | None = [list_id]
        elif all_lists:
            ids = None
        else:
            ids = list_ids_for_rule(store, r)
        items = load_items(store, ids)
    finally:
        store.close()
    columns = [Column("item_id", "id"), Column("list", max_width=40), Column("name", max_width=40),
               Column("conditions", ratio=1), Column("expires", "time")]  # fmt: skip
    emit(Rows.of(columns, _item_rows(items), empty="(no exceptions)",
                 docs=[i.to_elastic() for i in items]), fmt)  # fmt: skip


@exceptions.command("add")
@store_option
@rule_option
@click.option("--list", "list_id", help="Exception list [default: the rule's default list].")
@click.option("--name", help="Item name.")
@click.option("--description", default="", help="Item description (Kibana's description).")
@click.option("--entry", "entries", multiple=True, metavar="'FIELD OP [VALUE]'",
              help="A condition: OP is is, is-not, is-one-of, is-not-one-of (a,b,c), exists, "
                   "does-not-exist, matches, does-not-match (wildcards), in-list, not-in-list "
                   "(a value list id). Nested: 'PARENT>FIELD OP VALUE'. All must hold.")  # fmt: skip
@click.option("--window", "windows", multiple=True, metavar="'DAYS HH:MM-HH:MM ZONE'",
              help="Only during this schedule window, e.g. 'Sat,Sun 01:00-05:00 Europe/Berlin'; "
                   "any of several.")  # fmt: skip
@click.option(
    "--allow-parent",
    "parents",
    multiple=True,
    metavar="PATTERN",
    help="Allowed parent process (name or executable, fnmatch pattern).",
)
@click.option(
    "--allow-script",
    "scripts",
    multiple=True,
    metavar="PATTERN",
    help="Allowed script (in the parent's args, fnmatch pattern).",
)
@click.option(
    "--expires",
    metavar="TIME",
    callback=time_value,
    help="Stop applying at this time (ISO-8601, epoch ms, now+1d).",
)
@click.option("--comment", "comments", multiple=True,
              help="A comment on the item (why it exists, a ticket); repeatable.")  # fmt: skip
@click.option(
    "--from-alert", "from_alert", metavar="ID", help="Propose an item from this alert's fields."
)
@click.option(
    "--fields",
    default="user.name,host.name",
    show_default=True,
    help="With --from-alert: the fields to match.",
)
@click.option(
    "--with-parents",
    is_flag=True,
    help="With --from-alert: allow-list the parent processes of the events behind it.",
)
@click.option("--yes", "-y", is_flag=True, help="With --from-alert: save without asking.")
@click.option("--dry-run", is_flag=True, help="Show the item, do not save it.")
@click.option("--any-field", is_flag=True,
              help="Accept a field that is neither an ECS field nor one of the alert's own "
                   "(a custom field of your events).")  # fmt: skip
@handle_errors
def exceptions_add(
    store_path: str, rule_path: str | None, list_id: str | None, name: str | None,
    description: str, entries: tuple[str, ...], windows: tuple[str, ...],
    parents: tuple[str, ...], scripts: tuple[str, ...], expires: datetime | None,
    comments: tuple[str, ...], from_alert: str | None, fields: str, with_parents: bool,
    yes: bool, dry_run: bool, any_field: bool,
) -> None:  # fmt: skip
    """Add an exception item to the rule (or to --list)."""
    from rarebird.evidence import propose_from_alert
    from rarebird.rules.exception_items import new_item
    from rarebird.rules.exceptions import AllowList, ScheduleWindow, parse_entries
    from rarebird.rules.exceptions.fields import check_entries
    from rarebird.store.alerts import get_alert
    from rarebird.store.exceptions import (
        ensure_rule_default_list,
        list_exists,
        load_value_lists,
        save_item,
    )

    r = load_rule(rule_path)
    now = SYSTEM_CLOCK.now()
    store = open_rule_store(store_path, create=True)
    try:
        target = list_id or ensure_rule_default_list(store, r, now)
        if list_id and not list_exists(store, list_id):
            raise click.UsageError(f"no exception list {list_id!r} (import one, or omit --list)")
        if from_alert:
            item = propose_from_alert(
                store, get_alert(store, from_alert), r, now=now, list_id=target,
                fields=[f.strip() for f in fields.split(",") if f.strip()],
                with_parents=with_parents, name=name,
            )  # fmt: skip
        else:
            value_lists = load_value_lists(store)
            try:
                parsed = parse_entries(entries, value_lists)
                check_entries(parsed, value_lists, any_field=any_field)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--entry") from None
            try:
                wins = [ScheduleWindow.parse(w) for w in windows]
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--window") from None
            allow = AllowList(tuple(parents), tuple(scripts)) if parents or scripts else None
            if not parsed and not wins and allow is None:
                raise click.UsageError("give at least one --entry, --window, --allow-parent or "
                                       "--allow-script (or --from-alert)")  # fmt: skip
            item = new_item(
                list_id=target, name=name or "rarebird exception", description=description,
                entries=parsed, windows=wins, allow=allow, now=now, comments=comments,
                expire_time=expires,
            )  # fmt: skip
        echo(f"{item.item_id}  {item.name}: {item.describe()}")
        if dry_run:
            return
        if from_alert and not yes and not click.confirm("Add this exception?", default=False):
            echo("not added", err=True)
            return
        save_item(store, item)
        echo(f"added to list {target}", err=True)
    finally:
        store.close()


@exceptions.command("remove")
@store_option
@click.argument("item_id")
@handle_errors
def exceptions_remove(store_path: str, item_id: str) -> None:
    """Remove an exception item by item_id (or id)."""
    from rarebird.store.exceptions import delete_item

    store = open_rule_store(store_path)
    try:
        removed = delete_item(store, item_id)
    finally:
        store.close()
    if removed is None:
        echo(f"rarebird: error: no exception item {item_id!r}", err=True)
        sys.exit(EXIT_USAGE)
    echo(f"removed {removed.item_id}  {removed.name}")


@exceptions.command("import")
@store_option
@rule_option
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--overwrite", is_flag=True, help="Replace lists and items that exist.")
@click.option("--no-attach", is_flag=True, help="Do not make the rule apply the imported lists.")
@handle_errors
def exceptions_import(store_path: str, rule_path: str | None, path: str, overwrite: bool,
                      no_attach: bool) -> None:  # fmt: skip
    """Import Kibana exception-list NDJSON (lists and items); the rule applies them."""
    from rarebird.rules.exceptions import parse_exceptions_ndjson
    from rarebird.store.exceptions import import_exceptions

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RarebirdError(f"{path}: cannot read: {exc.strerror or exc}") from None
    parsed = parse_exceptions_ndjson(text, path)
    r = load_rule(rule_path)
    store = open_rule_store(store_path, create=True)
    try:
        summary = import_exceptions(store, parsed, overwrite=overwrite,
                                    attach_rule_id=None if no_attach else r.rule_id)  # fmt: skip
    finally:
        store.close()
    echo(
        f"lists: {summary.lists_created} created, {summary.lists_updated} replaced; items: "
        f"{summary.items_created} created, {summary.items_updated} replaced, "
        f"{summary.items_skipped} already there"
    )
    for err in summary.errors:
        echo(f"rarebird: error: {err}", err=True)
    if summary.errors:
        sys.exit(EXIT_USAGE)


@exceptions.command("export")
@store_option
@rule_option
@click.option("--list", "list_ids", multiple=True, help="Lists to export [default: the rule's].")
@click.option("--file", "-f", "--output", "-o", "out", cls=AliasedOption, metavar="FILE",
              help="Write here [default: stdout].")  # fmt: skip
@click.option(
    "--elastic-only",
    is_flag=True,
    help="Leave out items with rarebird-only conditions (windows, allow-lists).",
)
@handle_errors
def exceptions_export(store_path: str, rule_path: str | None, list_ids: tuple[str, ...],
                      out: str | None, elastic_only: bool) -> None:  # fmt: skip
    """Export exception lists and items as Kibana NDJSON."""
    from rarebird.rules.exceptions import exceptions_to_ndjson
    from rarebird.store.exceptions import list_ids_for_rule, load_items, load_lists

    r = load_rule(rule_path)
    store = open_rule_store(store_path)
    try:
        ids = list(list_ids) or list_ids_for_rule(store, r)
        lists = load_lists(store, ids)
        items = load_items(store, [x.list_id for x in lists])
    finally:
        store.close()
    left_out = [i for i in items if not i.is_elastic_only] if elastic_only else []
    items = [i for i in items if i not in left_out]
    text = exceptions_to_ndjson(lists, items)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.buffer.write(escape_json(text.encode()))
        sys.stdout.buffer.flush()
    for i in left_out:
        echo(f"rarebird: left out {i.item_id} ({i.name}): rarebird-only conditions", err=True)
