"""Reflection: salient questions about recent memories, then cited insights stored as deeper memories."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, Field

from agents.gateway import CallScope, ChatMessage, ModelGateway, ModelUnavailableError
from agents.prompting import bullet_list
from memory.records import MemoryRecord
from memory.reports import CitedInsight, ReflectionRecorded
from memory.stream import MemoryStream

RECENT_WINDOW = 100
QUESTIONS = 3
INSIGHTS_PER_QUESTION = 5
EVIDENCE_PER_QUESTION = 12
T = TypeVar("T", bound=BaseModel)


class SalientQuestions(BaseModel):
    questions: list[str] = Field(min_length=1, max_length=QUESTIONS)


class Insight(BaseModel):
    insight: str = Field(min_length=1)
    evidence: list[int] = Field(description="Numbers of the statements this insight rests on.")


class Insights(BaseModel):
    insights: list[Insight] = Field(min_length=1, max_length=INSIGHTS_PER_QUESTION)


class ReflectionOutcome(BaseModel):
    """What a reflection pass produced, and why it produced nothing or less than asked, for the log."""

    report: ReflectionRecorded | None = None
    skipped: str = ""
    failed_questions: list[str] = Field(default_factory=list)


def _numbered(texts: list[str]) -> str:
    return "\n".join(f"{i}. {text}" for i, text in enumerate(texts, start=1))


async def _ask(
    gateway: ModelGateway, system: str, user: str, schema: type[T], purpose: str, max_tokens: int, scope: CallScope
) -> T:
    messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
    return await gateway.structured(messages, schema, purpose=purpose, max_tokens=max_tokens, scope=scope)


async def _questions(gateway: ModelGateway, agent: str, recent: list[MemoryRecord], scope: CallScope) -> list[str]:
    result = await _ask(
        gateway,
        f"You help {agent} make sense of their recent experiences.",
        f"Recent memories of {agent}:\n{bullet_list(list(dict.fromkeys(r.text for r in recent)))}\n\n"
        f"Given only these, which {QUESTIONS} high-level questions about {agent}, the people around them "
        "and what is going on are the most worth answering?",
        SalientQuestions, "reflection_questions", 160, scope,
    )
    return [q.strip() for q in result.questions if q.strip()]


async def _insights(
    gateway: ModelGateway, agent: str, question: str, statements: list[str], scope: CallScope
) -> list[Insight]:
    result = await _ask(
        gateway,
        f"You draw careful conclusions for {agent} from numbered statements.",
        f"Statements about {agent}:\n{_numbered(statements)}\n\nQuestion: {question}\n"
        f"Write up to {INSIGHTS_PER_QUESTION} high-level insights that answer it. For each, list the numbers "
        "of the statements it rests on.",
        Insights, "reflection_insights", 320, scope,
    )
    return result.insights


async def reflect(gateway: ModelGateway, stream: MemoryStream, now: datetime, scope: CallScope) -> ReflectionOutcome:
    """One reflection pass (Generative Agents §4.2); the trigger resets only once the model gave questions."""
    importance_sum = stream.importance_since_reflection
    recent = stream.recent(RECENT_WINDOW)
    if not recent:
        stream.reset_reflection()
        return ReflectionOutcome(skipped="no recent memories to reflect on")
    try:
        questions = await _questions(gateway, stream.agent, recent, scope)
    except ModelUnavailableError as exc:
        return ReflectionOutcome(skipped=f"the model gave no usable questions ({exc}); will try again next tick")
    stream.reset_reflection()
    kept: list[CitedInsight] = []
    dropped: list[int] = []
    failed: list[str] = []
    evidences = [await stream.retrieve(q, now, k=EVIDENCE_PER_QUESTION, trace=scope) for q in questions]
    branches = [scope.branch(f"insight {i}") for i in range(len(questions))]

    async def ask(i: int) -> list[Insight] | None:
        try:
            return await _insights(gateway, stream.agent, questions[i], [e.text for e in evidences[i]], branches[i][0])
        except ModelUnavailableError:
            return None

    answers = await asyncio.gather(*(ask(i) for i in range(len(questions))))  # the questions are independent
    for (_, buffer), question, evidence, insights in zip(branches, questions, evidences, answers):
        for record in buffer:
            scope.emit(record)
        if insights is None:
            failed.append(question)
            continue
        for insight in insights:
            cited = []
            for number in dict.fromkeys(insight.evidence):
                if 1 <= number <= len(evidence):
                    cited.append(evidence[number - 1].id)
                else:
                    dropped.append(number)
            kept.append(CitedInsight(text=insight.insight.strip(), evidence=cited))
            stream.remember("reflection", insight.insight.strip(), now, evidence=cited)
    await stream.commit(scope)
    report = ReflectionRecorded(
        agent=stream.agent, importance_sum=importance_sum, questions=questions, insights=kept, dropped_citations=dropped
    )
    scope.emit(report)
    return ReflectionOutcome(report=report, failed_questions=failed)
