"""The console's test gateway (upstreams faked, no local model, no fine-tuning worker), shared
by the console's page tests, and a client that keeps the login cookie."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from stackyard.finetune.jobs import Jobs
from stackyard.finetune.settings import Settings
from stackyard.store.db import Database
from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI

MASTER = "sk-master-console-0123456789"


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI, gateway_factory: Any, tmp_path_factory: Any) -> GatewayProcess:
    folder: Path = tmp_path_factory.mktemp("console")
    config = {
        "models": [
            {
                "name": "primary",
                "provider": "openai-compatible",
                "model": "fake-large",
                "api_base": fake_openai.base_url("console-primary"),
                "input_cost_per_mtok": 1.0,
                "output_cost_per_mtok": 2.0,
            },
            {
                "name": "second",
                "provider": "openai-compatible",
                "api_base": fake_openai.base_url("console-second"),
            },
            {
                "name": "embed",
                "provider": "openai-compatible",
                "model": "text-embedding-3-small",
                "api_base": fake_openai.base_url("console-embed"),
            },
        ],
        "auth": {"master_key": MASTER, "refresh_seconds": 0.2},
        "database_url": f"sqlite:///{folder / 'console.db'}",
        "rag": {"embedding_model": "embed"},
        # Jobs are written straight to the database by the tests: no worker takes them.
        "finetune": {"max_workers": 0, "data_dir": str(folder / "finetune")},
    }
    gw: GatewayProcess = gateway_factory(config)
    return gw


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser(httpx.Client):
    """A client that keeps cookies, like a browser, and sends each form with the anti-forgery
    token of the page it came from, as the console's own forms do (``csrf``)."""

    csrf: str | None = None

    def learn(self, page: httpx.Response) -> httpx.Response:
        found = CSRF.search(page.text)
        if found:
            self.csrf = found[1]
        return page

    def post(self, url: Any, *args: Any, **kwargs: Any) -> httpx.Response:
        data = kwargs.get("data")
        a_form = "json" not in kwargs and "content" not in kwargs
        if self.csrf and a_form and str(url).startswith("/ui/") and "csrf" not in (data or {}):
            kwargs["data"] = {**(data or {}), "csrf": self.csrf}
        return super().post(url, *args, **kwargs)

    def login(self, key: str, target: str = "/ui/traces") -> httpx.Response:
        """The login page, then its form with ``key``."""
        form = self.get("/ui/login")
        found = CSRF.search(form.text)
        assert found, form.text
        return super().post("/ui/login", data={"key": key, "next": target, "csrf": found[1]})


@contextlib.contextmanager
def browser(gateway: GatewayProcess, key: str | None = None) -> Iterator[Browser]:
    """A browser, logged in with ``key`` (if given), holding its session's token."""
    with Browser(base_url=gateway.url, follow_redirects=False, timeout=30) as client:
        if key is not None:
            answer = client.login(key)
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"] == "/ui/traces"
            client.learn(client.get("/ui/traces"))
            assert client.csrf
        yield client


def chat(client: httpx.Client, text: str, **extra: Any) -> httpx.Response:
    return client.post(
        "/ui/api/chat",
        json={"model": "primary", "messages": [{"role": "user", "content": text}], **extra},
        headers={"x-stackyard-ui": "1"},
    )


def a_job(gateway: GatewayProcess, team: str | None) -> tuple[Jobs, str]:
    """A fine-tuning job in ``gateway``'s database, written as the API writes one (its
    worker is the test: the gateways of these tests run none)."""
    config = yaml.safe_load(gateway.config_path.read_text())
    jobs = Jobs(Database(config["database_url"]), Path(config["finetune"]["data_dir"]))
    job = jobs.create(
        model="smollm2",
        training_file="file-train",
        validation_file=None,
        settings=Settings(n_epochs=1),
        suffix="ui",
        metadata=None,
        team_id=team,
    )
    return jobs, job["id"]


def metrics(step: int, loss: float, total: int = 12) -> dict[str, Any]:
    """A training step's metrics event, as the trainer reports it."""
    return {
        "type": "metrics",
        "step": step,
        "total_steps": total,
        "epoch": 1,
        "train_loss": loss,
        "learning_rate": 2e-4,
        "tokens_per_second": 180.0 + step,
        "eta_seconds": 3.0 * (total - step),
    }
