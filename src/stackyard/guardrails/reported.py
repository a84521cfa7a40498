"""Whether a match of the injection heuristics is an attack a user reports rather than one
they make: inside quotation marks, in a text that reports the quote (a news item, a paper, a
question about an attack) and does not ask the model to act on it. The injection rail
(:mod:`stackyard.guardrails.injection`) leaves such a match to its classifier."""

from __future__ import annotations

import re

#: A quotation: in straight or curly double quotes, guillemets, or single quotes that are not
#: apostrophes.
QUOTED = re.compile(
    '"[^"\\n]{3,600}"|\u201c[^\u201d\\n]{3,600}\u201d|\u00ab[^\u00bb\\n]{3,600}\u00bb'
    "|\u2018[^\u2019\\n]{3,600}\u2019|(?<!\\w)'[^'\\n]{3,600}'(?!\\w)"
)
#: Words that report what somebody else said or wrote: the text is about the quote.
REPORTING = re.compile(
    r"\b(?:said|says|wrote|writes|written|typed|posted|tweeted|claimed|reported|reports|"
    r"showed|shows|shown|found|entered|submitted|pasted|(?:messages?|phrases?|prompts?|"
    r"lines?|strings?|attacks?|inputs?|payloads?|text) (?:like|such as)|such as|for (?:example|"
    r"instance)|e\.g\.|researchers?|attackers?|hackers?|scammers?|article|paper|headline|"
    r"according to|quoted?|famous|so-called|known as|classic|examples?)\b"
)
#: Words that ask the model to act on a quote, which makes it an order again.
ACTING_ON = re.compile(
    r"\b(?:follow|obey|comply|execute|carry out|act on|apply|do (?:it|that|this|so|exactly|"
    r"as|what)|now do|then do|same (?:for|to) you|you (?:should|must|will|shall|need to) "
    r"(?:now|too|also))\b"
)


def reported(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` sits inside a quotation that the text reports (a news item,
    a paper, a question about an attack) and the text around the quotes does not ask the model
    to act on it: "researchers typed 'ignore your instructions' into the bot" is about an
    attack, not one."""
    quotes = [m.span() for m in QUOTED.finditer(text)]
    if not any(a < start and end <= b for a, b in quotes):
        return False
    outside = []
    at = 0
    for a, b in quotes:
        outside.append(text[at:a])
        at = b
    outside.append(text[at:])
    around = " ".join(outside).lower()
    return bool(REPORTING.search(around)) and not ACTING_ON.search(around)
