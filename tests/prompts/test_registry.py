"""The registry on SQLite and PostgreSQL: immutable versions, content hashing, labels,
weighted splits, rollback, the audit log and diffs."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from stackyard.prompts import registry
from stackyard.prompts.model import PushRequest
from stackyard.prompts.registry import RegistryError
from stackyard.prompts.snapshot import PromptSnapshot, pick
from stackyard.store.db import Database

ADMIN = registry.Actor("key_1", admin=True)


def as_key(key: str, team: str | None = "team_a") -> registry.Actor:
    return registry.Actor(key, team_id=team)


def push(db: Database, actor: registry.Actor = ADMIN, **fields: Any) -> tuple[dict[str, Any], bool]:
    request = PushRequest.model_validate({"name": "support", **fields})
    return registry.push(db, request, actor)


def test_versions_are_numbered_and_identical_content_makes_none(db: Database) -> None:
    first, created = push(db, template="Hello {{name}}", message="first")
    assert (first["version"], created) == (1, True)
    assert first["variables"] == {"name": {}}  # inferred: a required string
    again, created = push(db, template="Hello {{name}}", message="same again")
    assert (again["version"], created) == (1, False)
    second, created = push(db, template="Hi {{name}}", config={"temperature": 0.2})
    assert (second["version"], created) == (2, True)
    assert registry.get_version(db, "support", 1)["template"] == "Hello {{name}}"  # unchanged
    assert registry.get_version(db, "support")["version"] == 2  # the latest


def test_bad_pushes_are_refused() -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"template": "x", "messages": [{"role": "user", "content": "y"}]}, "and no 'template'"),
        ({"messages": []}, "needs 'messages'"),
        ({"template": "x", "config": {"colour": "red"}}, "unknown parameter 'colour'"),
        ({"name": "has space", "template": "x"}, "name: letters"),
    ]
    for fields, message in bad:
        with pytest.raises(ValidationError, match=message):
            PushRequest.model_validate({"name": "ok", **fields})


def test_labels_release_and_roll_back_with_an_audit_log(db: Database) -> None:
    push(db, template="v1", labels=["production"])
    push(db, template="v2")
    registry.set_label(
        db, "support", "production", version=2, actor=registry.Actor("key_2", admin=True)
    )
    assert registry.get_version(db, "support", label="production")["version"] == 2
    registry.rollback(db, "support", "production", actor=registry.Actor("key_3", admin=True))
    assert registry.get_version(db, "support", label="production")["version"] == 1
    log = registry.audit_log(db, "support")
    assert [(e["action"], e["label"], e["actor"]) for e in log] == [
        ("push", None, "key_1"),
        ("label", "production", "key_1"),
        ("push", None, "key_1"),
        ("label", "production", "key_2"),
        ("rollback", "production", "key_3"),
    ]
    assert log[3]["from"] == [{"version": 1, "weight": 1}]
    assert log[3]["to"] == [{"version": 2, "weight": 1}]
    with pytest.raises(RegistryError) as info:
        registry.set_label(
            db, "support", "production", version=9, actor=registry.Actor("x", admin=True)
        )
    assert info.value.status == 404


def test_a_teams_prompt_is_changed_by_that_team_alone(db: Database) -> None:
    push(db, as_key("key_a", "team_a"), template="ours", labels=["production"])
    push(db, as_key("key_a2", "team_a"), template="ours, better")  # a team mate may
    for change in (
        lambda: push(db, as_key("key_b", "team_b"), template="theirs"),
        lambda: registry.set_label(
            db, "support", "production", version=2, actor=as_key("key_b", "team_b")
        ),
        lambda: registry.rollback(db, "support", "production", actor=as_key("key_b", "team_b")),
    ):
        with pytest.raises(RegistryError) as info:
            change()
        assert info.value.status == 403
    registry.set_label(db, "support", "production", version=2, actor=ADMIN)  # the master may
    push(db, ADMIN, name="global", template="for all")
    with pytest.raises(RegistryError, match="administrators"):
        push(db, as_key("key_a", "team_a"), name="global", template="mine now")


def test_a_label_without_history_cannot_roll_back(db: Database) -> None:
    push(db, template="v1", labels=["staging"])
    with pytest.raises(RegistryError) as info:
        registry.rollback(db, "support", "staging", actor=registry.Actor("x", admin=True))
    assert info.value.status == 409


def test_diff_shows_text_and_config_changes(db: Database) -> None:
    push(db, messages=[{"role": "system", "content": "Be brief."}])
    push(db, messages=[{"role": "system", "content": "Be thorough."}], config={"max_tokens": 9})
    changes = registry.diff(db, "support", 1, 2)
    assert "-Be brief." in changes["text"]
    assert "+Be thorough." in changes["text"]
    assert changes["changes"]["config"] == {"from": {}, "to": {"max_tokens": 9}}


def test_weighted_splits_are_sticky_and_near_their_weights(db: Database) -> None:
    push(db, template="A {{name}}")
    push(db, template="B {{name}}")
    registry.set_label(
        db,
        "support",
        "production",
        targets=[{"version": 1, "weight": 80}, {"version": 2, "weight": 20}],
        sticky="user",
        actor=registry.Actor("x", admin=True),
    )
    snapshot = PromptSnapshot(db, rng=random.Random(1))
    assert snapshot.load()
    assert not snapshot.load()  # nothing changed: no reload
    served = Counter(snapshot.resolve("support", user=f"user-{i}")[0] for i in range(4000))
    assert 0.77 < served[1] / 4000 < 0.83
    same = {snapshot.resolve("support", user="ada")[0] for _ in range(50)}
    assert len(same) == 1


def test_pick_at_random_without_a_key() -> None:
    targets = [{"version": 1, "weight": 1}, {"version": 2, "weight": 3}]
    rng = random.Random(2)
    counts = Counter(pick(targets, None, rng) for _ in range(4000))
    assert 0.22 < counts[1] / 4000 < 0.28
