"""The guardrails' audit log through a real gateway (every decision per team, kinds and places,
never values), and a team's own policies replacing the gateway's."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, team_key
from tests.e2e.test_guardrails import EMAIL, NAME, SECRET_TEXT, seen_upstream
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = pytest.mark.e2e

AUDIT_MASTER = "sk-master-audit-0123456789"


@pytest.fixture(scope="module")
def audited(fake_openai: FakeOpenAI, gateway_factory: Any) -> GatewayProcess:
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "outside",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("audit-outside"),
                    "external": True,
                }
            ],
            "auth": {"master_key": AUDIT_MASTER, "refresh_seconds": 0.2},
            "guardrails": {
                "pii": {"redact": "external"},
                "secrets": {"action": "block"},
                "teams": {"relaxed": {"pii": {"redact": "off"}, "secrets": {"action": "off"}}},
            },
        }
    )
    return gw


def test_every_decision_is_audited_per_team_without_the_values(audited: GatewayProcess) -> None:
    key = team_key(audited, "auditors", AUDIT_MASTER)
    time.sleep(0.5)  # the key snapshot refreshes every 0.2 s
    leaked = "connect with postgresql://admin:hunter22@db.internal:5432/app please"
    with openai.OpenAI(base_url=audited.base_url, api_key=key, max_retries=0) as client:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="outside", messages=[{"role": "user", "content": leaked}]
            )
        client.chat.completions.create(
            model="outside", messages=[{"role": "user", "content": SECRET_TEXT}]
        )
        client.chat.completions.create(
            model="outside", messages=[{"role": "user", "content": "nothing to hide"}]
        )
    headers = {"authorization": f"Bearer {AUDIT_MASTER}"}
    rows: list[dict[str, Any]] = []
    for _ in range(50):  # written in batches, a fraction of a second later
        rows = httpx.get(
            f"{audited.url}/admin/guardrails/audit?team=auditors", headers=headers
        ).json()["data"]
        if len(rows) >= 2:
            break
        time.sleep(0.1)
    assert [(r["rail"], r["action"]) for r in rows] == [("pii", "redact"), ("secrets", "block")]
    pii, secret = rows
    assert pii["team"] == secret["team"] == "auditors"
    assert pii["detail"] == {
        "deployment": "outside#0",
        "found": {"PERSON": 1, "EMAIL": 1, "CARD": 1},
    }
    assert secret["detail"] == {
        "detectors": ["connection_string_password"],
        "where": ["messages[0].content"],
    }
    assert EMAIL not in str(rows)  # the audit names kinds and places, never values
    assert NAME not in str(rows)
    assert "hunter22" not in str(rows)
    other = httpx.get(f"{audited.url}/admin/guardrails/audit?team=nobody", headers=headers)
    assert other.status_code == 400  # an unknown team is an error, not an empty list


def test_a_teams_own_policies_replace_the_gateways(
    audited: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    strict_key = team_key(audited, "by-the-book", AUDIT_MASTER)
    relaxed_key = team_key(audited, "relaxed", AUDIT_MASTER)
    time.sleep(0.5)
    leaked = "connect with postgresql://admin:hunter22@db.internal:5432/app please"
    with openai.OpenAI(base_url=audited.base_url, api_key=strict_key, max_retries=0) as client:
        client.chat.completions.create(
            model="outside", messages=[{"role": "user", "content": SECRET_TEXT}]
        )
        assert EMAIL not in seen_upstream(fake_openai, "audit-outside")
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="outside", messages=[{"role": "user", "content": leaked}]
            )
    with openai.OpenAI(base_url=audited.base_url, api_key=relaxed_key, max_retries=0) as client:
        client.chat.completions.create(
            model="outside", messages=[{"role": "user", "content": SECRET_TEXT}]
        )
        assert EMAIL in seen_upstream(fake_openai, "audit-outside")  # its policy: no redaction
        client.chat.completions.create(
            model="outside", messages=[{"role": "user", "content": leaked}]
        )  # and secrets let through
