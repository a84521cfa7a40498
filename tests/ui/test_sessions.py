"""The console's session store: a token that only its holder knows (its hash is stored),
sessions that end at logout, after their lifetime and when idle too long."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from pathlib import Path

from stackyard.store.db import Database
from stackyard.ui.sessions import Sessions


def test_a_session_is_found_by_its_token_and_ends(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.migrate()
    sessions = Sessions(db)
    token, created = sessions.create("key:abc")
    assert created.id == hashlib.sha256(token.encode()).hexdigest()  # the token is not stored
    assert token not in str(sessions.subjects())
    found = sessions.get(token)
    assert found is not None
    assert (found.subject, found.csrf) == ("key:abc", created.csrf)
    assert sessions.get("not-a-token") is None
    assert sessions.get(token[:-1]) is None
    other = Sessions(db)  # another worker reads the store
    assert other.get(token) is not None
    sessions.end(token)
    assert sessions.get(token) is None
    assert Sessions(db).get(token) is None
    db.dispose()


def test_a_session_ends_after_its_lifetime_or_when_idle(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 's.db'}")
    db.migrate()
    short = Sessions(db, lifetime=dt.timedelta(seconds=0.3))
    token, _ = short.create("master")
    assert short.get(token) is not None
    time.sleep(0.4)
    assert short.get(token) is None
    idle = Sessions(db, idle=dt.timedelta(seconds=0.3))
    token, _ = idle.create("master")
    time.sleep(0.4)
    assert idle.get(token) is None
    assert "master" not in idle.subjects()  # ended, not only refused
    db.dispose()
