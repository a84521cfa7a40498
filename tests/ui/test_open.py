"""The console on an open gateway (no master key, no virtual key): nothing to log in with, so
it opens straight in, says that it is open and how to require keys."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI
from tests.ui.conftest import Browser, chat

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def open_gateway(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "primary",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("console-open"),
                }
            ]
        }
    )
    return gw


def test_an_open_gateway_opens_the_console_without_a_login(open_gateway: GatewayProcess) -> None:
    with Browser(base_url=open_gateway.url, follow_redirects=False, timeout=30) as client:
        assert client.get("/ui").headers["location"] == "/ui/playground"
        login = client.get("/ui/login?next=/ui/traces")
        assert (login.status_code, login.headers["location"]) == (303, "/ui/traces")
        page = client.learn(client.get("/ui/playground"))
        assert page.status_code == 200
        assert ">primary</option>" in page.text
        assert "This gateway is <strong>open</strong>" in page.text
        assert "<code>auth.master_key</code>" in page.text
        assert "Log out" not in page.text
        assert client.get("/ui/traces").status_code == 200
        # Whatever is typed at the login form, nothing is checked.
        typed = client.post("/ui/login", data={"key": "anything", "next": "/ui/traces"})
        assert (typed.status_code, typed.headers["location"]) == (303, "/ui/traces")
        answer = chat(client, "Hello from the open console")
        assert answer.status_code == 200, answer.text
        # The keys page stays the master key's: an open gateway has none.
        assert client.get("/ui/keys").status_code == 403
