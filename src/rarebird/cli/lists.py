"""``rarebird value-lists import|list|remove``: value lists for ``in-list`` exception entries."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from rarebird.cli._common import EXIT_USAGE, handle_errors, main
from rarebird.cli._output import Column, Rows, echo, emit, format_option
from rarebird.cli._rules_common import open_rule_store, store_option
from rarebird.clock import SYSTEM_CLOCK


@main.group("value-lists")
def value_lists() -> None:
    """Value lists for 'in-list' exception entries (Elastic's /api/lists)."""


@value_lists.command("import")
@store_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--id", "list_id", help="List id [default: the file name].")
@click.option("--type", "list_type", default="keyword", show_default=True,
              help="keyword, ip, ip_range, text, ...")  # fmt: skip
@click.option("--name", help="Display name.")
@click.option("--append", is_flag=True, help="Add to the list instead of replacing its values.")
@handle_errors
def value_lists_import(store_path: str, path: str, list_id: str | None, list_type: str,
                       name: str | None, append: bool) -> None:  # fmt: skip
    """Import a value list: one value per line (a file of user names, say)."""
    from rarebird.rules.exceptions import ValueList, read_value_list_file
    from rarebird.store.exceptions import save_value_list

    values = read_value_list_file(path)
    lid = list_id or Path(path).name
    store = open_rule_store(store_path, create=True)
    try:
        save_value_list(store, ValueList(lid, list_type, frozenset(values), name or lid),
                        SYSTEM_CLOCK.now(), replace_values=not append)  # fmt: skip
    finally:
        store.close()
    echo(f"{lid}: {len(set(values))} value(s) ({list_type})")


@value_lists.command("list")
@store_option
@format_option()
@handle_errors
def value_lists_list(store_path: str, fmt: str) -> None:
    """Value lists in the store."""
    from rarebird.store.exceptions import load_value_lists

    store = open_rule_store(store_path)
    try:
        lists = load_value_lists(store)
    finally:
        store.close()
    emit(Rows.of([Column("id", max_width=40), "type", Column("values", "number"),
                  Column("name", ratio=1)],
                 [[v.id, v.type, len(v.values), v.name] for v in lists.values()],
                 empty="(no value lists)",
                 docs=[{"id": v.id, "type": v.type, "name": v.name, "values": sorted(v.values)}
                       for v in lists.values()]), fmt)  # fmt: skip


@value_lists.command("remove")
@store_option
@click.argument("list_id")
@handle_errors
def value_lists_remove(store_path: str, list_id: str) -> None:
    """Remove a value list (entries that use it stop matching)."""
    from rarebird.store.exceptions import delete_value_list

    store = open_rule_store(store_path)
    try:
        found = delete_value_list(store, list_id)
    finally:
        store.close()
    if not found:
        echo(f"rarebird: error: no value list {list_id!r}", err=True)
        sys.exit(EXIT_USAGE)
    echo(f"removed {list_id}")
