"""Conversing: the speaker's next line from what it retrieves about partner and topic; a digest afterwards."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field

from agents.agent import Agent
from agents.cognition.lines import (
    NAMES_KEPT,
    absent_addressees,
    echoes,
    first_sentences,
    introduces_as,
    names_self,
    reads_out_prompt,
    repeats,
    says_goodbye,
    sounds_like_an_assistant,
    spoken,
    words,
)
from agents.cognition.noticed import is_overheard
from agents.cognition.voice import in_first_person, without_address_to
from agents.gateway import CallScope, ChatMessage, ModelGateway, ModelUnavailableError
from agents.prompting import Section, assemble, bullet_list

#: How many earlier lines the speaker sees; keeps prompts short for small local models.
HISTORY_WINDOW = 8
#: A line is one or two spoken sentences; the cap keeps a rambling small model from running on.
LINE_TOKENS = 80
#: A longer reply is cut to its first sentences: small models ramble, and rambling repeats.
LINE_SENTENCES = 2
#: One temperature per try of a line, each a little hotter than the last, before a faulty one is let through.
LINE_TEMPERATURES = (0.8, 0.9, 1.0, 1.1, 1.2)
DIGEST_SYSTEM = "You sum up a conversation briefly, as one of its speakers will remember it."
#: Where a conversation stands, so the speaker neither leaves at once nor goes on for ever.
Stage = Literal["opening", "middle", "closing"]
_PACE = {
    "opening": "The talk has only just begun: keep it going, and do not say goodbye yet.",
    "middle": "Keep the talk going; say goodbye only if it has really run its course.",
    "closing": "It is time to wrap up: finish your thought and say goodbye.",
}


class NextLine(BaseModel):
    """What the speaker says now, and whether it closes the conversation."""

    line: str = Field(min_length=1)
    end_conversation: bool
    #: Asked for as a goodbye because the talk had run dry: it may end the conversation before `min_lines`.
    wrapping_up: bool = False


class ConversationDigest(BaseModel):
    """What one participant keeps of a conversation."""

    summary: str = Field(min_length=1, max_length=300)
    relationship: str = Field(min_length=1, max_length=160)


async def recall_for(agent: Agent, partners: list[str], history: list[tuple[str, str]], place: str,
                     now: datetime, k: int, scope: CallScope) -> list[str]:
    """What the speaker remembers about the company and the last thing said."""
    cue = history[-1][1] if history else f"meeting them at {place}"
    found = await agent.memory.retrieve(f"{', '.join(partners)}: {cue}", now, k=k, trace=scope)
    return [m.text for m in found]


#: A recollection counts as already talked about when this share of its longer words was said.
TALKED_ABOUT = 0.5


def untalked(recollections: list[str], history: list[tuple[str, str]], names: list[str]) -> list[str]:
    """Recollections not talked about yet, most relevant first: concrete things for a small model to bring up.

    The speakers' names are left out of both sides: saying "Hi Isabella" covers nothing Isabella knows.
    """
    left_out = {w for name in names for w in words(name)}
    said = {w for _, text in history for w in words(text)} - left_out
    fresh = []
    for memory in recollections:
        content = [w for w in words(memory) if len(w) > 3 and w not in left_out]
        if content and sum(w in said for w in content) < TALKED_ABOUT * len(content):
            fresh.append(memory)
    return fresh


def _manner(others: str) -> str:
    """The rules of speech every line prompt gives, and that a line must not read back."""
    return (f"Like a neighbour, not an assistant: never offer help and never ask how you can assist. In the first "
            f"person, to {others}, in one or two short, casual sentences. Never say your own name and never describe "
            f"yourself. Do not repeat what was already said: answer, then add something new (news, a question, a "
            f"plan or an opinion). Plain speech only: no name labels, no quotation marks, no actions in asterisks.")


def first_names(partners: list[str]) -> str:
    """The company as the speaker's prompt names it: "Tom and Maria"."""
    return " and ".join(name.split()[0] for name in partners)


