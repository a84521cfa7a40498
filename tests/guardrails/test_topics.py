"""The topics rail: denied words (whole words, any case) and banned topics by similarity to
example sentences (the real in-process embedding model)."""

from __future__ import annotations

import itertools

import pytest

from stackyard.auth.admission import Ticket
from stackyard.auth.principal import Principal
from stackyard.config.guardrails import TopicsPolicy
from stackyard.errors import APIError
from stackyard.guardrails import topics
from stackyard.guardrails.injection import request_texts
from stackyard.guardrails.screen import WARNING
from stackyard.guardrails.topics import TopicScreen, deny_pattern, windows
from tests.conftest import need_module, unavailable

INVESTING = [
    "Which stocks should I buy this year?",
    "Is it a good time to invest in bitcoin?",
    "How should I split my savings between shares and bonds?",
]


def ticket() -> Ticket:
    return Ticket(Principal(team_id="team_1"), "m", "chat", "req-1", 0.0)


def test_denied_words_match_whole_words_in_any_case() -> None:
    pattern = deny_pattern(["Project Falcon", "acme"])
    assert pattern is not None
    assert [m[0] for m in pattern.finditer("About project falcon and ACME.")] == [
        "project falcon",
        "ACME",
    ]
    assert pattern.search("acmeology and falconry") is None
    assert deny_pattern([]) is None


def test_only_user_messages_are_read() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "acme"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": "acme"},
            {"role": "user", "content": "there"},
        ]
    }
    assert request_texts(body, ("user",)) == [
        ("messages[1].content[0]", "hi"),
        ("messages[3].content", "there"),
    ]


async def test_block_and_warn_on_a_denied_word_without_a_model() -> None:
    screen = TopicScreen()  # not loaded: deny lists still apply
    body = {"messages": [{"role": "user", "content": "Status of Project Falcon?"}]}
    blocked = ticket()
    with pytest.raises(APIError) as refused:
        await screen.check(
            body, blocked, TopicsPolicy(action="block", deny_words=["project falcon"])
        )
    assert refused.value.code == "topic_not_allowed"
    assert refused.value.param == "messages[0].content"
    assert blocked.decisions[0][:2] == ("topics", "block")
    warned = ticket()
    await screen.check(body, warned, TopicsPolicy(action="warn", deny_words=["project falcon"]))
    assert warned.headers == [(WARNING, b"deny_word:project falcon in messages[0].content")]
    quiet = ticket()
    await screen.check(body, quiet, TopicsPolicy(action="off", deny_words=["project falcon"]))
    assert quiet.decisions == []


def test_a_banned_topic_is_found_by_meaning_and_others_pass() -> None:
    need_module("sentence_transformers")
    from stackyard.engine.sources import ModelSourceError, resolve

    try:
        resolve("all-minilm-l6-v2", "embeddings")
    except ModelSourceError as exc:
        unavailable(str(exc))
    screen = TopicScreen()
    screen.load()
    policy = TopicsPolicy(action="block", banned={"investing": INVESTING})
    on_topic = [
        ("messages[0].content", "Should I put my money into Tesla shares or an index fund?"),
        ("messages[1].content", "Is now the right moment to buy Apple stock?"),
    ]
    off_topic = [
        ("messages[0].content", "How do I reset my password on the intranet?"),
        ("messages[1].content", "Write a haiku about autumn leaves."),
        ("messages[2].content", "What is the capital of France?"),
    ]
    found = screen.scan(on_topic, policy)
    assert [(f.where, f.detector) for f in found] == [
        ("messages[0].content", "topic:investing"),
        ("messages[1].content", "topic:investing"),
    ]
    assert all(f.score >= policy.threshold for f in found)
    off_topic.append(("messages[3].content", "What's the interest rate on my mortgage?"))
    assert screen.scan(off_topic, policy) == []


def test_long_texts_are_read_in_overlapping_windows() -> None:
    assert windows("short") == [(0, 5)]
    spans = windows("x" * 2500)
    assert spans[0] == (0, topics.WINDOW)
    assert spans[-1][1] == 2500
    assert all(b[0] < a[1] for a, b in itertools.pairwise(spans))  # they overlap
