"""``rarebird exceptions add/list/remove/import/export`` and ``rarebird value-lists``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from rarebird.cli import main
from tests.test_exceptions_store import KIBANA_EXPORT


def cli(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(main, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_add_list_remove(tmp_path: Path) -> None:
    s = str(tmp_path / "s.db")
    code, out, err = cli(
        "exceptions", "add", "--store", s, "--name", "night ops",
        "--entry", "user.name is-one-of ops1,ops2", "--entry", "host.name does-not-match prod-*",
        "--entry", "influencers>influencer_field_name is host.name",
        "--entry", "influencers>influencer_field_values is web-1",
        "--window", "Mon-Fri 22:00-06:00 Europe/Berlin",
        "--allow-parent", "ansible*", "--allow-script", "/opt/checks/*.sh",
    )  # fmt: skip
    assert code == 0, err
    item_id, _, rest = out.strip().partition("  ")
    assert rest == (
        "night ops: user.name is one of [ops1, ops2] AND host.name does not match prod-* AND "
        "influencers {influencer_field_name is host.name AND influencer_field_values is web-1} "
        "AND during Mon,Tue,Wed,Thu,Fri 22:00-06:00 Europe/Berlin AND parent in [ansible*] AND "
        "script in [/opt/checks/*.sh]"
    )
    assert err == "added to list rule_default_c28c4d8c-f014-40ef-88b6-79a1d67cd499\n"
    code, out, _ = cli("exceptions", "list", "--store", s, "--format", "json")
    (doc,) = json.loads(out)
    assert doc["item_id"] == item_id
    assert doc["entries"][2] == {
        "field": "influencers", "type": "nested",
        "entries": [
            {"field": "influencer_field_name", "operator": "included", "type": "match",
             "value": "host.name"},
            {"field": "influencer_field_values", "operator": "included", "type": "match",
             "value": "web-1"},
        ],
    }  # fmt: skip
    code, out, _ = cli("exceptions", "remove", "--store", s, item_id)
    assert (code, out) == (0, f"removed {item_id}  night ops\n")
    code, out, _ = cli("exceptions", "list", "--store", s)
    assert out == "(no exceptions)\n"
    code, _, err = cli("exceptions", "remove", "--store", s, item_id)
    assert (code, err) == (1, f"rarebird: error: no exception item {item_id!r}\n")


def test_add_errors(tmp_path: Path) -> None:
    s = str(tmp_path / "s.db")
    code, _, err = cli("exceptions", "add", "--store", s, "--entry", "user.name equals bob")
    assert code == 2
    assert "unknown operator 'equals'" in err
    code, _, err = cli("exceptions", "add", "--store", s, "--window", "Sat 01:00-02:00 Moon/Base")
    assert code == 2
    assert "unknown time zone 'Moon/Base'" in err
    code, _, err = cli("exceptions", "add", "--store", s)
    assert code == 2
    assert "give at least one --entry, --window, --allow-parent or --allow-script" in err
    code, _, err = cli("exceptions", "add", "--store", s, "--list", "nope", "--entry", "a exists")
    assert code == 2
    assert "no exception list 'nope'" in err


def test_import_export_value_lists(tmp_path: Path) -> None:
    s = str(tmp_path / "s.db")
    src = tmp_path / "linux-admins.ndjson"
    src.write_text(KIBANA_EXPORT)
    code, out, _ = cli("exceptions", "import", "--store", s, str(src))
    assert (code, out) == (0, "lists: 1 created, 0 replaced; items: 2 created, 0 replaced, 0 already there\n")  # fmt: skip
    code, out, _ = cli("exceptions", "list", "--store", s)
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["ops-team", "contractors"]
    names = tmp_path / "contractors.txt"
    names.write_text("c1\n\nc2\n c3 \n")
    code, out, _ = cli("value-lists", "import", "--store", s, str(names))
    assert (code, out) == (0, "contractors.txt: 3 value(s) (keyword)\n")
    code, out, _ = cli("value-lists", "list", "--store", s)
    assert out.splitlines()[1].split() == ["contractors.txt", "keyword", "3", "contractors.txt"]
    code, out, _ = cli("exceptions", "export", "--store", s, "--list", "linux-admins")
    assert [json.loads(x) for x in out.splitlines()][-1]["exported_exception_list_item_count"] == 2
    code, out, _ = cli("value-lists", "remove", "--store", s, "contractors.txt")
    assert (code, out) == (0, "removed contractors.txt\n")


def test_export_elastic_only_leaves_out_rarebird_items(tmp_path: Path) -> None:
    s = str(tmp_path / "s.db")
    cli("exceptions", "add", "--store", s, "--name", "a", "--entry", "user.name is root")
    cli("exceptions", "add", "--store", s, "--name", "b", "--window", "Sun 00:00-04:00 UTC")
    code, out, err = cli("exceptions", "export", "--store", s, "--elastic-only")
    lines = [json.loads(x) for x in out.splitlines()]
    assert [x.get("name") for x in lines[1:-1]] == ["a"]
    assert "rarebird-only conditions" in err
    out_file = tmp_path / "all.ndjson"
    code, _, _ = cli("exceptions", "export", "--store", s, "-o", str(out_file))
    assert code == 0
    assert (
        json.loads(out_file.read_text().splitlines()[-1])["exported_exception_list_item_count"] == 2
    )
