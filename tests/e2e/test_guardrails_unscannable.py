"""What the text rails cannot read (images, audio, files, token ids), through a real gateway:
refused before it leaves where the PII policy says ``unscannable: refuse`` and the request must
leave redacted, on every door; sent where it leaves unredacted, or where the policy says
``send``, with the audit log naming the parts that left unread."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, openai_sdk
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.replay_upstream import ReplayUpstream

pytestmark = pytest.mark.e2e

MASTER = "sk-master-unscannable-0123456789"
PNG = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQ"
    "ABpfZFQAAAAABJRU5ErkJggg=="
)
PNG_DATA = PNG.split(",", 1)[1]
ASKED: Any = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What does this receipt say?"},
            {"type": "image_url", "image_url": {"url": PNG}},
        ],
    }
]


def outside(fake: FakeOpenAI, name: str, deployment: str, external: bool = True) -> Any:
    return {
        "name": name,
        "provider": "openai-compatible",
        "api_base": fake.base_url(deployment),
        "external": external,
    }


@pytest.fixture(scope="module")
def gateway(
    fake_openai: FakeOpenAI, replay: ReplayUpstream, gateway_factory: Any
) -> GatewayProcess:
    lenient = {"pii": {"redact": "external", "names": False, "unscannable": "send"}}
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                outside(fake_openai, "outside", "unscan-outside"),
                outside(fake_openai, "inside", "unscan-inside", external=False),
                outside(fake_openai, "lenient", "unscan-lenient"),
                {
                    "name": "claude",
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "api_base": replay.base_url("unscan-claude"),
                    "api_key": "sk-ant",
                },
            ],
            "auth": {"master_key": MASTER},
            "guardrails": {
                "pii": {"redact": "external", "names": False, "unscannable": "refuse"},
                "models": {"lenient": lenient},
            },
        }
    )
    return gw


def refused(error: openai.BadRequestError, param: str) -> None:
    assert error.body["code"] == "unscannable_content"  # type: ignore[index]
    assert error.body["param"] == param  # type: ignore[index]
    assert "cannot read" in error.message
    assert "guardrails.pii.unscannable" in error.message


def image_sent(gateway: GatewayProcess, fake: FakeOpenAI, model: str, deployment: str) -> str:
    """Ask ``model`` about the image; the image's URL as ``deployment`` got it."""
    with openai_sdk(gateway, MASTER) as client:
        client.chat.completions.create(model=model, messages=ASKED)
    sent = fake.requests_for(deployment)[-1].body
    assert isinstance(sent, dict)
    url: str = sent["messages"][0]["content"][1]["image_url"]["url"]
    return url


def test_chat_an_image_for_an_outside_model_is_refused_before_it_leaves(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    with openai_sdk(gateway, MASTER) as client:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="outside", messages=ASKED)
        with pytest.raises(openai.BadRequestError) as streamed:
            client.chat.completions.create(model="outside", messages=ASKED, stream=True)
    refused(info.value, "messages[0].content[1]")
    refused(streamed.value, "messages[0].content[1]")
    assert "an image" in info.value.message
    assert fake_openai.requests_for("unscan-outside") == []


def test_an_inside_model_gets_it_it_is_not_redacted(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    assert image_sent(gateway, fake_openai, "inside", "unscan-inside") == PNG


def test_the_responses_door_names_the_input_item(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    items: Any = [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What does this receipt say?"},
                {"type": "input_image", "image_url": PNG},
            ],
        }
    ]
    with openai_sdk(gateway, MASTER) as client, pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="outside", input=items)
    refused(info.value, "input[0].content[1]")
    assert fake_openai.requests_for("unscan-outside") == []


def test_embeddings_token_ids_are_refused(gateway: GatewayProcess, fake_openai: FakeOpenAI) -> None:
    with openai_sdk(gateway, MASTER) as client:
        with pytest.raises(openai.BadRequestError) as info:
            client.embeddings.create(
                model="outside", input=[[15339, 1917]], encoding_format="float"
            )
        client.embeddings.create(
            model="outside", input=["plain text is read"], encoding_format="float"
        )
    refused(info.value, "input[0]")
    assert "token ids" in info.value.message
    sent = [r.body for r in fake_openai.requests_for("unscan-outside")]
    assert [b["input"] for b in sent if isinstance(b, dict)] == [["plain text is read"]]


def test_the_messages_door_refuses_an_image_for_anthropic(
    gateway: GatewayProcess, replay: ReplayUpstream
) -> None:
    image = {"type": "base64", "media_type": "image/png", "data": PNG_DATA}
    content: Any = [
        {"type": "text", "text": "What does this receipt say?"},
        {"type": "image", "source": image},
    ]
    with (
        anthropic.Anthropic(
            base_url=gateway.url, api_key=MASTER, max_retries=0, _strict_response_validation=True
        ) as client,
        pytest.raises(anthropic.BadRequestError) as info,
    ):
        client.messages.create(
            model="claude", max_tokens=20, messages=[{"role": "user", "content": content}]
        )
    error = info.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert "an image in messages[0].content[1]" in error["message"]
    assert replay.take("unscan-claude") == []


def test_send_lets_it_through_and_the_audit_log_names_it(
    gateway: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    assert image_sent(gateway, fake_openai, "lenient", "unscan-lenient") == PNG
    headers = {"authorization": f"Bearer {MASTER}"}
    rows: list[dict[str, Any]] = []
    for _ in range(50):  # written in batches, a fraction of a second later
        rows = httpx.get(f"{gateway.url}/admin/guardrails/audit", headers=headers).json()["data"]
        if any(r["action"] == "unscanned" for r in rows):
            break
        time.sleep(0.1)
    actions = [(r["rail"], r["action"], r["detail"]) for r in rows]
    assert ("pii", "unscanned", {"parts": ["messages[0].content[1] (image)"]}) in actions
    assert ("pii", "refuse", {"parts": ["messages[0].content[1] (image)"]}) in actions
