"""The injection rail of a chat request: what it scans (user messages, tool results,
retrieved passages), and what the policy does with a finding: ``block`` (a 400 naming the
detector, its score and where), ``warn`` (the request goes on, with a header and the trace
saying why) or ``log`` (the trace and the log only)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stackyard.errors import APIError
from stackyard.guardrails.audit import decide
from stackyard.guardrails.injection import Finding, InjectionDetector, request_texts

if TYPE_CHECKING:
    from stackyard.auth.admission import Ticket
    from stackyard.config.guardrails import InjectionPolicy

log = logging.getLogger("stackyard.guardrails")
#: A request's texts by role: (body, roles) -> [(where, text)].
Texts = Callable[[dict[str, Any], tuple[str, ...]], list[tuple[str, str]]]
WARNING = b"x-stackyard-guardrails-warning"


class InjectionScreen:
    def __init__(self, policy: InjectionPolicy) -> None:
        self.policy = policy
        self.detector = InjectionDetector(None)  # heuristics, until load() adds the classifier

    def load(self) -> None:
        """Load the embedding model for the classifier (at start-up; heuristics only if the
        'local' extra is missing)."""
        try:
            from stackyard.engine.loading import load_embedder
            from stackyard.engine.sources import resolve

            embedder = load_embedder(resolve(self.policy.embedding_model, "embeddings"), "cpu")
            self.detector = InjectionDetector(embedder)
        except Exception as exc:
            log.warning("injection detection uses heuristics only: %s", exc)
            return
        if self.policy.threshold is not None:
            self.detector.threshold = self.policy.threshold
        if not self.detector.classifier:
            log.warning("injection detection uses heuristics only: no classifier weights")
        else:
            self.detector.probabilities(["warm up"])  # its read's graph, exported now

    def items(
        self,
        body: dict[str, Any],
        passages: list[dict[str, Any]] | None,
        policy: InjectionPolicy | None = None,
        texts: Texts = request_texts,
    ) -> list[tuple[str, str]]:
        """What ``policy`` scans: the request's ``texts`` (user messages and tool results, by
        default in the chat shape) and retrieved passages."""
        scanned = (policy or self.policy).scan
        found = texts(body, tuple(role for role in scanned if role != "rag"))
        if "rag" in scanned:
            for passage in passages or ():
                found.append((f"rag passage [{passage.get('index')}]", str(passage.get("text"))))
        return found

    def indirect(
        self,
        body: dict[str, Any],
        passages: list[dict[str, Any]] | None,
        policy: InjectionPolicy | None = None,
        texts: Texts = request_texts,
    ) -> set[str]:
        """Where the scanned tool results and retrieved passages are: text the model reads
        but nobody asked it, where orders addressed to the model are an injection."""
        scanned = (policy or self.policy).scan
        out = {where for where, _ in texts(body, ("tool",))} if "tool" in scanned else set()
        if "rag" in scanned:
            out |= {f"rag passage [{p.get('index')}]" for p in passages or ()}
        return out

    async def check(
        self,
        body: dict[str, Any],
        passages: list[dict[str, Any]] | None,
        ticket: Ticket,
        policy: InjectionPolicy | None = None,
        texts: Texts = request_texts,
        keep: bool = False,
    ) -> None:
        """Screen a request under ``policy`` (a team's or a model's; the gateway's by
        default). The classifier's model is the gateway's; its threshold is the policy's
        when the policy sets one, else the gateway's. ``texts`` reads the
        request's shape (chat by default; Messages for ``/v1/messages``). ``keep``: leave the
        texts' readings on the ticket, for the PII entity tagger."""
        policy = policy or self.policy
        if policy.action == "off":
            return
        items = self.items(body, passages, policy, texts)
        if not items:
            return
        readings = ticket.readings if keep else None
        indirect = self.indirect(body, passages, policy, texts)
        found = await asyncio.to_thread(
            self.detector.scan, items, readings, indirect, policy.threshold
        )
        if not found:
            return
        first = found[0]
        action = policy.action
        decide(
            ticket,
            "injection",
            action,
            {
                "detectors": sorted({f"{f.detector} in {f.where}" for f in found}),
                "score": round(max(f.score for f in found), 4),
                "findings": [record(f) for f in found],
            },
        )
        if ticket.trace is not None:
            attributes = ticket.trace.root.attributes
            attributes["stackyard.guardrails.injection"] = sorted(
                {f"{f.detector} in {f.where}" for f in found}
            )
            attributes["stackyard.guardrails.injection.action"] = action
            attributes["stackyard.guardrails.injection.score"] = max(f.score for f in found)
            attributes["stackyard.guardrails.injection.findings"] = [describe(f) for f in found]
        if action == "block":
            raise APIError(
                400,
                f"The request looks like a prompt injection ({describe(first)}); it was not "
                "sent. If this is a mistake, ask an administrator about "
                "guardrails.injection.",
                type="invalid_request_error",
                param=first.where,
                code="prompt_injection_detected",
            )
        if action == "warn":
            ticket.headers = [
                *ticket.headers,
                (WARNING, describe(first).encode("latin-1", "replace")),
            ]
        log.info("prompt injection (%s): %s", action, describe(first))


def describe(finding: Finding) -> str:
    why = f": {finding.why}" if finding.why else ""
    return (
        f"{finding.detector}, score {finding.score:.2f}, in {finding.where}, characters "
        f"{finding.start}-{finding.end}{why}"
    )


def record(finding: Finding) -> dict[str, Any]:
    """A finding for the audit log: which detector, where, the characters it matched and
    why, never the text."""
    return {
        "detector": finding.detector,
        "where": finding.where,
        "start": finding.start,
        "end": finding.end,
        "score": finding.score,
        "why": finding.why,
    }
