"""``rarebird outputs list|replay``: where alerts stand with each output, and sending again what
an output refused (dead letters) or has not taken yet (the outbox)."""

from __future__ import annotations

import sys

import click

from rarebird.cli._common import (
    EXIT_INPUT,
    handle_errors,
    main,
    open_existing_store,
    print_json,
    print_table,
    store_option,
)
from rarebird.cli._output import format_option


@main.group()
def outputs() -> None:
    """Alert outputs: delivery state, dead letters, replay."""


@outputs.command("list")
@store_option
@format_option(("table", "json"))
@handle_errors
def outputs_list(store_path: str, fmt: str) -> None:
    """Each output: alerts waiting in the outbox, dead letters (and why)."""
    from rarebird.sinks.escape import escape_controls
    from rarebird.store.delivery import dead_letters, delivery_states

    with open_existing_store(store_path) as store:
        states = delivery_states(store)
        letters = dead_letters(store)
    if fmt == "json":
        print_json({
            "outputs": [{"output": s.sink, "pending": s.pending, "dead_letters": s.dead_letters}
                        for s in states],
            "dead_letters": [{"output": d.sink, "alert_id": d.alert.id,
                              "revision": d.alert.revision, "attempts": d.attempts,
                              "error": d.error, "at_ms": d.at_ms} for d in letters],
        })  # fmt: skip
        return
    print_table(("output", "waiting", "dead letters"),
                [(escape_controls(s.sink), s.pending, s.dead_letters) for s in states],
                empty="(no outputs)")  # fmt: skip
    if letters:
        click.echo("")
        print_table(("output", "alert", "revision", "error"),
                    [(escape_controls(d.sink), d.alert.id, d.alert.revision,
                      escape_controls(d.error)) for d in letters])  # fmt: skip


@outputs.command("replay")
@store_option
@click.option("--output", "specs", multiple=True, metavar="SPEC",
              help="Only this output (repeatable; default: every output the store knows).")  # fmt: skip
@handle_errors
def outputs_replay(store_path: str, specs: tuple[str, ...]) -> None:
    """Send the dead letters again, then what waits in the outbox. Exits 2 when some alerts
    could still not be delivered (they are kept)."""
    from rarebird.run.delivery import Delivery, RetryPolicy
    from rarebird.sinks import SinkError, open_sink
    from rarebird.store import open_store
    from rarebird.store.delivery import (
        dead_letters,
        delivery_states,
        pending_for,
        remove_dead_letters,
    )

    left = 0
    with open_store(store_path, create=False) as store:
        names = list(specs) or [s.sink for s in delivery_states(store)]
        for name in names:
            sink = open_sink(name)
            try:
                sent: list[int] = []
                letters = dead_letters(store, name)
                for letter in letters:
                    try:
                        sink.write([letter.alert])
                    except SinkError as exc:
                        click.echo(f"rarebird: {name}: alert {letter.alert.id}: {exc}", err=True)
                        continue
                    sent.append(letter.id)
                remove_dead_letters(store, sent)
                Delivery(store, [sink], policy=RetryPolicy(retries=2, backoff=0.5,
                                                           max_backoff=2.0)).deliver()  # fmt: skip
                waiting = pending_for(store, name)
            finally:
                sink.close()
            left += len(letters) - len(sent) + waiting
            click.echo(f"rarebird: {name}: {len(sent)} dead letter(s) sent, "
                       f"{len(letters) - len(sent)} kept; {waiting} alert(s) still waiting in "
                       "the outbox")  # fmt: skip
    if left:
        sys.exit(EXIT_INPUT)
