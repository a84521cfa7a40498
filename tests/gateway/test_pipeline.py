"""The request pipeline: its stages in their one order, and the parity matrix: every stage on
every door is proved by an end-to-end test through that door's official SDK, or is stated
as not applicable (or as a gap still open), and docs/gateway.md shows this very table."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path
from typing import Any, cast

from stackyard.gateway.doors.chat import CHAT
from stackyard.gateway.doors.completions import COMPLETIONS
from stackyard.gateway.doors.embeddings import EMBEDDINGS
from stackyard.gateway.doors.messages import MESSAGES
from stackyard.gateway.doors.responses import ResponsesDoor
from stackyard.gateway.pipeline import Door
from stackyard.gateway.pipeline.door import NEEDS, STREAMING
from stackyard.gateway.service import stages

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "gateway.md"
DOORS: dict[str, Door] = {
    "/v1/chat/completions": CHAT,
    "/v1/messages": MESSAGES,
    "/v1/responses": ResponsesDoor(cast(Any, None), lambda team: True),
    "/v1/completions": COMPLETIONS,
    "/v1/embeddings": EMBEDDINGS,
}
ORDER = ["prompt", "rag", "secrets", "pii", "injection", "topics", "cache", "json_output"]
#: What the pipeline does for every door itself (not a stage a door may lack).
CORE = ["stream_end", "budget", "trace"]
BUDGET = "test_governance.py::test_every_door_charges_the_budget_and_refuses_in_its_own_shape"
TRACE = "test_observability.py::test_every_door_is_a_trace_with_its_spans"

E2E = "tests/e2e/"
#: (door, stage): the end-to-end test that proves it, "n/a: why", or "gap: what is missing".
EVIDENCE: dict[tuple[str, str], str] = {
    ("/v1/chat/completions", "prompt"): "test_prompts.py::"
    "test_a_labelled_prompt_is_rendered_through_the_gateway",
    ("/v1/chat/completions", "rag"): "test_rag.py::test_a_chat_request_answers_with_citations",
    ("/v1/chat/completions", "secrets"): "test_guardrails.py::"
    "test_a_request_carrying_a_secret_is_refused_and_never_sent",
    ("/v1/chat/completions", "pii"): "test_guardrails.py::"
    "test_an_external_provider_sees_placeholders_and_the_client_the_values",
    ("/v1/chat/completions", "injection"): "test_injection.py::"
    "test_an_injection_is_refused_before_it_leaves",
    ("/v1/chat/completions", "topics"): "test_topics_rail.py::"
    "test_a_denied_word_is_refused_before_it_leaves",
    ("/v1/chat/completions", "cache"): "test_cache.py::"
    "test_a_repeat_is_answered_from_the_cache_at_no_cost",
    ("/v1/chat/completions", "json_output"): "test_output_validation.py::"
    "test_a_fenced_json_answer_is_repaired",
    ("/v1/chat/completions", "stream_end"): "test_faults.py::"
    "test_stream_cut_in_the_middle_ends_with_an_error_event",
    ("/v1/messages", "prompt"): "test_prompts.py::"
    "test_a_labelled_prompt_is_rendered_on_the_messages_door_too",
    ("/v1/messages", "rag"): "test_rag.py::test_the_messages_door_answers_with_citations_too",
    ("/v1/messages", "secrets"): "test_guardrails.py::test_the_messages_door_refuses_a_secret",
    ("/v1/messages", "pii"): "test_guardrails.py::"
    "test_the_messages_door_redacts_and_restores_for_anthropic_itself",
    ("/v1/messages", "injection"): "test_guardrails.py::"
    "test_the_messages_door_refuses_an_injection_in_a_tool_result",
    ("/v1/messages", "topics"): "test_topics_rail.py::"
    "test_the_messages_door_refuses_a_denied_word_too",
    ("/v1/messages", "cache"): "test_cache.py::"
    "test_the_messages_door_is_cached_too_whole_and_streamed",
    ("/v1/messages", "json_output"): "test_output_validation.py::"
    "test_the_messages_door_asks_again_in_messages_terms",
    ("/v1/messages", "stream_end"): "test_anthropic.py::"
    "test_a_claude_stream_cut_before_message_stop_is_an_error_on_the_messages_door",
    ("/v1/responses", "prompt"): "test_prompts.py::"
    "test_a_labelled_prompt_is_rendered_on_the_responses_door_too",
    ("/v1/responses", "rag"): "test_rag.py::test_the_responses_door_answers_with_citations_too",
    ("/v1/responses", "secrets"): "test_guardrails.py::test_the_responses_door_refuses_a_secret",
    ("/v1/responses", "pii"): "test_guardrails.py::test_the_responses_door_redacts_and_restores",
    ("/v1/responses", "injection"): "test_guardrails.py::"
    "test_the_responses_door_refuses_an_injection_in_a_function_call_output",
    ("/v1/responses", "topics"): "test_topics_rail.py::"
    "test_the_responses_door_refuses_a_denied_word_too",
    ("/v1/responses", "cache"): "test_cache.py::"
    "test_the_responses_door_is_cached_too_whole_and_streamed",
    ("/v1/responses", "json_output"): "test_output_validation.py::"
    "test_the_responses_door_repairs_a_fenced_json_answer_too",
    ("/v1/responses", "stream_end"): "test_responses.py::"
    "test_the_responses_door_ends_a_cut_stream_with_an_error_event",
    ("/v1/completions", "prompt"): "n/a: `prompt` is the legacy API's own text here",
    ("/v1/completions", "rag"): "test_rag.py::test_the_completions_door_answers_with_citations_too",
    ("/v1/completions", "secrets"): "test_completions_guardrails.py::"
    "test_the_completions_door_refuses_a_secret",
    ("/v1/completions", "pii"): "test_completions_guardrails.py::"
    "test_the_completions_door_redacts_and_restores",
    ("/v1/completions", "injection"): "test_injection.py::"
    "test_the_completions_door_refuses_an_injection_too",
    ("/v1/completions", "topics"): "test_completions_guardrails.py::"
    "test_the_completions_door_refuses_a_denied_word",
    ("/v1/completions", "cache"): "test_cache.py::test_the_completions_door_is_cached_too",
    ("/v1/completions", "json_output"): "n/a: a legacy request cannot ask for a format",
    ("/v1/completions", "stream_end"): "test_completions.py::"
    "test_a_cut_stream_ends_with_an_error_not_a_finish",
    ("/v1/embeddings", "prompt"): "n/a: embeddings take no messages",
    ("/v1/embeddings", "rag"): "n/a: nothing to ground",
    ("/v1/embeddings", "secrets"): "test_guardrails.py::"
    "test_an_embedding_input_with_a_secret_is_refused",
    ("/v1/embeddings", "pii"): "test_guardrails.py::"
    "test_embedding_inputs_leave_without_pii_or_secrets",
    ("/v1/embeddings", "injection"): "n/a: no model follows the input",
    ("/v1/embeddings", "topics"): "n/a: no answer to keep on topic",
    ("/v1/embeddings", "cache"): "n/a: not cached yet; vectors are cheap to recompute",
    ("/v1/embeddings", "json_output"): "n/a: the answer is vectors",
    ("/v1/embeddings", "stream_end"): "n/a: never streamed",
    **{(door, "budget"): BUDGET for door in DOORS},
    **{(door, "trace"): TRACE for door in DOORS},
}


def test_the_stages_run_in_one_order() -> None:
    assert [s.name for s in stages(cast(Any, None))] == ORDER


def test_a_door_implements_every_stage_it_takes_and_streaming_if_it_streams() -> None:
    for path, door in DOORS.items():
        wanted = [m for stage in door.stages for m in NEEDS.get(stage, ())]
        wanted += list(STREAMING) if door.streams else []
        missing = [m for m in wanted if getattr(type(door), m) is getattr(Door, m)]
        assert not missing, f"{path} takes stages (or streams) without {missing}"
    assert not EMBEDDINGS.streams


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_every_cell_is_proved_by_a_test_or_says_why_not() -> None:
    assert set(EVIDENCE) == {(d, s) for d in DOORS for s in ORDER + CORE}
    found: dict[str, set[str]] = {}
    for (door, stage), cell in EVIDENCE.items():
        takes = stage in DOORS[door].stages or (stage in CORE and not cell.startswith("n/a"))
        if cell.startswith(("n/a: ", "gap: ")):
            assert not takes, f"{door} runs {stage}: name the test that proves it"
            continue
        assert takes, f"{door} does not run {stage}, yet {cell} is named for it"
        module, _, name = cell.partition("::")
        names = found.setdefault(module, _tests_in(ROOT / E2E / module))
        assert name in names, f"{E2E}{cell} does not exist"


def matrix() -> str:
    stage_names = ORDER + CORE
    lines = [
        "| stage | " + " | ".join(f"`{door}`" for door in DOORS) + " |",
        "|---|" + "---|" * len(DOORS),
    ]
    for stage in stage_names:
        cells = []
        for door in DOORS:
            cell = EVIDENCE[(door, stage)]
            if cell.startswith("n/a: "):
                cells.append(f"n/a ({cell[5:]})")
            elif cell.startswith("gap: "):
                cells.append(f"**not yet** ({cell[5:]})")
            else:
                cells.append(f"yes: `{cell.partition('::')[2]}`")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


BEGIN, END = (
    "<!-- parity-matrix: generated by tests/gateway/test_pipeline.py -->\n",
    ("<!-- /parity-matrix -->"),
)


def test_the_docs_show_this_matrix() -> None:
    text = DOCS.read_text()
    block = BEGIN + matrix() + END
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if os.environ.get("STACKYARD_UPDATE_DOCS") == "1":
        text = pattern.sub(lambda _: block, text) if pattern.search(text) else text + block
        DOCS.write_text(text)
    assert block in text, "docs/gateway.md is stale: run with STACKYARD_UPDATE_DOCS=1"
