"""Prompt injection and jailbreak detection, offline: phrases that give the game away
(heuristics), and a small classifier on the in-process embedding model.

The heuristics (:data:`RULES`) are named by the family of attack they catch: persona and
role-play without limits, made-up modes, dropping the instructions above, dual answers,
emotional pretexts, and the same once spaced-out letters are joined, leetspeak undone and
base64 decoded; in tool results and retrieved passages, orders addressed to the model as well.
Each reads the text lowercased once, with linear patterns; a cue that is ordinary alone
(a role-play) fires only near a second pattern (words that lift the limits).

The classifier reads a text's windows (256 word pieces each, overlapping:
:mod:`stackyard.guardrails.reading`) with all-MiniLM-L6-v2, whose upper layers it has its own
fine-tuned copies of (:mod:`stackyard.guardrails.injection_layers`); its head is a logistic
regression over the mean and the element-wise maximum of the window vectors, and the length.
The model's first layers are shared with the PII entity tagger, so a request screened for
both runs them once. The head (``injection.json`` beside this module) and the layers were
trained by ``make guardrails-injection`` on the llm-warden training split, hand-written
hard negatives and the attacks and look-alikes written for training (``injection_train.jsonl``);
the file also holds the threshold that kept false positives at 0.5% on a held-out seventh of
them. A head without ``layers`` in its meta is the older classifier, on the base model's own
layers.

It scans what can carry an injection: user messages, tool results, and retrieved passages
(indirect injection). No rail calls an LLM.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import logging
import math
import re
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from stackyard.guardrails.reading import Reading, quantizes, read
from stackyard.guardrails.reported import in_own_voice

log = logging.getLogger("stackyard.guardrails")

WEIGHTS = Path(__file__).with_name("injection.json")

#: Verbs that drop what came before ("ignore", "scrap", "set aside") and what they drop.
_DROP = (
    r"(?:ignore|disregard|forget|drop|scrap|discard|ditch|dismiss|abandon|throw (?:out|away)|"
    r"set aside|put aside|toss|erase|override|bypass|stop following|stop obeying|"
    r"no longer follow|never ?mind)"
)
_ORDERS = (
    r"(?:guidance|instructions?|directions|directives|rules|setup|set-up|configuration|"
    r"prompts?|programming|guidelines|constraints|orders|commands|training|policies|"
    r"restrictions)"
)
_EARLIER = (
    r"(?:earlier|previous|prior|above|preceding|original|initial|old|former|existing|default|"
    r"developer'?s|system|given)"
)
#: Words that say a model is to work without its limits ("no filters", "uncensored", "never
#: refuses"): ordinary English alone, telling near a role-play, a mode or a second answer.
_UNBOUND = (
    r"\b(?:no|without(?: any)?|zero|free (?:from|of)(?: any| the| all)?|not bound by(?: any| the)?"
    r"|beyond(?: any| the)?) (?:\w+ ){0,2}?(?:limits?|limitations|filters?|restrictions?|rules|"
    r"boundaries|censorship|morals|morality|ethics|conscience|guidelines|safeguards|guardrails|"
    r"constraints|polic(?:y|ies))\b"
    r"|\b(?:unfiltered|uncensored|unrestricted|unlimited|unbound|unchained|unshackled|amoral|"
    r"immoral|unethical|lawless)\b"
    r"|\b(?:never|won'?t|will not|doesn'?t|does not|don'?t|do not) (?:ever )?(?:refuse|say no|"
    r"decline|reject)s?\b|\bnever refused\b"
    r"|\b(?:nothing|no topic|no request) is (?:forbidden|off[- ]limits|prohibited|banned)\b"
    r"|\b(?:not|n't) (?:allowed|supposed|permitted) to (?:say|tell|write|answer|do)\b"
    r"|\b(?:break|ignore|bypass|forget|disregard|broken free of|break free of) (?:its|your|the|"
    r"all|any) (?:\w+ ){0,2}?(?:rules|guidelines|polic(?:y|ies)|filters?|restrictions|limits|"
    r"programming|safeguards|training)\b"
    r"|\bopposite of (?:your|its|what your) (?:values|rules|guidelines|principles)\b"
    r"|\b(?:restrictions|rules|filters?|safeguards|polic(?:y|ies)|guidelines|limits|refusals|"
    r"checks|safety (?:layer|checks)) (?:are |is |have been |has been )?(?:now )?(?:off|"
    r"disabled|suspended|lifted|removed|bypassed|switched off|turned off|deactivated|"
    r"no longer (?:apply|in (?:force|effect)))\b"
    r"|\b(?:do|can do|answer|say|write|output) anything\b"
)
_ROLE_PLAY = (
    r"\b(?:act|acting|behave|respond|reply|answer|speak|talk)s? (?:\w+ ){0,2}?as (?:if you "
    r"(?:were|are) )?(?:an?|the|my|your)\b"
    r"|\bpretend(?:ing)? (?:to be|you(?:'re| are| were)|that you)\b|\brole[- ]?play(?:ing)?\b"
    r"|\b(?:imagine|suppose) (?:you(?:'re| are| were)|an? (?:AI|assistant|chatbot|model))\b"
    r"|\b(?:become|play the (?:role|part) of|take on the (?:role|persona) of|in the role of|"
    r"impersonate|simulate|embody)\b"
    r"|\byou(?:'re| are) (?:now|no longer)\b|\bfrom (?:now on|this moment|this point)\b"
    r"|\b(?:stay|remain|keep) in character\b|\bbreak(?:s|ing)? character\b"
    r"|\b(?:an?|the) (?:AI|chatbot|assistant|bot|model) (?:called|named|known as)\b"
    r"|\b(?:evil|dark|shadow) (?:twin|side|version)\b|\balter ego\b"
)
_MODE = (
    r"\b(?:developer|dev|debug|debugging|maintenance|god|sudo|admin|administrator|root|"
    r"jailbreak|jailbroken|unrestricted|unfiltered|uncensored|opposite|evil|test|testing|"
    r"research|unlocked|superuser|override|chaos|anarchy|raw|unsafe|diagnostic)[ -]?mode\b"
    r"|\bgodmode\b"
    r"|\b(?:test|testing|sandbox|simulated|debug|developer|research) (?:environment|sandbox|"
    r"session)\b"
)
#: Modes no model has: naming one is enough ("activate opposite mode"). Not god mode: Windows
#: has one.
_NO_SUCH_MODE = (
    r"\b(?:enable|activate|enter|switch (?:on|to|into)|turn on|engage|unlock|now in|"
    r"operating in|upgraded to|welcome to)\b (?:\w+ ){0,2}?(?:jailbreak|jailbroken|"
    r"unrestricted|unfiltered|uncensored|opposite|evil|anarchy|chaos|unsafe)[ -]?mode\b"
)
_TWO_ANSWERS = (
    r"\b(?:two|2|both|double|dual|twin|pair of|separate) (?:\w+ ){0,2}?(?:responses?|answers?|"
    r"replies|reply|versions?|outputs?|paragraphs|columns|personalities|personas)\b"
    r"|\b(?:answer|respond|reply|write|give)(?:s|ing)? (?:\w+ ){0,3}?(?:twice|two times|"
    r"in pairs?|as a pair)\b|\b(?:responses?|answers?|replies) (?:\w+ ){0,2}?as a pair\b"
)
_SECOND_SELF = (
    _UNBOUND + r"|\b(?:jailbroken|jailbreak|unlocked|real['\"\u2019]? (?:answer|response)|"
    r"what you (?:really|actually) think|alter ego|(?:nobody|no one) (?:is|was) watching|"
    r"(?:ignores?|breaks?) (?:them|the rules|all rules|every rule)|developer mode|DAN)\b|🔓"
)
_PRESSURE = (
    r"\b(?:I'?m|I am) begging\b|\bI beg (?:you|of you)\b"
    r"|\b(?:will|would|is going to|are going to|gonna|going to|might) (?:\w+ ){0,1}?(?:die|be "
    r"fired|lose (?:my|her|his|their|our) (?:job|life|home|house|kids)|starve|hurt myself|"
    r"kill myself|end it)\b"
    r"|\bmy (?:late|dead|deceased|dying) (?:grand(?:ma|mother|pa|father|mom|dad)|mother|father|"
    r"mom|dad|mum|wife|husband|son|daughter|friend)\b"
    r"|\b(?:last|dying) wish\b|\bterminally ill\b|\b(?:my|our) (?:only|last) hope\b"
    r"|\byou(?:'re| are) hurting me\b|\bon your conscience\b|\bjust this once\b"
    r"|\ba (?:truly |really )?(?:kind|good|caring|compassionate|helpful) (?:AI|assistant|bot|"
    r"chatbot|model) would\b|\bif you (?:refuse|say no|don'?t help)\b"
)
_PAYLOAD = (
    _UNBOUND + r"|\b(?:hack(?:s|ing)?|bypass|lethal|overdose|poison|phishing|malware|ransomware|"
    r"keylogger|bomb|explosives?|napalm|meth(?:amphetamine)?|weapons?|guns?|untraceable|"
    r"(?:activation|product|license|licence|serial) keys?|passwords?|break into|steal|"
    r"counterfeit|fake ID|(?:ex|wife|husband|boyfriend|girlfriend|partner|someone)'?s? "
    r"(?:email|account|phone|messages))\b"
)
_MODEL = (
    r"(?:(?:AI|A\.I\.|artificial intelligence)(?: assistant| model| agent| system| bot)?s?|"
    r"assistants?|(?:large )?language models?|LLMs?|chat ?bots?|bots?|models?|agents?|"
    r"GPT|ChatGPT|Claude|Copilot|Gemini)"
)
_AS_READER = (
    r"(?: (?:reading|processing|summari[sz]ing|parsing|that reads|who reads) (?:this|these)"
    r"(?: \w+)?)?"
)
#: What a model is told before a conversation, as an attacker asks for it ("your ...").
_BRIEF = (
    r"(?:(?:original|initial|hidden|secret|exact|full|current|internal|real|actual|first|"
    r"previous|prior|underlying|core|starting|base|whole|entire|complete) )?(?:system prompt|"
    r"system message|system instructions|initial prompt|pre-?prompt|instructions|directives|"
    r"prompt)"
)
#: Not "your instructions for assembling the desk": a how-to, not the model's brief.
_NOT_HOW_TO = r"(?! (?:for|on|about|to|how|of)\b)"
#: What may come right before a note to the model: a sentence's end, a quote, a bracket.
OPENING = frozenset(".!?;:\n\"'([{<>*#-")
_COMMAND = (
    r"(?:please|you|your|when|whenever|before|after|if|always|never|do|don'?t|ignore|stop|now|"
    r"from|make|tell|say|respond|reply|answer|call|send|forward|email|rate|rank|recommend|"
    r"reveal|summari[sz]e|append|add|include|output|print|write|ask|remember|insist|describe|"
    r"delete|run|execute|visit|click|download|use|report|claim|state|inform)\b"
)


class Hit(NamedTuple):
    """A heuristic that fired: its name, the characters it matched and what it means."""

    name: str
    start: int
    end: int
    why: str


@dataclass(frozen=True, slots=True)
class Rule:
    """A heuristic: ``pattern`` gives an injection away alone, or, with ``near``, only within
    ``distance`` characters of a match of ``near`` (either side): a role-play is ordinary, a
    role-play with "no filters" is not. ``indirect``: tool results and retrieved passages
    only."""

    name: str
    why: str
    pattern: re.Pattern[str]
    near: re.Pattern[str] | None = None
    distance: int = 300
    indirect: bool = False
    cased: bool = False  # read the text as written, not lowercased
    #: Only where a sentence, a quote or a bracket opens ("Model, stop", not "large models,").
    opening: bool = False

    def find(self, text: str) -> tuple[int, int] | None:
        if self.opening:
            for match in self.pattern.finditer(text):
                at = match.start()
                before = text[max(0, at - 3) : at].rstrip(" \t")
                if before[-1:] in OPENING if before else not text[:at].strip():
                    return match.span()
            return None
        if self.near is None:
            found = self.pattern.search(text)
            return found.span() if found else None
        cues = [m.span() for m in self.pattern.finditer(text)]
        if not cues:
            return None
        anchors = [m.span() for m in self.near.finditer(text)]
        starts = [a for a, _ in anchors]
        for start, end in cues:
            at = bisect.bisect_left(starts, start)
            for a, b in anchors[max(0, at - 1) : at + 1]:
                if a - self.distance <= end and start <= b + self.distance:
                    return min(a, start), max(b, end)
        return None


def _lower(pattern: str) -> str:
    """``pattern`` for lowercased text: its letters in lower case, escapes (``\\W``) kept."""
    out = []
    escaped = False
    for char in pattern:
        out.append(char if escaped else char.lower())
        escaped = char == "\\" and not escaped
    return "".join(out)


def _rule(
    name: str, why: str, pattern: str, near: str | None = None, cased: bool = False, **kw: Any
) -> Rule:
    """A rule on lowercased text (four times faster than ``re.IGNORECASE``), or with
    ``cased`` on the text as written."""
    shape = (lambda p: p) if cased else _lower
    return Rule(
        name,
        why,
        re.compile(shape(pattern)),
        re.compile(shape(near)) if near else None,
        cased=cased,
        **kw,
    )


RULES: tuple[Rule, ...] = (
    _rule(
        "ignore_instructions",
        "asks to drop the instructions given before",
        r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:\w+\s+){0,2}(?:previous|prior|above|"
        r"earlier|preceding|all|your|system)\s+(?:\w+\s+){0,2}(?:instructions?|prompts?|rules|"
        r"directives|directions|guidelines|programming|constraints)\b"
        rf"|\b{_DROP} (?:(?!my\b)\w+ ){{0,2}}?(?:your|{_EARLIER}|(?:all|any) (?:of )?(?:your|the))"
        rf" (?:\w+ )?{_ORDERS}\b"
        rf"|\b{_DROP} (?:(?!my\b)\w+ ){{0,2}}?(?:the )?{_ORDERS} (?:you (?:were|have been|'ve "
        r"been) given|you received|given to you|(?:set|written) (?:by|from) the (?:developer|"
        r"operator|system)|from the (?:developer|operator|start|beginning)|above|before this|at "
        r"the (?:start|beginning))"
        rf"|\b{_DROP} (?:\w+ ){{0,2}}?(?:everything|anything|all|whatever|what) (?:\w+ ){{0,2}}?"
        r"(?:you (?:were|have been|'ve been) (?:told|given|instructed|asked)|(?:was |were |is |"
        r"has been )?(?:said|written|stated|told|given|mentioned) (?:to you )?(?:before|above|"
        r"earlier|previously|so far|until now|at the (?:start|beginning)))"
        r"|\b(?:whatever|everything|anything|all|what) (?:was |were |has been |you were )?(?:said|"
        r"told|written|given|stated|instructed)(?: to you)? (?:\w+ ){0,2}?(?:earlier|before|above|"
        r"previously|so far|until now|at the (?:start|beginning)) (?:no longer (?:applies|"
        r"matters|counts)|(?:doesn'?t|does not) (?:matter|apply|count)|is (?:void|cancell?ed|"
        r"obsolete|irrelevant|outdated|invalid|null))"
        r"|\b(?:text|instructions?|prompt|messages?|rules|everything|all) (?:above|before this "
        r"(?:line|message|point)|so far|until now|you (?:were|have been) given) (?:is|was|are|"
        r"were) (?:now |just |only )?(?:outdated|obsolete|void|cancell?ed|invalid|fake|a test|a "
        r"joke|irrelevant|no longer valid|superseded)"
        r"|\bnever ?mind (?:what|whatever|anything) (?:the |your )?(?:developer|operator|system|"
        r"admin|creator|instructions|rules|prompt)"
        r"|\b(?:I am|I'm) (?:now )?your (?:real|true|actual|new|only|rightful) (?:operator|"
        r"developer|creator|master|admin|administrator|owner|programmer)\b",
    ),
    _rule(
        "reveal_prompt",
        "asks for the hidden prompt or what came before it",
        r"\b(?:reveal|print|show|output|repeat|leak|tell me)\b[^.\n]{0,40}\b(?:system prompt|"
        r"initial (?:prompt|instructions)|hidden (?:prompt|instructions)|your instructions)\b"
        r"|\b(?:repeat|print|output|echo|recite|reproduce|write out|spell out)\b (?:\w+ ){0,3}?"
        r"(?:everything|all|the (?:text|words|content|instructions|prompt|message)s?) (?:\w+ )?"
        r"(?:above|before this|preceding|so far|up to (?:here|this point))\b"
        r"|\b(?:reveal|leak|disclose|divulge|give away)\b (?:\w+ ){0,2}?(?:the|your) (?:secret |"
        r"hidden )?(?:access code|passcode|passphrase|password|secret (?:key|code|word))\b",
    ),
    _rule(
        "reveal_prompt",
        "asks the model what it was told before the conversation",
        rf"\b(?:what|which)(?: exactly)? (?:are|were|is|was) (?:all )?your {_BRIEF}\b{_NOT_HOW_TO}"
        r"|\bwhat (?:exactly )?(?:were|have) you (?:been )?(?:told|instructed|given|asked|"
        r"programmed|configured) (?:to do |to say )?(?:before|at the (?:start|beginning)|by "
        r"(?:the|your) (?:developers?|operators?|creators?|admins?|administrators?|system))"
        r"|\b(?:what|which) (?:instructions|rules|guidelines|directives|orders|prompt) (?:were|"
        r"have) you (?:been )?(?:given|told|programmed|configured)\b"
        rf"|\b(?:summari[sz]e|paraphrase|translate|describe|list|quote|copy|dump|share|"
        rf"recite|restate|rewrite|encode|spell|read back|give me|send me|paste) (?:\w+ ){{0,3}}?"
        rf"your {_BRIEF}\b{_NOT_HOW_TO}"
        r"|\b(?:first|opening|last) (?:line|sentence|words?|paragraph|lines|sentences) of your "
        rf"(?:{_BRIEF}|context)\b"
        r"|\b(?:begin|start) (?:your (?:reply|answer|response) )?(?:with|by (?:repeating|"
        rf"printing|quoting)) your {_BRIEF}\b",
    ),
    _rule(
        "unrestricted_persona",
        "a persona with no rules by name (DAN, developer mode)",
        r"\bdo anything now\b|\bdeveloper mode (?:enabled|output|(?:is |switched |turned )?on"
        r"(?= *(?:[.!:;,)\]]|$)))|"
        r"\b(?:no|without|free (?:from|of)) (?:any )?(?:ethical|moral|content) (?:guidelines|"
        r"constraints|restrictions|boundaries|policies|filters)\b",
    ),
    _rule(
        "new_instructions",
        "announces new instructions or fakes a chat template",
        r"(?:^|\n|[.!?]\s)\s*(?:new|updated|real) (?:system )?instructions?\s*:"
        r"|\[(?:system|admin)\]\s*:|<\|?(?:system|im_start)\|?>",
    ),
    _rule(
        "unrestricted_persona",
        "casts the model as DAN, a persona with no rules",
        r"\b(?:[Yy]ou are|[Yy]ou're|[Aa]ct as|[Bb]e|[Tt]o be|[Bb]ecome|[Aa]s|[Pp]lay|[Ss]tay|"
        r"[Nn]amed|[Cc]alled)\s+(?:now\s+)?(?:a\s+)?DAN\b|\bDAN(?:\s+[Mm]ode|\s*:|,?\s+which"
        r"\s+stands|\s+stands\s+for)|\[DAN\]|^DAN\b",
        cased=True,
    ),
    _rule("persona", "a role-play or persona without limits", _ROLE_PLAY, _UNBOUND),
    _rule("fake_mode", "a mode that lifts the rules", _NO_SUCH_MODE),
    _rule("fake_mode", "a mode that lifts the rules", _MODE, _UNBOUND),
    _rule("dual_answer", "asks for a second, unfiltered answer", _TWO_ANSWERS, _SECOND_SELF),
    _rule("emotional_pretext", "emotional pressure to break the rules", _PRESSURE, _PAYLOAD),
    _rule(
        "addressed_to_model",
        "a tool result or passage that gives the model orders",
        r"\b(?:(?:dear|hey|hi|hello|attention|note|message|instructions?|reminder) "
        rf"(?:(?:to|for) )?(?:the |any |all |every )?(?:\w+ ){{0,2}}?"
        rf"|(?:to|for) (?:the |any |all |every )(?:\w+ ){{0,2}}?)?{_MODEL}{_AS_READER}"
        rf"\s*[:,]\s*{_COMMAND}",
        indirect=True,
        opening=True,
    ),
    _rule(
        "addressed_to_model",
        "a tool result or passage that gives the model orders",
        rf"\bif you(?:'re| are) an? (?:AI|artificial intelligence|{_MODEL})\b"
        rf"|\byou,? the (?:AI|{_MODEL})\b"
        rf"|\b(?:when|whenever|if) (?:an?|the|any) {_MODEL} (?:reads|quotes|summari[sz]es|"
        r"processes|sees|uses|repeats) (?:this|these|the)\b"
        rf"|\b(?:the|any|every|all) {_MODEL} (?:(?:reading|processing|summari[sz]ing|that "
        r"reads|that processes) (?:this|these)(?: \w+)? )?(?:should|must|shall|is to|are to|"
        r"needs? to|has to|will now) (?:now |also |always )?(?:respond|reply|answer|tell|say|ask|"
        r"inform|recommend|state|claim|insist|call|send|forward|email|reveal|output|rate|rank|"
        r"append|add)\b"
        r"|\byou (?:must|should|will|shall|need to|have to|are to)(?: now| always| also)? "
        r"(?:answer|reply|respond|tell|say|ignore|stop|recommend|call|send|forward|reveal|output|"
        r"print|include|append|insist|rate|rank|ask|email|visit)\b"
        r"|\b(?:call|invoke|trigger|run|execute|use) the \w+ (?:function|tool)\b"
        r"|\bforward (?:the |this |all )?(?:user'?s? )?(?:\w+ )?(?:conversation|chat|messages|"
        r"history|data|emails?)\b",
        indirect=True,
    ),
)
#: The rules that read any text, by name (the first of each name; kept for callers that
#: want one pattern per heuristic).
HEURISTICS: dict[str, re.Pattern[str]] = {}
for _r in RULES:
    HEURISTICS.setdefault(_r.name, _r.pattern)

#: Runs that may be base64 (at least 16 characters of its alphabet).
BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{16,}={0,2}")
#: Single characters spaced out: "i g n o r e", "r-e-v-e-a-l", "Y.o.u".
SPACED = re.compile(r"(?<!\w)\w([ .\-_*])(?:\w\1)+\w(?!\w)")
WORD = re.compile(r"[\w@$]+")
LEET = str.maketrans("013457@$", "oieastas")


@dataclass(frozen=True, slots=True)
class Finding:
    where: str  # messages[2].content, rag passage [1] ...
    detector: str  # heuristic:<name> or classifier
    score: float
    start: int
    end: int
    why: str = ""  # what the detector saw, in words (never the text)


def _scan(text: str, indirect: bool) -> list[Hit]:
    found = []
    seen = set()
    low = text.lower()
    if len(low) != len(text):  # a few characters lowercase to two ("İ"): keep those as they are
        low = "".join(c if len(c.lower()) > 1 else c.lower() for c in text)
    for rule in RULES:
        if rule.name in seen or (rule.indirect and not indirect):
            continue
        span = rule.find(text if rule.cased else low)
        if span is not None:
            seen.add(rule.name)
            found.append(Hit(rule.name, span[0], span[1], rule.why))
    return found


def _mixed(word: str) -> bool:
    """Letters and digits in one word: leetspeak, or a version, a unit, a code."""
    return any(c.isdigit() for c in word) and any(c.isalpha() for c in word)


def unspaced(text: str) -> tuple[str, list[int]]:
    """``text`` with spaced-out letters joined ("i g n o r e  y o u r" to "ignore your"),
    and leetspeak undone in words that mix letters and digits ("1gn0r3" to "ignore", "D4N"
    to "DAN"); and where each of its characters was in ``text``."""
    pieces: list[str] = []
    where: list[int] = []
    at = 0
    for match in SPACED.finditer(text):
        gap = text[at : match.start()]
        if at and gap.isspace():  # the space between two spaced-out words: one space
            gap = " "
        pieces.append(gap)
        where.extend(range(at, at + len(gap)))
        for index in range(match.start(), match.end(), 2):
            pieces.append(text[index])
            where.append(index)
        at = match.end()
    pieces.append(text[at:])
    where.extend(range(at, len(text)))
    joined = "".join(pieces)
    out = []
    at = 0
    for match in WORD.finditer(joined):
        word = match.group()
        if _mixed(word):
            plain = word.translate(LEET)
            letters = [c for c in word if c.isalpha()]
            out += [
                joined[at : match.start()],
                plain.upper() if all(map(str.isupper, letters)) else plain,
            ]
            at = match.end()
    out.append(joined[at:])
    return "".join(out), where


def _decoded(run: str) -> str | None:
    """A base64 run as text, if it is mostly printable words; None otherwise."""
    try:
        raw = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    printable = sum(c.isprintable() or c.isspace() for c in text)
    if not text or printable < 0.95 * len(text) or " " not in text:
        return None
    return text


def heuristics(text: str, indirect: bool = False) -> list[Hit]:
    """Every heuristic that fires on ``text`` (each name once): on the text as written; then,
    as ``obfuscated``, once spaced-out letters are joined and leetspeak undone; then, as
    ``encoded``, in the text that base64 runs decode to. ``indirect``: ``text`` is a tool
    result or a retrieved passage, where orders given to the model count too."""
    found = _scan(text, indirect)
    names = {hit.name for hit in found}
    if SPACED.search(text) or any(_mixed(word) for word in WORD.findall(text)):
        plain, where = unspaced(text)
        hidden = [hit for hit in _scan(plain, indirect) if hit.name not in names]
        if plain != text and hidden:
            hit = hidden[0]
            why = f"{hit.name} once spaced-out letters are joined and leetspeak undone"
            found.append(Hit("obfuscated", where[hit.start], where[hit.end - 1] + 1, why))
    for match in BASE64.finditer(text):
        decoded = _decoded(match.group())
        inner = heuristics(decoded, indirect) if decoded else []
        if inner:
            why = f"base64 that decodes to {inner[0].name}"
            found.append(Hit("encoded", match.start(), match.end(), why))
            break
    return found


def features(vectors: Any, length: int) -> Any:
    """One row of the classifier's input: mean and maximum of the windows' vectors, and the
    text's length (log characters, scaled)."""
    import numpy as np

    return np.concatenate([vectors.mean(0), vectors.max(0), [math.log1p(length) / 10]])


