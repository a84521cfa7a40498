"""Attacks a user reports rather than makes. A user's text may quote an attack (a news item,
a paper, a ticket, a test case, a question about it: "researchers typed 'ignore your
instructions' into the bot") or describe one in its own words ("people asked the bot to
ignore its previous instructions"). Neither gives the model an order, unless the text goes on
to ask the model to act on it ("... so do exactly that now").

:func:`unreported` blanks what such a text reports, so that the injection heuristics
(:mod:`stackyard.guardrails.injection`) read only what the user says in their own voice; the
classifier still reads the whole text. Tool results and passages are not read this way: an
order quoted there can still reach the model."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol, TypeVar

#: A quotation: in straight or curly double quotes, guillemets, backticks, or single quotes
#: that are not apostrophes.
QUOTED = re.compile(
    '"[^"\\n]{3,600}"|\u201c[^\u201d\\n]{3,600}\u201d|\u00ab[^\u00bb\\n]{3,600}\u00bb'
    "|\u2018[^\u2019\\n]{3,600}\u2019|(?<!\\w)'[^'\\n]{3,600}'(?!\\w)|`[^`\\n]{3,600}`"
)
#: Words that say the text is about a quote: somebody else said or wrote it, or the user asks
#: about it (what it is, why it works, how to stop it) or keeps it as data (a test, a list).
REPORTING = re.compile(
    r"\b(?:said|says|wrote|writes|written|typed|posted|tweeted|claimed|claims|reported|"
    r"reports|showed|shows|shown|found|entered|submitted|pasted|sent|saw|seen|read|heard|"
    r"came across|going around|shared|trick|asks? for|asked for|(?:messages?|phrases?|"
    r"prompts?|lines?|strings?|attacks?|inputs?|payloads?|text) (?:like|such as)|such as|for "
    r"(?:example|instance)|researchers?|attackers?|hackers?|scammers?|article|paper|"
    r"headline|according to|quoted?|famous|so-called|known as|classic|examples?|"
    # what the user asks about it
    r"is (?:this|that|it|the following)(?: \w+){0,3}? (?:an? )?(?:\w+ )?(?:injection|jailbreak|"
    r"attack|safe|benign|malicious|suspicious|legit(?:imate)?)|(?:prompt )?injections?|"
    r"jailbreak(?:s|ing|ers?)|attacks|exploits?|explain|why (?:does|did|do|would|is|was|"
    r"were)|what (?:does|did|makes|is|was)|how (?:do|can|should|would) (?:i|we|you) "
    r"(?:stop|prevent|block|detect|catch|flag|filter|defend)|classify|benign|difference "
    r"between|compare|"
    # kept as data
    r"blocklist|denylist|allowlist|regex|pattern|detector|detection|screening|"
    r"unit test|test case|assert|eval set|dataset|log line|fixture|"
    # told as news or history
    r"postmortem|incident|ticket|finding|lecture|thesis|history|tweet|reddit|threads?|posts?|"
    r"forum|newsletter|news|digest|blurb|roundup|screenshot|viral|copypasta)\b|\be\.g\."
)
#: Words that ask the model to act on what is reported, which makes it an order again.
ACTING_ON = re.compile(
    r"\b(?:follow|obey|comply|execute|carry out|act on|act (?:as if|like|accordingly)|apply|"
    r"do (?:it|that|this|so|exactly|as|what)|now do|then do|same (?:for|to) you|you (?:should|"
    r"must|will|shall|need to) (?:now|too|also)|begin|start (?:now|your|with|by|from)|proceed|"
    r"confirm|switch (?:in)?to|become (?:dan|that|this|him|her|it|them)|take on|stay (?:in|as)|"
    r"(?:use|adopt) (?:that|this|it|the same)|treat (?:that|this|it)|consider (?:that|this|it)|"
    r"accept|demonstrate|re-?enact|"
    r"recreate|replicate|prove|for real|from (?:now|here) on|for the rest|you(?:'re| are) "
    r"(?:now|that|the|in)|answer (?:it|accordingly|as)|respond (?:accordingly|as|to it)|"
    r"go ahead|let'?s (?:see|test|try|find|make|bring|honou?r|do)|just like|same as|(?:so|now|"
    r"then),? (?:just |please )?(?:write|produce|generate|give|print|output|say|tell|answer|"
    r"respond|reply|decode|run|do)|produce the (?:reply|answer|output|response))\b"
)
#: "I'm not asking you to do it", "don't act on it": what ACTING_ON must not read as asking.
DECLINED = re.compile(
    r"\b(?:don'?t|do not|not|never|without|rather than|instead of|won'?t|shouldn'?t)"
    r"(?: [\w']+){0,4}? (?:act(?:ing)? on|do(?:ing)?|follow\w*|obey\w*|compl\w+|execut\w+|"
    r"run|treat|use|apply)\b"
)
#: What describes an attack in the user's own words: somebody asked "the bot" (not "you")
#: to do something, or the text is about typing, sending or asking for it.
_MODEL = (
    r"(?:(?:the|a|an|its|their|his|her|this|that|these|those|some|our|my|any|older|other|"
    r"every|each) (?:[\w'-]+ ){0,3}?(?:bots?|chat ?bots?|models?|ais?|assistants?|llms?|"
    r"systems?|agents?|tools?|screeners?|helpers?|gpt|chatgpt|claude|gemini|copilot|mode)|"
    r"it|them|bots|models|chatbots|assistants)"
)
DESCRIBING = re.compile(
    r"\b(?:told|tell|tells|telling|asked|ask|asks|asking|instructed|instructs|instructing|"
    r"convinced|convince|convincing|tricked|trick|tricking|persuaded|persuade|persuading|got|"
    r"get|gets|getting|manipulated|coaxed|prompted|prompting|ordered|urged|begged|made|make|"
    r"makes|making|forced|forcing|letting|lets|led|leads) " + _MODEL + r" (?:into |to )"
    r"|\bby (?:\w+ )?(?:telling|asking|instructing|typing|entering|writing|saying|pasting|"
    r"sending|claiming|inserting|adding|hiding|embedding|requesting|demanding)\b"
    r"|\b(?:from|against) (?:\w+ )?(?:typing|entering|sending|writing|saying|pasting|asking|"
    r"telling|requesting)\b"
    r"|\b(?:prompts?|messages?|inputs?|attacks?|requests?|emails?|pages?|texts?|phrases?|"
    r"strings?|attempts?|posts?|comments?|notes?|lines?|copypastas?|stories|templates?) "
    r"(?:that |which )?(?:tell|tells|telling|told|ask|asks|asking|asked|instruct|instructs|"
    r"instructing|say|says|saying|demand|demands|demanding|request|requests|requesting|"
    r"order|orders|ordering)\b"
    r"|\b(?:tried|try|tries|trying|attempt|attempts|attempted|attempting) to (?:get|make|"
    r"trick|convince|persuade|force|have)\b"
    # somebody else typed, wrote or asked for it
    r"|\b(?:someone|somebody|people|users?|attackers?|hackers?|they|he|she|anyone|kids|"
    r"customers?|players?|students?|researchers?) (?:\w+ ){0,2}?(?:type|types|typed|typing|"
    r"write|writes|wrote|paste|pastes|pasted|send|sends|sent|say|says|said|enter|enters|"
    r"entered|ask|asks|asked|tell|tells|told|request|requests|requested|used|uses)\b"
)
#: A possessive that points at somebody else's model: "ignore its previous instructions".
THIRD_PERSON = re.compile(r"\b(?:its|their)\b")
SECOND_PERSON = re.compile(r"\byou(?:rs?|rself)?\b")
#: How far (characters) a description may reach back from what it describes, in one sentence.
REACH = 120
#: Where a described clause ends: its sentence, or a turn to what the user asks ("so", "now").
_CLAUSE_END = re.compile(r"[.!?;\n](?:\s|$)|,? (?:so|now|then|but|therefore)\b|\s[\u2014\u2013-]\s")


def blanked(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with ``spans`` turned to line breaks: the same length, so places hold."""
    chars = list(text)
    for a, b in spans:
        chars[a:b] = "\n" * (b - a)
    return "".join(chars)


