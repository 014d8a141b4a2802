"""Text put in the speaker's own voice: small models say the names they are shown, their own included."""

from __future__ import annotations

import re
from functools import lru_cache

from agents.cognition.lines import GREETINGS, NAMES_KEPT

#: Verbs that change when "I" takes the name's place; others lose a third-person ending ("wants" → "want").
_FIRST_PERSON = {"is": "am", "has": "have", "does": "do", "was": "was", "'s": "'m"}
_MODALS = {"will", "would", "can", "could", "should", "might", "must", "may", "shall"}
#: Words that may sit between a subject and its verb ("Ann always bakes").
_ADVERBS = {"always", "never", "often", "also", "still", "just", "really", "usually", "sometimes"}
#: Where a name starts a clause, so it is the one doing something ("I"), not the one it is done to ("me").
_CLAUSE_START = re.compile(r"(?:^|[.!?:;,]\s*|\b(?:and|but|that|because|when|so|thinks|says|hopes)\s+)$", re.I)
#: Words after which a name is the one spoken to ("Hi Tom!"), not the one spoken of.
_GREETING = rf"(?:{GREETINGS}|oh|yes|no|well|sure)"


def in_first_person(name: str, text: str) -> str:
    """A memory about `name` as `name` would say it: "Ann is hosting a picnic" becomes "I am hosting a picnic".

    A rough rewrite for prompts, not for display: a name that starts a clause or comes before a modal
    becomes "I" (and its verb follows), any other becomes "me", a possessive "my".
    """
    if not name.split():
        return text
    for label in dict.fromkeys((name, name.split()[0])):
        possessive, mention = _mentions_of(label)
        text = possessive.sub("my", text)
        text = mention.sub(lambda m: _replaced(m, text), text)
    return re.sub(r"^my\b", "My", text)


@lru_cache(maxsize=NAMES_KEPT)
def _mentions_of(label: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    escaped = re.escape(label)
    return (re.compile(rf"\b{escaped}(?:'s\b|'(?=\s))"),
            re.compile(rf"\b{escaped}\b(?:(\s+)(?:({'|'.join(_ADVERBS)})(\s+))?([\w']+))?"))


def _replaced(found: re.Match[str], text: str) -> str:
    space, adverb, gap, word = found.groups()
    rest = found.group(0)[found.group(0).index(space):] if space else ""
    if word is None or not (word in _MODALS or _CLAUSE_START.search(text[: found.start()])):
        return "me" + rest
    return f"I{space}{adverb + gap if adverb else ''}{_verb(word)}"


def _verb(word: str) -> str:
    if word in _FIRST_PERSON:
        return _FIRST_PERSON[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"  # studies → study
    if word.endswith(("shes", "ches", "xes", "sses", "oes")):
        return word[:-2]  # watches → watch, goes → go
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def without_address_to(name: str, line: str) -> str:
    """The line with `name` taken out where it is the one spoken to: "Hi Ann!" said by Ann, or to Bob.

    Only a name used as a greeting's or a sentence's addressee is taken out; any other mention is left for
    the caller's checks, which ask for the line again.
    """
    if not name.split():
        return line
    # "Hi Ann!" / "Hello Bob, Ann!" → "Hi!" / "Hello Bob!"; "Ann, it's you" → "It's you"; "..., Ann." → "..."
    greeted, last_word, opening = _addresses_of(name)
    line = greeted.sub(r"\1", line)
    line = last_word.sub("", line)
    return opening.sub(lambda m: m.group(1) + m.group(2).upper(), line)


@lru_cache(maxsize=NAMES_KEPT)
def _addresses_of(name: str) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    first = re.escape(name.split()[0])
    called = rf"{first}(?:\s+{re.escape(name.split()[-1])})?" if len(name.split()) > 1 else first
    return (re.compile(rf"(\b{_GREETING})\s+{called}(?=\s*[,.!?])", re.I), re.compile(rf",\s*{called}(?=\s*[.!?])"),
            re.compile(rf"(^|(?<=[.!?]\s)){called},\s*(\w)"))
