"""LlamaIndex's ``OpenAILike`` against the gateway: with its default ``is_chat_model=False`` it
calls the legacy ``POST /v1/completions``, whole and streamed; as a chat model it calls chat
completions.

LlamaIndex's OpenAI integration needs ``openai<3``, and the project's own tests use the
current SDK, so LlamaIndex runs in a venv of its own (``benchmarks/.venvs/llamaindex-client``,
installed from its lock, ``benchmarks/requirements/llamaindex-client.txt``), driven as a
script. Locally the test skips when that venv is not there yet; under CI it installs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GatewayProcess
from tests.fakes.openai_upstream import FakeOpenAI

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "benchmarks" / ".venvs" / "llamaindex-client"
MASTER = "sk-master-llamaindex-0123456789"
SCRIPT = """
import json, sys
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike

base, key = sys.argv[1], sys.argv[2]
text = OpenAILike(model="m", api_base=base, api_key=key, max_tokens=30)  # is_chat_model=False
chat = OpenAILike(model="m", api_base=base, api_key=key, is_chat_model=True)
print(json.dumps({
    "complete": text.complete("Say hello to the gateway").text,
    "stream": "".join(r.delta or "" for r in text.stream_complete("Stream to the gateway")),
    "chat": chat.chat([ChatMessage(role="user", content="Chat with the gateway")]).message.content,
}))
"""


@pytest.fixture(scope="module")
def python() -> Path:
    from benchmarks._procs import _locked_venv

    made = (VENV / ".ok").exists()
    if not made and os.environ.get("CI") != "true":  # under CI it is installed here
        pytest.skip("LlamaIndex's venv is not installed (see this module's docstring)")
    _locked_venv(VENV, VENV / ".ok")
    return VENV / "bin" / "python"


def test_openailike_completes_streams_and_chats(
    python: Path, fake_openai: FakeOpenAI, gateway_factory: Any
) -> None:
    gateway: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "m",
                    "provider": "openai-compatible",
                    "api_base": fake_openai.base_url("llamaindex"),
                }
            ],
            "auth": {"master_key": MASTER},
        }
    )
    ran = subprocess.run(
        [str(python), "-c", SCRIPT, gateway.base_url, MASTER],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    said = json.loads(ran.stdout.strip().splitlines()[-1])
    assert said["complete"] == "[llamaindex] echo: Say hello to the gateway"
    assert said["stream"] == "[llamaindex] echo: Stream to the gateway"
    assert said["chat"] == "[llamaindex] echo: Chat with the gateway"
    paths = [r.path for r in fake_openai.requests_for("llamaindex")]
    assert paths == ["/llamaindex/v1/chat/completions"] * 3  # every door goes by chat
