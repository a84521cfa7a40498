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


def push(db: Database, **fields: Any) -> tuple[dict[str, Any], bool]:
    request = PushRequest.model_validate({"name": "support", **fields})
    return registry.push(db, request, actor="key_1")


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
    registry.set_label(db, "support", "production", version=2, actor="key_2")
    assert registry.get_version(db, "support", label="production")["version"] == 2
    registry.rollback(db, "support", "production", actor="key_3")
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
        registry.set_label(db, "support", "production", version=9, actor="x")
    assert info.value.status == 404


def test_a_label_without_history_cannot_roll_back(db: Database) -> None:
    push(db, template="v1", labels=["staging"])
    with pytest.raises(RegistryError) as info:
        registry.rollback(db, "support", "staging", actor="x")
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
        actor="x",
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