def line_prompt(agent: Agent, partners: list[str], place: str, history: list[tuple[str, str]],
                recollections: list[str], now: datetime, stage: Stage, topic: str | None = None,
                wrap_up: bool = False) -> list[ChatMessage]:
    """The speaker as the chat model's own voice: partners' lines are the user's turns, its own the assistant's.

    Small models answer the user of a chat far better than they write a named character's line into a
    transcript, where they address themselves and copy the other's words. A `topic` (a recollection, put in
    the speaker's own words) gives the line something concrete to say; without one a small model loops on
    greetings and pleasantries. `wrap_up` asks outright for a goodbye, for a talk that has run dry.
    """
    stage = "closing" if wrap_up else stage
    first = agent.persona.first_name
    others = first_names(partners)
    # What holds for the whole talk comes first, in its own system turn, so a backend that keeps evaluated
    # prompt prefixes evaluates it once per speaker and talk; the moment (time, memories, pace) follows.
    for_the_talk = [
        agent.persona_section(),
        agent.relationship_section(partners),
        Section(label=f"How {first} talks", text=_manner(others)),
    ]
    for_now = [Section(label=f"On {first}'s mind", text=bullet_list(recollections))]
    talk = "\n\n".join([f"You are {agent.name}, chatting with {others} at {place}. "
                         f"Speak casually and briefly, like a neighbour, never like customer service.",
                         *(s.block() for s in for_the_talk if s.text.strip())])
    moment = "\n\n".join([f"It is {now:%A} at {now:%H:%M}.",
                           *(s.block() for s in for_now if s.text.strip()), _PACE[stage]])
    turns = [ChatMessage(role="system", content=talk), ChatMessage(role="system", content=moment)]
    if not history:
        turns.append(ChatMessage(role="user", content=f"({others} is here. Say hello.)"))
    for who, text in history[-HISTORY_WINDOW:]:
        role = "assistant" if who == agent.name else "user"
        shown = text if role == "assistant" or len(partners) == 1 else f"{who.split()[0]}: {text}"
        if turns[-1].role == role and role != "system":
            turns[-1] = ChatMessage(role=role, content=f"{turns[-1].content}\n{shown}")
        else:
            turns.append(ChatMessage(role=role, content=shown))
    if turns[-1].role == "assistant":
        turns.append(ChatMessage(role="user", content="(Go on.)"))
    if wrap_up:
        cue = f"(Now say goodbye to {others}: give a reason to leave, in one short sentence.)"
    elif topic is not None and stage != "closing":
        mention = in_first_person(agent.name, topic)
        cue = f"(Answer briefly, then mention: {mention})" if history else f"(Then mention: {mention})"
    else:
        return turns
    turns[-1] = ChatMessage(role="user", content=f"{turns[-1].content}\n{cue}")
    return turns


#: Faults from the worst down: when every try has one, the least bad try is kept (a repeat ends the talk).
FAULTS = ("has nothing spoken in it", "repeats its instructions", "repeats what was said",
          "recites the speaker's description", "sounds like a chat assistant", "confuses who is speaking",
          "greets someone not in the talk", "")
#: Faults that taking a name out of the line may mend ("Hello, Tom!" to Klaus).
_MENDABLE = FAULTS[-3:-1]
#: The words of the prompt's cue, which a small model sometimes says instead of following it.
_CUE_COPIED = re.compile(r"\b(answer briefly|then mention|give a reason to leave)\b|\bmention:", re.I)
#: A line that shares this many words in a row, within one clause, with the prompt's rules of speech reads them
#: out; shorter runs are everyday English ("in the first person"). The pace's words are everyday English too
#: ("it is time to wrap up"): only its telltale phrases count (`lines.reads_out_prompt`).
COPIED_RUN = 5
_CLAUSE_BREAK = re.compile(r"[.,:;!?()]")


def _word_runs(text: str) -> set[tuple[str, ...]]:
    runs: set[tuple[str, ...]] = set()
    for clause in _CLAUSE_BREAK.split(text):
        said = words(clause)
        runs.update(zip(*(said[i:] for i in range(COPIED_RUN))))
    return runs


def reads_out_rules(line: str, partners: list[str]) -> bool:
    """The line says back part of the rules of speech ("in one or two short, casual sentences")."""
    return bool(_word_runs(line) & _rule_runs(first_names(partners)))


@lru_cache(maxsize=NAMES_KEPT)
def _rule_runs(others: str) -> frozenset[tuple[str, ...]]:
    """The rules' word runs for one company, kept: every try of every line checks against them."""
    return frozenset(_word_runs(_manner(others)))


def line_fault(speaker: Agent, partners: list[str], line: str, history: list[tuple[str, str]],
               now: datetime | None = None) -> str:
    """What makes a line not worth keeping ("" when nothing does), in the words a retry record uses.

    Given `now`, a clock line counts as read out of the prompt only when it tells that moment.
    """
    if not line:
        return FAULTS[0]
    if _CUE_COPIED.search(line) or reads_out_prompt(line, now) or reads_out_rules(line, partners):
        return FAULTS[1]
    names = {speaker.name, *(who for who, _ in history)}
    if repeats(line, history, names) or echoes(line, (text for _, text in history)):
        return FAULTS[2]
    if speaker.persona.age is not None and re.search(rf"\b{speaker.persona.age}[- ]years?[- ]old\b", line):
        return FAULTS[3]  # nobody tells a neighbour their age: the prompt's description read out
    if sounds_like_an_assistant(line):
        return FAULTS[4]
    if names_self(speaker.name, line) or any(introduces_as(other, line) for other in partners):
        return FAULTS[5]
    if absent_addressees(line, partners):
        return FAULTS[6]
    return ""


