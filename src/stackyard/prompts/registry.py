"""The registry in the store: push versions, move labels (release, rollback), read the audit
log, diff versions. Synchronous; the API runs it in a thread, the CLI calls it directly."""

from __future__ import annotations

import datetime as dt
import difflib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stackyard.prompts.model import LABEL, PushRequest
from stackyard.store.db import Database
from stackyard.store.tables import Prompt, PromptAudit, PromptLabel, PromptVersion
from stackyard.store.tables.base import aware, new_id, utcnow


class RegistryError(Exception):
    def __init__(self, message: str, status: int = 400, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


def _iso(moment: dt.datetime) -> str:
    return aware(moment).isoformat()


@dataclass(frozen=True)
class Actor:
    """Who changes the registry: a label for the audit log, and the team whose prompts it may
    change (``admin``: every prompt; the master key, or an open gateway)."""

    label: str
    team_id: str | None = None
    admin: bool = False


def _prompt(session: Session, name: str) -> Prompt:
    prompt = session.scalar(select(Prompt).where(Prompt.name == name))
    if prompt is None:
        raise RegistryError(f"no prompt '{name}'", 404, "name")
    return prompt


def _may_change(prompt: Prompt, actor: Actor) -> None:
    if actor.admin or (prompt.team_id is not None and prompt.team_id == actor.team_id):
        return
    owner = "another team" if prompt.team_id else "the administrators (master key)"
    raise RegistryError(
        f"prompt '{prompt.name}' belongs to {owner}: this key may not change it", 403
    )


def _version_row(version: PromptVersion, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "version": version.version,
        **version.content,
        "content_hash": version.content_hash,
        "message": version.message,
        "author": version.author,
        "created_at": _iso(version.created_at),
    }


def _label_row(label: PromptLabel) -> dict[str, Any]:
    return {
        "label": label.label,
        "targets": label.targets,
        "sticky": label.sticky,
        "updated_at": _iso(label.updated_at),
        "updated_by": label.updated_by,
    }


def _audit(session: Session, prompt: Prompt, action: str, actor: str, **fields: Any) -> None:
    session.add(
        PromptAudit(
            id=new_id("paud"),
            prompt_id=prompt.id,
            action=action,
            actor=actor,
            created_at=utcnow(),
            **fields,
        )
    )


def push(db: Database, request: PushRequest, actor: Actor) -> tuple[dict[str, Any], bool]:
    """Store a new version, or find the identical one (same content hash); then set the
    labels asked for. Returns (the version, whether it is new)."""
    content = request.content()
    digest = content.content_hash()
    for attempt in range(3):  # two instances may number a version at once: the loser retries
        try:
            with db.session() as session:
                prompt = session.scalar(select(Prompt).where(Prompt.name == request.name))
                if prompt is None:
                    team = None if actor.admin else actor.team_id
                    prompt = Prompt(id=new_id("prm"), name=request.name, team_id=team)
                    session.add(prompt)
                    session.flush()
                _may_change(prompt, actor)
                existing = session.scalar(
                    select(PromptVersion).where(
                        PromptVersion.prompt_id == prompt.id,
                        PromptVersion.content_hash == digest,
                    )
                )
                created = existing is None
                if existing is None:
                    latest = session.scalar(
                        select(func.max(PromptVersion.version)).where(
                            PromptVersion.prompt_id == prompt.id
                        )
                    )
                    existing = PromptVersion(
                        id=new_id("pv"),
                        prompt_id=prompt.id,
                        version=(latest or 0) + 1,
                        content=content.canonical(),
                        content_hash=digest,
                        message=request.message,
                        author=actor.label,
                        created_at=utcnow(),
                    )
                    session.add(existing)
                    prompt.updated_at = utcnow()
                    session.flush()
                    _audit(
                        session, prompt, "push", actor.label, after={"version": existing.version}
                    )
                for label in request.labels:
                    _set_label(
                        session, prompt, label, [{"version": existing.version}], None, actor.label
                    )
                return _version_row(existing, request.name), created
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _targets(
    session: Session, prompt: Prompt, targets: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if not targets:
        raise RegistryError("a label needs a version (or weighted versions)", param="version")
    known = set(
        session.scalars(select(PromptVersion.version).where(PromptVersion.prompt_id == prompt.id))
    )
    clean = []
    for target in targets:
        version = target.get("version")
        weight = target.get("weight", 1)
        if not isinstance(version, int) or version not in known:
            listed = ", ".join(map(str, sorted(known))) or "none"
            raise RegistryError(
                f"prompt '{prompt.name}' has no version {version} (versions: {listed})",
                404,
                "version",
            )
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise RegistryError("a weight must be a positive number", param="weight")
        clean.append({"version": version, "weight": weight})
    if len({t["version"] for t in clean}) != len(clean):
        raise RegistryError("a version appears twice in the split", param="targets")
    return clean


def _set_label(
    session: Session,
    prompt: Prompt,
    label: str,
    targets: list[dict[str, Any]],
    sticky: str | None,
    actor: str,
    action: str = "label",
) -> PromptLabel:
    if not LABEL.match(label):
        raise RegistryError(f"'{label}' is not a valid label name", param="label")
    if sticky not in (None, "user", "session"):
        raise RegistryError("sticky must be 'user' or 'session'", param="sticky")
    clean = _targets(session, prompt, targets)
    row = session.get(PromptLabel, (prompt.id, label))
    before = row.targets if row is not None else None
    if row is None:
        row = PromptLabel(prompt_id=prompt.id, label=label)
        session.add(row)
    row.targets = clean
    row.sticky = sticky
    row.updated_at = utcnow()
    row.updated_by = actor
    _audit(session, prompt, action, actor, label=label, before=before, after=clean)
    return row


def set_label(
    db: Database,
    name: str,
    label: str,
    *,
    version: int | None = None,
    targets: list[dict[str, Any]] | None = None,
    sticky: str | None = None,
    actor: Actor,
) -> dict[str, Any]:
    """Point ``label`` at ``version``, or split it between ``targets`` by weight (the
    release; its previous target is kept in the audit log for a rollback)."""
    if targets is None:
        targets = [{"version": version}]
    with db.session() as session:
        prompt = _prompt(session, name)
        _may_change(prompt, actor)
        return _label_row(_set_label(session, prompt, label, targets, sticky, actor.label))


def rollback(db: Database, name: str, label: str, *, actor: Actor) -> dict[str, Any]:
    """Move ``label`` back to where it pointed before its last move."""
    with db.session() as session:
        prompt = _prompt(session, name)
        _may_change(prompt, actor)
        last = session.scalar(
            select(PromptAudit)
            .where(
                PromptAudit.prompt_id == prompt.id,
                PromptAudit.label == label,
                PromptAudit.action.in_(("label", "rollback")),
            )
            .order_by(PromptAudit.created_at.desc(), PromptAudit.id.desc())
            .limit(1)
        )
        if last is None or not last.before:
            raise RegistryError(
                f"label '{label}' of '{name}' has no earlier target to roll back to", 409
            )
        row = session.get(PromptLabel, (prompt.id, label))
        sticky = row.sticky if row is not None else None
        return _label_row(
            _set_label(session, prompt, label, last.before, sticky, actor.label, action="rollback")
        )


def list_prompts(db: Database) -> list[dict[str, Any]]:
    with db.session() as session:
        latest = dict(
            session.execute(
                select(PromptVersion.prompt_id, func.max(PromptVersion.version)).group_by(
                    PromptVersion.prompt_id
                )
            ).all()
        )
        labels: dict[str, dict[str, Any]] = {}
        for row in session.scalars(select(PromptLabel)):
            labels.setdefault(row.prompt_id, {})[row.label] = row.targets
        return [
            {
                "name": p.name,
                "team_id": p.team_id,
                "latest_version": latest.get(p.id),
                "labels": labels.get(p.id, {}),
                "updated_at": _iso(p.updated_at),
            }
            for p in session.scalars(select(Prompt).order_by(Prompt.name))
        ]


def get_prompt(db: Database, name: str) -> dict[str, Any]:
    with db.session() as session:
        prompt = _prompt(session, name)
        versions = session.scalars(
            select(PromptVersion)
            .where(PromptVersion.prompt_id == prompt.id)
            .order_by(PromptVersion.version)
        )
        labels = session.scalars(select(PromptLabel).where(PromptLabel.prompt_id == prompt.id))
        return {
            "name": name,
            "versions": [
                {
                    "version": v.version,
                    "message": v.message,
                    "author": v.author,
                    "created_at": _iso(v.created_at),
                    "content_hash": v.content_hash,
                }
                for v in versions
            ],
            "labels": [_label_row(label) for label in labels],
        }


def get_version(
    db: Database, name: str, version: int | None = None, label: str | None = None
) -> dict[str, Any]:
    """One version, by number, by label (its first target) or the latest."""
    with db.session() as session:
        prompt = _prompt(session, name)
        if label is not None:
            row = session.get(PromptLabel, (prompt.id, label))
            if row is None:
                raise RegistryError(f"prompt '{name}' has no label '{label}'", 404, "label")
            version = row.targets[0]["version"]
        query = select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
        if version is None:
            query = query.order_by(PromptVersion.version.desc()).limit(1)
        else:
            query = query.where(PromptVersion.version == version)
        found = session.scalar(query)
        if found is None:
            raise RegistryError(f"prompt '{name}' has no version {version}", 404, "version")
        return _version_row(found, name)


def audit_log(db: Database, name: str) -> list[dict[str, Any]]:
    with db.session() as session:
        prompt = _prompt(session, name)
        rows = session.scalars(
            select(PromptAudit)
            .where(PromptAudit.prompt_id == prompt.id)
            .order_by(PromptAudit.created_at, PromptAudit.id)
        )
        return [
            {
                "action": r.action,
                "label": r.label,
                "from": r.before,
                "to": r.after,
                "actor": r.actor,
                "at": _iso(r.created_at),
            }
            for r in rows
        ]


def _text(version: dict[str, Any]) -> list[str]:
    if version["type"] == "text":
        return str(version["template"]).splitlines()
    lines = []
    for message in version["messages"]:
        if message.get("type") == "placeholder":
            lines.append(f"[placeholder: {message.get('name')}]")
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else orjson.dumps(content).decode()
        lines.append(f"[{message.get('role')}]")
        lines += text.splitlines()
    return lines


def diff(db: Database, name: str, old: int, new: int) -> dict[str, Any]:
    """A unified diff of two versions' text, and what changed in their variables and
    config."""
    a, b = get_version(db, name, old), get_version(db, name, new)
    text = list(
        difflib.unified_diff(_text(a), _text(b), f"{name}@{old}", f"{name}@{new}", lineterm="")
    )
    changes = {}
    for field in ("variables", "config", "engine", "type"):
        if a[field] != b[field]:
            changes[field] = {"from": a[field], "to": b[field]}
    return {"name": name, "from": old, "to": new, "text": text, "changes": changes}


def snapshot_version(db: Database) -> tuple[object, ...]:
    """Cheap to read: changes whenever a prompt, version or label does."""
    with db.session() as session:
        return (
            session.execute(select(func.count(), func.max(Prompt.updated_at))).one(),
            session.execute(select(func.count(), func.max(PromptLabel.updated_at))).one(),
            session.scalar(select(func.count()).select_from(PromptVersion)),
        )


def load_all(db: Database) -> dict[str, dict[str, Any]]:
    """Every prompt with its versions and labels, for the in-memory snapshot."""
    with db.session() as session:
        names = {p.id: p.name for p in session.scalars(select(Prompt))}
        out: dict[str, dict[str, Any]] = {
            name: {"versions": {}, "labels": {}} for name in names.values()
        }
        for v in session.scalars(select(PromptVersion)):
            out[names[v.prompt_id]]["versions"][v.version] = v.content
        for label in session.scalars(select(PromptLabel)):
            out[names[label.prompt_id]]["labels"][label.label] = {
                "targets": label.targets,
                "sticky": label.sticky,
            }
        return out
