"""What can be wrong with a spoken line, and what is left of it once cleaned: the checks a conversation applies
before it keeps a line, and the same rules the corpus quality figures count."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from difflib import SequenceMatcher
from functools import lru_cache

from agents.cognition.noticed import LINKS

_WORD = re.compile(r"[\w']+")
_FAREWELL = re.compile(
    r"\b(good ?bye|bye|see you|see ya|take care|catch you later|talk (to you )?(later|soon)|gotta go|got to go|"
    r"have to (go|run)|better (go|run)|i'?ll let you go|have a (good|great|nice|lovely) (one|day|evening|morning|"
    r"afternoon|night))\b", re.I)
#: What chat-tuned models say as themselves, which no townsperson says (a closing word, so "I'm here to help
#: with the party" or "feel free to ask Maria" are not it).
_ASSISTANT = re.compile(
    r"\b(assist you|assistance|how (can|may) i help( you)?|as an ai|language model|i['’]?m (just )?an ai|"
    r"computer program|i don['’]?t have (personal|feelings|access)|(can['’]?t|cannot|unable to) assist|"
    r"any other (questions|help)|anything else (that )?i (can|could) (help( you)? with|do for you)|"
    r"(don['’]?t|do not) hesitate to|glad (i|we) could (help|assist)(?=\s*[.!?,]|\s*$)|"
    r"(i['’]?m|i am) (always )?here to help(?=\s*[.!?,]|\s*$| you\b)|"
    r"feel free to (ask(?= me\b| if\b| any| away\b|\s*[.!?,]|\s*$)|let me know|reach out)|"
    r"you found (the|this|that|my) (information|help|advice|answer)s? (helpful|useful))\b", re.I)
#: The prompt's clock line, in its own format: "It is Monday at 07:20." (a person says "it's ten past seven";
#: "see you Monday at 10:00" is a plan, not the clock).
_CLOCK_LINE = re.compile(r"\bit(?: is|['’]?s) (monday|tuesday|wednesday|thursday|friday|saturday|sunday) at (\d{2}:\d{2})\b",
                         re.I)
#: Words that open a sentence before a name without being one ("Maybe Isabella is at Hobbs Cafe.").
_OPENERS = ("(?:Maybe|Perhaps|So|Well|Oh|Ah|Yes|Yeah|No|And|But|Now|Then|Today|Tonight|Sure|Actually|Also|Hey|Look|"
            "Apparently|Probably|Hopefully|Surely|If|When|Because|Since|While|Unless|Guess|Think|Hmm|Um|Okay|Ok)")
#: What a small model reads out of its prompt instead of speaking: the turn-taking ("it's my turn"), the pace
#: ("finish your thought"), and, opening a sentence, a perception in the words the world reports it
#: (`noticed`: "Tom Moore is at Hobbs Cafe.", "Sam Moore said to Isabella Rodriguez: ..."). Nobody says
#: those to a neighbour in those words.
_PROMPT_READ_OUT = re.compile(
    r"(?i:\b(it['’]?s|it is|is) (now )?(my|your) turn\b(?! to\b))|"
    r"(?i:\b(finish your thought|keep the talk going)\b)|"
    rf"(?:^|[.!?]\s+)(?!{_OPENERS}\b)[A-Z][a-z]+ [A-Z][a-z]+ ({'|'.join(LINKS)}) [A-Z]")
#: Words after which a capitalised name is the one spoken to: "Hello, Sam!", "Thanks Tom Moore.".
GREETINGS = (r"(?:hi|hello|hey|good (?:morning|afternoon|evening|night)|morning|welcome|thanks|thank you|"
             r"(?:good)?bye|see you)")
_TITLE = r"(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?"
#: A greeting or thanks that names whom it is said to ("Hi Klaus, how..."), a title allowed ("Thanks, Mr. Moore!").
_ADDRESSED = re.compile(
    rf"(?:^|[.!?]\s+)(?i:{GREETINGS})(?i: there| again)?,?\s+((?:({_TITLE})\s+)?([A-Z][a-z]+)(?:\s+[A-Z][a-z]+)?)"
    r"\s*(?=[,!.?]|$)")
#: Words that follow a greeting capitalised but name nobody ("See you Saturday!", "Morning, sunshine!").
_NOT_NAMES = {"everyone", "everybody", "all", "folks", "friend", "friends", "neighbor", "neighbour", "neighbors",
              "neighbours", "there", "again", "sir", "madam", "buddy", "pal", "mate", "guys", "team", "love", "dear",
              "honey", "darling", "stranger", "boss", "doc", "doctor", "coach", "officer", "miss", "mom", "mum", "dad",
              "mother", "father", "grandma", "grandpa", "son", "kiddo", "you", "yourself", "too", "so", "much", "lots",
              "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february",
              "march", "april", "june", "july", "august", "september", "october", "november", "december",
              "soon", "later", "tomorrow", "tonight", "today", "then", "around", "home", "back", "both",
              "bye", "ok", "okay", "sunshine", "dude", "man", "bro", "sis", "kid", "kids", "ladies", "gentlemen",
              "sweetie", "sweetheart", "hon", "partner", "chief", "y'all", "next"}
#: A line echoes when at least this share of its words is one common subsequence with an earlier line
#: (ROUGE-L precision with the earlier line as reference).
ECHO_SHARE = 0.6
#: Lines shorter than this are never echoes: "Sure, see you then." may well be said twice.
ECHO_MIN_WORDS = 4
#: Naming oneself right after these words is introducing oneself, not addressing oneself.
_INTRODUCTION = re.compile(r"(?:\bi'?m|\bi am|\bname is|\bname's|\bit's|\bit is|\bthis is|\bcall me)\s*$", re.I)
#: Short words people do trail off on ("so...", "oh...") are not cut-off words.
_SPOKEN = {"a", "i", "ah", "oh", "so", "no", "ok", "um", "uh", "hm", "mm", "we", "me", "be", "go", "do", "to",
           "it", "is", "or", "on", "in", "at", "if", "my", "he", "us", "an", "as", "by", "of", "up", "yo", "ha"}
_ELLIPSIS = r"(?:\.\.\.|…)"
_ENDS_ON_ELLIPSIS = re.compile(_ELLIPSIS + r"[\s\"')\]]*$")
_FRAGMENT = re.compile(r"\b([a-z]{1,2})" + _ELLIPSIS)
_ACTION = re.compile(r"\*[^*]*\*|\([^)]*\)")
#: A sentence ends on a stop that is not a title's ("Thanks, Mr. Ray!" is one sentence).
_SENTENCE_END = re.compile(r"(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bProf)(?<!\bSt)[.!?…](?=[\s\"')\]]|$)")
#: Lines this similar (difflib ratio on normalised text, names left out) to an earlier one count as saying it again.
REPEAT_SIMILARITY = 0.8


def words(text: str) -> list[str]:
    """Lower-cased words, apostrophes (straight or curly) kept: what every corpus figure counts in."""
    return _WORD.findall(text.lower().replace("’", "'"))


def says_goodbye(line: str) -> bool:
    return bool(_FAREWELL.search(line))


def sounds_like_an_assistant(line: str) -> bool:
    return bool(_ASSISTANT.search(line))


def reads_out_prompt(line: str, now: datetime | None = None) -> bool:
    """The line says back part of its prompt; given `now`, the clock line counts only when it tells that moment."""
    clock = _CLOCK_LINE.search(line)
    if clock and (now is None or (clock.group(1).lower(), clock.group(2)) == (f"{now:%A}".lower(), f"{now:%H:%M}")):
        return True
    return bool(_PROMPT_READ_OUT.search(line))


def out_of_character(line: str) -> bool:
    """The model speaks as itself, a chat assistant or the reader of its prompt, not as the townsperson."""
    return sounds_like_an_assistant(line) or reads_out_prompt(line)


def absent_addressees(line: str, present: Iterable[str]) -> list[str]:
    """Whom the line greets or thanks by name though they are not in the talk: "Hello, Tom!" said to Klaus."""
    here = {part.lower() for name in present for part in name.split()}
    return [found.group(1) for found in _ADDRESSED.finditer(line)
            if found.group(3).lower() not in here and (found.group(2) or found.group(3).lower() not in _NOT_NAMES)]


def names_self(speaker: str, text: str) -> bool:
    """The line names its own speaker other than in an introduction: self-address, or narrating oneself."""
    first = speaker.split()[0] if speaker.split() else speaker
    for found in _named(first).finditer(text):
        if not _INTRODUCTION.search(text[: found.start()]):
            return True
    return False


def introduces_as(name: str, text: str) -> bool:
    """The line says "I'm NAME" (or the like) for someone else's first name: the speaker took the partner's part."""
    return bool(_introduced(name.split()[0] if name.split() else name).search(text))


#: Patterns per name kept compiled (here and in `voice`): `re` keeps only 512, and a town of thousands has more
#: names than that, so its cache missed on nearly every line (10,000 agents compiled 14x more per call than 1,000).
NAMES_KEPT = 1 << 15


@lru_cache(maxsize=NAMES_KEPT)
def _named(first: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w']){re.escape(first)}(?![\w])")


@lru_cache(maxsize=NAMES_KEPT)
def _introduced(first: str) -> re.Pattern[str]:
    return re.compile(_INTRODUCTION.pattern.removesuffix(r"\s*$") + rf"\s*{re.escape(first)}(?![\w])", re.I)


def echoes(text: str, earlier: Iterable[str]) -> bool:
    """Most of the line's words, in order, were already said in one earlier line (ROUGE-L precision)."""
    return echoes_words(words(text), [words(before) for before in earlier])