def _addressed_right(speaker: str, partners: list[str], line: str) -> str:
    """The line without greeting its own speaker or anyone not in the talk by name ("Hello, Tom!" to Klaus)."""
    for name in [speaker, *absent_addressees(line, partners)]:
        line = without_address_to(name, line)
    return line


async def next_line(
    agent: Agent, partners: list[str], place: str, history: list[tuple[str, str]], recollections: list[str],
    gateway: ModelGateway, scope: CallScope, now: datetime, stage: Stage = "middle",
) -> NextLine:
    """The speaker's next line, asked again while it has a fault (a fresh seed and the next thing to mention,
    logged as a retry); a line whose only fault is greeting its own speaker, or someone not in the talk, by
    name is mended instead (logged as a repair). If every try is faulty the least bad one stands, and the
    conversation's own checks judge it; when the best try so far only repeated the talk, the last one is asked
    to wrap up.

    Raises ModelUnavailableError when the model gives no line at all.
    """
    topics = untalked([r for r in recollections if not is_overheard(r)], history, [agent.name, *partners]) or [None]
    kept, kept_fault, kept_wrapping_up = "", FAULTS[0], False
    for attempt, temperature in enumerate(LINE_TEMPERATURES):
        last = attempt + 1 == len(LINE_TEMPERATURES)
        wrapping_up = last and bool(history) and kept_fault == FAULTS[2]
        prompt = line_prompt(agent, partners, place, history, recollections, now, stage,
                             topics[attempt % len(topics)], wrapping_up)
        raw = await gateway.complete(prompt, purpose="utterance", max_tokens=LINE_TOKENS, scope=scope,
                                     temperature=temperature)
        text = first_sentences(spoken(raw, [agent.name, *partners]), LINE_SENTENCES)
        fault = line_fault(agent, partners, text, history, now)
        if fault in _MENDABLE and (mended := _addressed_right(agent.name, partners, text)) != text \
                and not line_fault(agent, partners, mended, history, now):
            gateway.note_repair(scope, "utterance", "spoken line", text, mended)
            text, fault = mended, ""
        if FAULTS.index(fault) > FAULTS.index(kept_fault):
            kept, kept_fault, kept_wrapping_up = text, fault, wrapping_up
        if not fault:
            break
        if not last:
            gateway.note_retry(scope, "utterance", attempt, "invalid_output", f"the line {fault}: {text[:200]}", 0.0)
    if not kept:
        raise ModelUnavailableError(f"no try gave a line with anything spoken in it: {raw[:200]!r}")
    return NextLine(line=kept, end_conversation=says_goodbye(kept), wrapping_up=kept_wrapping_up)


#: A digest reads at most this many lines (the first, then the latest), each cut to DIGEST_WORDS words.
DIGEST_LINES = 9
DIGEST_WORDS = 60


def _digestible(transcript: list[tuple[str, str]]) -> str:
    """The opening line and the latest ones, each clipped: a long session's digest prompt stays bounded."""
    shown = transcript if len(transcript) <= DIGEST_LINES else [transcript[0], ("…", "…"), *transcript[-(DIGEST_LINES - 1):]]
    clipped = [(who, " ".join(text.split()[:DIGEST_WORDS])) for who, text in shown]
    return "\n".join("…" if who == "…" else f"{who}: {text}" for who, text in clipped)


async def digest(
    agent: Agent, partners: list[str], transcript: list[tuple[str, str]], gateway: ModelGateway, scope: CallScope
) -> ConversationDigest:
    """One call: a summary to remember, and the agent's updated one-line view of its partner(s)."""
    first = agent.persona.first_name
    names = " and ".join(partners)
    known = agent.state.relationships.get(partners[0]) if partners else None
    fallback = ConversationDigest(
        summary=f"{agent.name} talked with {names}.",
        relationship=(known.summary or known.label) if known and (known.summary or known.label) else "acquaintance",
    )
    return await gateway.structured(
        assemble(DIGEST_SYSTEM, [agent.relationship_section(partners),
                                 Section(label="The conversation", text=_digestible(transcript))],
                 f"From {first}'s point of view: sum up what was said and agreed in one sentence, and describe "
                 f"{first}'s relationship with {names} now in a few words."),
        ConversationDigest, purpose="conversation_digest", default=fallback, temperature=0.3, max_tokens=160,
        scope=scope,
    )


