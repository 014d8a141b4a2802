"""Text put in the speaker's own voice: small models say the names they are shown, their own included."""

from __future__ import annotations

import re

#: Verbs that change when "I" takes the name's place; others lose a third-person "s" ("wants" → "want").
_FIRST_PERSON = {"is": "am", "has": "have", "does": "do", "was": "was", "'s": "'m"}
_MODALS = {"will", "would", "can", "could", "should", "might", "must", "may", "shall"}
#: Words after which a name is the one spoken to ("Hi Tom!"), not the one spoken of.
_GREETING = r"(?:hi|hey|hello|oh|yes|no|thanks|thank you|good morning|good afternoon|good evening|morning|well|sure)"


def in_first_person(name: str, text: str) -> str:
    """A memory about `name` as `name` would say it: "Ann is hosting a picnic" becomes "I am hosting a picnic"."""
    for label in dict.fromkeys((name, name.split()[0] if name.split() else name)):
        escaped = re.escape(label)
        text = re.sub(rf"\b{escaped}'s\b", "my", text)
        text = re.sub(rf"\b{escaped}\b(\s+)([\w']+)",
                      lambda m: f"I{m.group(1)}{_verb(m.group(2))}" if _is_verb(m.group(2)) else m.group(0), text)
        text = re.sub(rf"\b{escaped}\b", "me", text)
    return re.sub(r"^my\b", "My", text)


def _is_verb(word: str) -> bool:
    """Whether the word after a name makes the name its subject ("Ann wants", "Ann will"), roughly."""
    return word in _FIRST_PERSON or word in _MODALS or (len(word) > 3 and word.endswith(("s", "ed")))


def _verb(word: str) -> str:
    if word in _FIRST_PERSON:
        return _FIRST_PERSON[word]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")) else word


def without_self_address(speaker: str, line: str) -> str:
    """The line with its speaker's own name taken out where it is the one spoken to ("Hi Ann!" said by Ann).

    Only a name used as a greeting's or a sentence's addressee is taken out; any other mention is left for
    the caller's checks, which ask for the line again.
    """
    first = re.escape(speaker.split()[0]) if speaker.split() else re.escape(speaker)
    name = rf"{first}(?:\s+{re.escape(speaker.split()[-1])})?" if len(speaker.split()) > 1 else first
    # "Hi Ann!" / "Hello Bob, Ann!" → "Hi!" / "Hello Bob!"; "Ann, it's you" → "It's you"; "..., Ann." → "..."
    line = re.sub(rf"(\b{_GREETING})\s+{name}(?=\s*[,.!?])", r"\1", line, flags=re.I)
    line = re.sub(rf",\s*{name}(?=\s*[.!?])", "", line)
    line = re.sub(rf"(^|(?<=[.!?]\s)){name},\s*(\w)", lambda m: m.group(1) + m.group(2).upper(), line)
    return line