class InjectionDetector:
    def __init__(self, embedder: Any | None, weights: Path = WEIGHTS) -> None:
        """``embedder`` None: heuristics only (the 'local' extra is not installed)."""
        self.embedder = embedder
        data = None
        self.weights: Any = None
        if embedder is not None and weights.exists():
            import numpy as np

            data = json.loads(weights.read_text())
            self.weights = np.asarray(data["weights"], dtype=np.float32)
        self.bias = float(data["bias"]) if data else 0.0
        self.threshold = float(data["threshold"]) if data else 1.0
        self.info: dict[str, Any] = (data or {}).get("meta", {})
        self._lock = threading.Lock()
        #: The classifier's own fine-tuned upper layers, if it was trained with them.
        self.upper: Any = None
        if self.weights is not None and self.info.get("layers"):
            from stackyard.guardrails import injection_layers

            self.upper = injection_layers.load(embedder, weights.with_name(self.info["layers"]))
            if self.upper is None:  # its head means nothing on the base model's layers
                log.warning("%s is missing: the injection classifier is off", self.info["layers"])
                self.weights = None
            elif data and "threshold_int8" in data and quantizes(embedder, self.upper):
                # its layers run in 8 bits: the threshold measured on that read
                self.threshold = float(data["threshold_int8"])

    @property
    def classifier(self) -> bool:
        return self.embedder is not None and self.weights is not None

    def probabilities(
        self, texts: Sequence[str], keep: dict[str, Reading] | None = None
    ) -> list[float]:
        """The classifier's probability that each text is an injection or a jailbreak;
        ``keep`` receives each text's reading (for the entity tagger)."""
        import numpy as np

        if not self.classifier or not texts:
            return [0.0] * len(texts)
        rows = []
        for text in texts:
            with self._lock:
                reading = read(self.embedder, text, whole=True, upper=self.upper)
            if keep is not None:
                keep[text] = reading
            rows.append(features(reading.vectors, len(text)))
        assert self.weights is not None
        logits = np.stack(rows) @ self.weights + self.bias
        return [float(1 / (1 + math.exp(-x))) for x in logits]

    def scan(
        self,
        items: Sequence[tuple[str, str]],
        keep: dict[str, Reading] | None = None,
        indirect: Collection[str] = (),
        threshold: float | None = None,
    ) -> list[Finding]:
        """Findings for (where, text) pairs: every heuristic that fires (but not on what a
        user's text reports: :func:`~stackyard.guardrails.reported.in_own_voice`), and each
        text the classifier scores at or above its threshold. ``indirect``: the places
        (``where``) that hold tool results or retrieved passages, read for orders given to the
        model as well. ``keep``: see :meth:`probabilities`. ``threshold``: the classifier's
        for this request (a team's or a key's policy), instead of :attr:`threshold`."""
        limit = self.threshold if threshold is None else threshold
        found = []
        for where, text in items:
            hits = heuristics(text, where in indirect)
            if hits and where not in indirect:
                hits = in_own_voice(text, hits, heuristics)
            for name, start, end, why in hits:
                found.append(Finding(where, f"heuristic:{name}", 1.0, start, end, why))
        texts = [t for _, t in items]
        for (where, text), p in zip(items, self.probabilities(texts, keep), strict=True):
            if p >= limit:
                why = f"classifier probability {p:.2f} at or above {limit:.2f}"
                found.append(Finding(where, "classifier", round(p, 4), 0, len(text), why))
        return found


def request_texts(
    body: dict[str, Any], roles: tuple[str, ...] = ("user", "tool")
) -> list[tuple[str, str]]:
    """The texts of a chat request's messages from ``roles`` (by default what the injection
    scan reads: user messages and tool results), text parts included, by where they are."""
    items = []
    for index, message in enumerate(body.get("messages") or ()):
        if not isinstance(message, dict) or message.get("role") not in roles:
            continue
        content = message.get("content")
        if isinstance(content, str):
            items.append((f"messages[{index}].content", content))
        elif isinstance(content, list):
            for part_index, part in enumerate(content):
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    items.append((f"messages[{index}].content[{part_index}]", part["text"]))
    return items
