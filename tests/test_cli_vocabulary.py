"""One vocabulary across commands, and no silent surprises, as a newcomer meets them: the store
from ``RAREBIRD_STORE``, no command that reads a store creating one, ``--since/--until`` with
relative times everywhere (old spellings still accepted), ``--by`` for the analyst, typos refused
when they would otherwise be stored, ``--format csv`` on every table, every option with help."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rarebird.cli import main
from rarebird.rules.executor import RuleExecutor
from rarebird.store.adapters import SqliteRuleStore
from tests.rule_support import at, make_store, record, rule, write


@pytest.fixture
def store_path(tmp_path: Path) -> str:
    store = make_store(tmp_path)
    write(store, record(at(0), "alice", 80, hosts=("web-1",)),
          record(at(0), "bob", 40, hosts=("db-1",)))  # fmt: skip
    write(store, record(at(15), "carol", 60, hosts=("web-1", "web-2")))
    ex = RuleExecutor(SqliteRuleStore(store), rule())
    ex.run(at(15))
    ex.run(at(30))
    store.close()
    return str(tmp_path / "store.db")


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args), env=env)
    return res.exit_code, res.stdout, res.stderr


def users(out: str) -> list[str]:
    return [json.loads(line)["user"]["name"][0] for line in out.splitlines()]


def test_the_store_comes_from_the_environment(store_path: str, tmp_path: Path) -> None:
    code, out, _ = cli("alerts", "list", "--format", "ndjson", env={"RAREBIRD_STORE": store_path})
    assert (code, users(out)) == (0, ["carol", "alice", "bob"])
    # --store still wins over the environment
    code, _, err = cli("alerts", "list", "--store", str(tmp_path / "other.db"),
                       env={"RAREBIRD_STORE": store_path})  # fmt: skip
    assert code == 2
    assert "RAREBIRD_STORE" in cli("alerts", "list", "--help")[1]


@pytest.mark.parametrize(
    "argv",
    [["results"], ["alerts", "list"], ["alerts", "show", "abc"], ["alerts", "ack", "abc"],
     ["triage", "alice@2026-03-02T12:00:00Z"], ["status"], ["snapshots", "list"],
     ["job", "stats"], ["exceptions", "list"], ["value-lists", "list"], ["rule", "run"]],
)  # fmt: skip
def test_a_command_that_reads_a_store_never_creates_one(tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "typo.db"
    code, out, err = cli(*argv, "--store", str(missing))
    assert code == 2
    assert err == (
        f"rarebird: error: {missing}: no such store (give --store PATH or set RAREBIRD_STORE; "
        "'rarebird job run' or 'rarebird detect' creates one)\n"
    )
    assert not missing.exists()
    assert list(tmp_path.iterdir()) == []


def test_time_filters_are_since_and_until_with_relative_times(store_path: str) -> None:
    s = ("--store", store_path, "--format", "ndjson")
    assert users(cli("alerts", "list", *s, "--since", "2026-03-02T12:10:00Z")[1]) == ["carol"]
    assert users(cli("alerts", "list", *s, "--until", "2026-03-02T12:10:00Z")[1]) == [
        "alice",
        "bob",
    ]
    # 'results' had --start/--end: they still work, and say the same as --since/--until

    def recs(*a: str) -> list[str]:
        return [json.loads(x)["by_field_value"] for x in cli("results", *s, *a)[1].splitlines()]

    assert recs("--since", "2026-03-02T12:10:00Z") == ["carol"]
    assert recs("--start", "2026-03-02T12:10:00Z") == ["carol"]
    assert recs("--until", "2026-03-02T12:10:00Z") == ["alice", "bob"]  # by score
    # a relative time: these anomalies are long before 7 days ago
    assert recs("--since", "7d") == []
    assert len(recs("--since", "3650d")) == 3
    code, _, err = cli("results", "--store", store_path, "--since", "last tuesday")
    assert code == 2
    assert "Invalid value for '--since'" in err
    help_text = cli("results", "--help")[1]
    assert "--since TIME" in help_text
    assert "--start" not in help_text


def test_sort_by_score(store_path: str) -> None:
    out = cli("alerts", "list", "--store", store_path, "--format", "ndjson", "--sort", "score")[1]
    assert users(out) == ["alice", "carol", "bob"]


def test_typos_are_refused_instead_of_stored(store_path: str, tmp_path: Path) -> None:
    alice = json.loads(cli("alerts", "list", "--store", store_path, "--format", "json",
                           "--user", "alice")[1])[0]["kibana.alert.uuid"]  # fmt: skip
    code, _, err = cli("alerts", "close", "--store", store_path, "--reason", "false_postive", alice)
    assert code == 2
    assert "'false_postive' is not a closing reason (did you mean false_positive?)" in err
    code, out, _ = cli("alerts", "close", "--store", store_path, "--reason",
                       "seen in the change ticket", "--by", "ann", alice)  # fmt: skip
    assert (code, out) == (0, f"{alice}  closed\n")
    doc = json.loads(cli("alerts", "show", "--store", store_path, "--format", "json", alice)[1])
    assert doc["kibana.alert.workflow_reason"] == "seen in the change ticket"
    assert doc["rarebird.workflow.analyst"] == "ann"  # Kibana's workflow_user is a profile id
    assert doc.get("kibana.alert.workflow_user") is None

    code, _, err = cli("exceptions", "add", "--store", store_path, "--entry", "usr.name is alice")
    assert code == 2
    assert "'usr.name' is not an ECS field" in err
    assert "did you mean user.name?" in err
    code, _, err = cli("exceptions", "add", "--store", store_path,
                       "--entry", "user.name in-list admins")  # fmt: skip
    assert code == 2
    assert "no value list 'admins'" in err
    assert cli("exceptions", "list", "--store", store_path, "--format", "json")[1] == "[]\n"
    # the same, done right: the list imported, then the entry, and a custom field on request
    admins = tmp_path / "admins.txt"
    admins.write_text("alice\nbob\n")
    assert (
        cli("value-lists", "import", "--store", store_path, str(admins), "--id", "admins")[0] == 0
    )
    assert cli("exceptions", "add", "--store", store_path,
               "--entry", "user.name in-list admins")[0] == 0  # fmt: skip
    assert cli("exceptions", "add", "--store", store_path, "--any-field",
               "--entry", "labels_custom.team is sre")[0] == 0  # fmt: skip
    items = json.loads(cli("exceptions", "list", "--store", store_path, "--format", "json")[1])
    assert [i["entries"][0]["field"] for i in items] == ["user.name", "labels_custom.team"]


def test_csv_on_every_table(store_path: str) -> None:
    code, out, _ = cli("alerts", "list", "--store", store_path, "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["alert", "anomaly time", "user", "host", "process", "score", "anomaly",
                       "severity", "status", "dups"]  # fmt: skip
    assert [(r[2], r[3], r[5]) for r in rows[1:]] == [
        ("carol", "web-1, web-2", "60.0"),
        ("alice", "web-1", "80.0"),
        ("bob", "db-1", "40.0"),
    ]
    assert len(rows[1][0]) == 64  # whole ids in csv
    job = ("--job-id", "v3_linux_network_connection_discovery")
    code, out, _ = cli("status", "--store", store_path, *job, "--format", "csv")
    assert code == 0
    assert "model_size_stats.memory_status,\n" in out  # no job state yet: empty, not None


def test_status_prints_no_python_reprs(store_path: str) -> None:
    job = ("--job-id", "v3_linux_network_connection_discovery")
    code, out, _ = cli("status", "--store", store_path, *job)
    assert code == 0
    assert "None" not in out
    assert "['" not in out
    assert "{" not in out
    assert "memory_status                     -\n" in out
    assert "snapshots                         0\n" in out


def _commands(group: click.Group, ctx: click.Context, prefix: str = "") -> list[tuple[str, click.Command]]:  # fmt: skip
    out = []
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        assert cmd is not None, name
        out.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, ctx, f"{prefix}{name} "))
    return out


def test_every_command_and_option_has_help() -> None:
    ctx = click.Context(main)
    missing = []
    for name, cmd in _commands(main, ctx):
        if not (cmd.help or cmd.short_help):
            missing.append(name)
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden and not param.help:
                missing.append(f"{name} {param.opts[0]}")
    assert missing == []
    for name, _ in _commands(main, ctx):
        code, out, _ = cli(*name.split(), "--help")
        assert code == 0, name
        assert "Usage: " in out


def test_the_command_list_matches_the_commands_own_help_without_importing_them() -> None:
    """``rarebird --help`` lists every command from LazyGroup.SUMMARIES (a fresh process must
    not import the job's modules to print it): the listing is the one the
    commands themselves give once imported, at a narrow and a wide terminal."""
    import os
    import subprocess
    import sys

    from rarebird.cli._common import LazyGroup

    script = (
        "import importlib, sys\n"
        "from rarebird.cli._common import LazyGroup, main\n"
        "if sys.argv[1] == 'all':\n"
        "    for module in set(LazyGroup.MODULES.values()):\n"
        "        importlib.import_module(module)\n"
        "main(['--help'], prog_name='rarebird', standalone_mode=False)\n"
        "print('rarebird.job' in sys.modules)\n"
    )
    for columns in ("80", "200"):
        env = {**os.environ, "COLUMNS": columns}
        lazy, full = (
            subprocess.run(
                [sys.executable, "-c", script, mode],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout  # fmt: skip
            for mode in ("lazy", "all")
        )
        assert lazy.endswith("False\n")  # the job's modules were not imported
        assert full.endswith("True\n")
        assert lazy[: -len("False\n")] == full[: -len("True\n")]
        for name in LazyGroup.MODULES:
            assert f"\n  {name} " in lazy
    assert set(LazyGroup.SUMMARIES) == set(LazyGroup.MODULES)


def test_results_does_not_import_the_readers_or_the_engine(tmp_path: Path) -> None:
    """``rarebird results`` answers without importing job run's modules (NumPy, the readers,
    the engine): a third of the time of a call that did."""
    import subprocess
    import sys

    from rarebird.store import open_store

    store = tmp_path / "empty.db"
    open_store(str(store)).close()
    script = (
        "import sys\n"
        "from rarebird.cli._common import main\n"
        "try:\n"
        f"    main(['results', '--store', {str(store)!r}, '--format', 'json'],"
        " prog_name='rarebird')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'rarebird.run.engine',"
        " 'rarebird.sources.ecs') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)  # fmt: skip
    assert proc.stdout.splitlines() == ["[]", "[]"]
