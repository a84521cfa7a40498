"""``stackyard rag``: create, sync (only what changed), list, show, query, set, delete, with an
embedding model behind the gateway's router (the fake OpenAI upstream)."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fakes.openai_upstream import FakeOpenAI
from tests.rag.conftest import cli_config, rag_command


def test_a_collection_from_the_terminal(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    run = rag_command(cli_config(tmp_path, fake_openai, "rag-cli"))
    folder = tmp_path / "wiki"
    folder.mkdir()
    (folder / "deploy.md").write_text("# Deploy\n\nRun make release to deploy on Fridays.\n")
    (folder / "oncall.txt").write_text("The on-call rota changes every Monday.")
    created = run("create", "wiki", "--source", str(folder), "--chunk-size", "64")
    assert "Created wiki: embed, 64-token chunks" in created
    out = run("sync", "wiki")
    assert "2 added, 0 changed, 0 deleted, 0 unchanged; 2 chunks embedded" in out
    (folder / "oncall.txt").write_text("The on-call rota changes every Tuesday.")
    stat = (folder / "oncall.txt").stat()
    os.utime(folder / "oncall.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    out = run("sync", "wiki")
    assert "0 added, 1 changed, 0 deleted, 1 unchanged; 1 chunks embedded" in out
    assert (tmp_path / "rag.db").exists()  # the embedded store, next to the config

    listed = run("list")
    assert "wiki" in listed
    assert "embed" in listed
    shown = run("show", "wiki")
    assert '"documents": 2' in shown
    found = run("query", "wiki", "when does the rota change", "--mode", "keyword")
    assert found.splitlines()[0].startswith("[1] wiki/oncall.txt")
    assert "Tuesday" in found
    assert "chunk_overlap must be smaller" in run("set", "wiki", "--chunk-size", "32", code=2)
    assert "Updated wiki" in run("set", "wiki", "--chunk-size", "48")
    out = run("sync", "wiki")  # new chunking: re-chunked, but the same chunks keep vectors
    assert "0 added, 2 changed, 0 deleted, 0 unchanged; 0 chunks embedded, 2 reused" in out

    assert "no collection named 'nope'" in run("sync", "nope", code=1)
    refused = run("create", "other", "--model", "missing", code=2)
    assert "no model 'missing'" in refused
    assert "Deleted wiki" in run("delete", "wiki", "--yes")
    assert "No collections yet" in run("list")


def test_team_collections_from_the_terminal(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    """The CLI acts as the master key: NAME is its own collection, ``--team`` (a team's name
    or id) a team's; two of one name never stand in for each other."""
    from stackyard.store import admin
    from stackyard.store.db import Database

    run = rag_command(cli_config(tmp_path, fake_openai, "rag-cli-teams"))
    assert "No collections yet" in run("list")  # migrates the database
    db = Database(f"sqlite:///{tmp_path / 'main.db'}")
    red = admin.create_team(db, "red")["id"]
    db.dispose()
    for owner, text in (
        ("own", "The master's wiki: backups run at 2am."),
        ("red", "Red: deploys on Fridays."),
    ):
        folder = tmp_path / owner / "wiki"
        folder.mkdir(parents=True)
        (folder / "page.txt").write_text(text)
    made = run("create", "wiki", "--source", str(tmp_path / "own" / "wiki"))
    assert made.endswith("Next: stackyard rag sync wiki\n")
    made = run("create", "wiki", "--team", "red", "--source", str(tmp_path / "red" / "wiki"))
    assert made.endswith("Next: stackyard rag sync wiki --team red\n")
    assert "a collection named 'wiki' exists" in run("create", "wiki", "--team", red, code=2)

    assert "1 added" in run("sync", "wiki")
    assert "1 added" in run("sync", "wiki", "--team", red)  # by id as well as by name
    assert "backups run at 2am" in run("query", "wiki", "backups deploys", "--mode", "keyword")
    found = run("query", "wiki", "backups deploys", "--mode", "keyword", "--team", "red")
    assert "deploys on Fridays" in found
    assert "backups" not in found
    assert f'"team_id": "{red}"' in run("show", "wiki", "--team", "red")
    assert '"team_id": null' in run("show", "wiki")
    listed = run("list").splitlines()
    assert len([line for line in listed if line.startswith("wiki")]) == 2
    assert any(" red " in line for line in listed)
    only_red = run("list", "--team", "red")
    assert " red " in only_red
    assert " - " not in only_red  # no collection of the master key's own

    assert "no team 'blue'" in run("sync", "wiki", "--team", "blue", code=1)
    run("create", "notes", "--team", "red")
    missing = run("sync", "notes", code=1)  # never red's, picked for the master key
    assert (
        f"no collection named 'notes' among the master key's own (elsewhere: team {red})" in missing
    )
    assert "Deleted wiki" in run("delete", "wiki", "--team", "red", "--yes")
    assert "backups run at 2am" in run("query", "wiki", "backups", "--mode", "keyword")
    assert "no collection named 'wiki' in team" in run("show", "wiki", "--team", "red", code=1)