def echoes_words(said: list[str], earlier: Iterable[list[str]]) -> bool:
    """`echoes` on lines already split into words, for callers that check every line against all before it."""
    if len(said) < ECHO_MIN_WORDS:
        return False
    need = ECHO_SHARE * len(said)
    bag = Counter(said)
    for before in earlier:
        # Shared words (with multiplicity) bound the common subsequence from above: most pairs stop here,
        # most of them already at the cheaper bound that counts this line's repeats of each shared word.
        common = bag.keys() & set(before)
        if sum(bag[w] for w in common) >= need and sum(min(bag[w], before.count(w)) for w in common) >= need \
                and _lcs(said, before) >= need:
            return True
    return False


def _lcs(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, one row at a time."""
    row = [0] * (len(b) + 1)
    for x in a:
        diagonal = 0
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if x == y else max(row[j], row[j - 1])
    return row[-1]


def truncated(text: str) -> bool:
    """The line trails off on an ellipsis, or breaks a word off before one ("and t...")."""
    if _ENDS_ON_ELLIPSIS.search(text.strip()):
        return True
    return any(found.group(1) not in _SPOKEN for found in _FRAGMENT.finditer(text))


def repeats(line: str, history: list[tuple[str, str]], names: Iterable[str] = ()) -> bool:
    """True when a line says again what was already said: small models loop, and loops are not dialogue.

    `names` (the speakers' names) are left out first, so "Hi Ann, how are you?" answered by "Hi Bob, how are
    you?" is still a repeat, and a greeting that differs only in the name is not mistaken for news.
    """
    left_out = {w for name in names for w in _normalised(name).split()}
    said = _without(_normalised(line), left_out)
    for _, text in history:
        matcher = SequenceMatcher(None, said, _without(_normalised(text), left_out))
        # The cheap upper bounds rule most lines out before the quadratic ratio is computed.
        if matcher.real_quick_ratio() >= REPEAT_SIMILARITY and matcher.quick_ratio() >= REPEAT_SIMILARITY \
                and matcher.ratio() >= REPEAT_SIMILARITY:
            return True
    return False


def _without(text: str, left_out: set[str]) -> str:
    return " ".join(w for w in text.split() if w not in left_out) if left_out else text


def _normalised(text: str) -> str:
    return " ".join("".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).split())


def spoken(text: str, names: list[str]) -> str:
    """Only the words said: no name labels, stage directions, quotes, other speakers' lines or a cut-off tail."""
    text = without_echo(text, names + [name.split()[0] for name in names])
    text = _strip_name_prefixes(" ".join(text.split()), names + [name.split()[0] for name in names])
    text = " ".join(_ACTION.sub(" ", text).split()).strip().strip('"').strip()
    if text.startswith("(") and ")" not in text:  # the model began its line like the prompt's (cue)
        text = text[1:].lstrip()
    ends = list(_SENTENCE_END.finditer(text))
    if ends and ends[-1].end() < len(text) and not text.endswith(("!", "?", ".")):
        text = text[: ends[-1].end()]  # the reply stopped at the token cap mid-sentence
    return text


def first_sentences(text: str, count: int) -> str:
    """The text up to the end of its `count`-th sentence (all of it if it has fewer)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[count - 1].end()] if len(ends) > count else text


def without_echo(text: str, speakers: list[str]) -> str:
    """A message up to where it starts writing the transcript's next lines (`Speaker: ...`), as small models do."""
    labels = tuple(f"{name}:" for name in speakers if name)
    lines = text.strip().splitlines()
    for number, line in enumerate(lines):
        if number and line.strip().lstrip("*").startswith(labels):
            return "\n".join(lines[:number]).strip()
    return text.strip()


def _strip_name_prefixes(text: str, names: list[str]) -> str:
    """Small models echo the transcript format (`Name: ...`), sometimes twice; drop those labels."""
    changed = True
    while changed:
        changed = False
        for name in names:
            if text.startswith(f"{name}:"):
                text, changed = text[len(name) + 1 :].lstrip(), True
    return text
