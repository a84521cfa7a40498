"""Opening the database and bringing its schema up to date (Alembic, at start)."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from stackyard.errors import APIError

MIGRATIONS = Path(__file__).parent / "migrations"
#: PostgreSQL's advisory lock key for migrations (any constant of our own).
LOCK = 0x5374_6B79  # "Stky"


def default_url(config_file: Path | None) -> str:
    """SQLite next to the config file (or in the working directory with no config)."""
    directory = config_file.resolve().parent if config_file else Path.cwd()
    return f"sqlite:///{directory / 'stackyard.db'}"


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (no psycopg2 needed)."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        if self.url.startswith("sqlite"):
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=5)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._migrated = False
        self._lock = threading.Lock()

    def migrate(self) -> None:
        """Apply every pending migration (idempotent; safe from several processes: the
        workers of one server, or instances starting together, take turns, and the later
        ones find nothing left to do)."""
        from alembic import command
        from alembic.config import Config

        with self._lock:
            if self._migrated:
                return
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            with self._between_processes(), self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":  # held until this commits
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
            self._migrated = True

    @contextmanager
    def _between_processes(self) -> Iterator[None]:
        """SQLite: an exclusive lock on a file beside the database while migrating
        (PostgreSQL's is an advisory lock, taken in the migration's transaction)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            yield
            return
        with open(f"{database}.migrate-lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(connection: object, _record: object) -> None:
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def store_error(exc: BaseException) -> APIError | None:
    """The API's answer to a failure of the store, where it has a better one than a 500: a
    value the database cannot hold (a NUL character, on PostgreSQL) is the request's fault, a
    400; a database that cannot be reached is a 503, to be tried again."""
    from sqlalchemy import exc as sa

    cause = exc.orig if isinstance(exc, sa.StatementError) else exc
    if "NUL" in str(cause):  # PostgreSQL's text cannot hold \u0000 (psycopg says so)
        return APIError(
            400,
            "The request holds a NUL character (\\u0000), which the store cannot keep.",
            type="invalid_request_error",
            code="invalid_characters",
        )
    if isinstance(exc, sa.DataError):
        return APIError(
            400,
            "The store refused a value of the request: "
            + str(getattr(exc, "orig", exc)).splitlines()[0][:200],
            type="invalid_request_error",
            code="invalid_value",
        )
    if isinstance(exc, sa.OperationalError | sa.InterfaceError) or (
        isinstance(exc, sa.DBAPIError) and exc.connection_invalidated
    ):
        return APIError(
            503,
            "The store (database) cannot be reached just now; try again shortly.",
            type="server_error",
            code="store_unavailable",
            headers=[("retry-after", "5")],
        )
    return None