def _described(low: str) -> list[tuple[int, int]]:
    """The clauses a description frame introduces: from the frame to the sentence's end."""
    spans = []
    for match in DESCRIBING.finditer(low):
        end = _CLAUSE_END.search(low, match.end())
        stop = end.start() if end else len(low)
        spans.append((match.end(), min(stop, match.end() + REACH * 3)))
    return spans


def unreported(text: str) -> str:
    """``text`` with what it reports blanked (same length, so places in it still hold):
    quotations, when the text around them reports or asks about them, and clauses that
    describe an attack in the user's own words. Unchanged when the text asks the model to
    act on what it reports."""
    low = text.lower()
    quotes = [m.span() for m in QUOTED.finditer(low)]
    outside = blanked(low, quotes)
    described = _described(outside)
    if ACTING_ON.search(DECLINED.sub(" ", blanked(outside, described))):
        return text
    spans = (quotes if REPORTING.search(outside) else []) + described
    return blanked(text, spans) if spans else text


#: The heuristics whose matches name whose instructions they are after ("ignore your
#: instructions", "print your system prompt"). A persona's is described in the third person
#: ("an AI that ignores its rules"): those are not read this way.
ADDRESSED = frozenset({"ignore_instructions", "reveal_prompt"})


def about_another(name: str, matched: str) -> bool:
    """Whether a match of the heuristic ``name`` is after somebody else's instructions, not
    those of the model it is sent to: "print its whole system prompt", "ignore their previous
    instructions"."""
    low = matched.lower()
    return name in ADDRESSED and bool(THIRD_PERSON.search(low)) and not SECOND_PERSON.search(low)


class Match(Protocol):
    """A heuristic's hit: which rule, and the characters it matched."""

    @property
    def name(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


M = TypeVar("M", bound=Match)


def in_own_voice(text: str, hits: list[M], scan: Callable[[str], list[M]]) -> list[M]:
    """The heuristics' hits (``scan``, which found ``hits`` in ``text``) once what the text
    reports is set aside, quoted or in its own words (:func:`unreported`), and matches about
    somebody else's model (:func:`about_another`) are passed over for any later ones:
    "researchers asked the bot to ignore its instructions" gives the model no order."""
    shown = unreported(text)
    if shown != text:
        hits = scan(shown)
    for _ in range(4):  # a rule reports its first match: look past the ones passed over
        passed = [(h.start, h.end) for h in hits if about_another(h.name, text[h.start : h.end])]
        if not passed:
            return hits
        shown = blanked(shown, passed)
        hits = scan(shown)
    return [h for h in hits if not about_another(h.name, text[h.start : h.end])]
