"""Self-Debug (Chen et al., arXiv 2304.05128): write code, run the tests in a sandbox, explain, fix, until they pass."""

from __future__ import annotations

import asyncio
import re
from typing import ClassVar

from pydantic import Field

from agents.gateway import CallScope, ChatMessage, ModelGateway
from agents.loops.base import Loop, LoopOptions, LoopSetup, actor_sections
from agents.loops.sandbox import SandboxLimits, SandboxReport, run_tests
from agents.prompting import Section, assemble


class SelfDebugOptions(LoopOptions):
    tests: str = Field(default="", description="Python that asserts on the solution (HumanEval's `check`, say); "
                                               "a batch may give each line its own.")
    entry_point: str | None = Field(default=None, description="The function under test; tests call check(it).")
    max_turns: int = Field(default=3, ge=1, le=20, description="Tries at the code, the first included.")
    explain: bool = Field(default=False, description="Rubber duck: the coder explains its code before each fix.")
    limits: SandboxLimits = SandboxLimits()


class SelfDebugSetup(LoopSetup, SelfDebugOptions):
    pass


CODER_SYSTEM = ("You are {title}. You write correct, self-contained Python. You answer with the complete code in one "
                "```python block.")
WRITE_ASK = "Write the complete function, with its imports, in one ```python block."
FIX_ASK = ("The code fails its tests. Using the results above, write the corrected complete function, with its "
           "imports, in one ```python block.")
EXPLAIN_ASK = "Before fixing anything, explain your code line by line: what each line does and what it assumes."
RESTATE_ASK = "Reply with the complete Python function only, inside one ```python block."
_FENCED = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S | re.I)


def code_of(text: str) -> str | None:
    """The code in a reply: its largest fenced block, else the reply itself if it reads as Python; else None."""
    blocks = _FENCED.findall(text)
    if blocks:
        return max(blocks, key=len).strip("\n")
    stripped = text.strip()
    return stripped if re.search(r"^\s*(def|class|import|from)\s", stripped, re.M) else None


def program(setup: SelfDebugSetup, code: str) -> str:
    """The code as it runs: the whole problem first (its imports, helpers and the stub, whose docstring is a valid
    body), then the reply, whose own definition replaces the stub, or whose body-only answer completes it."""
    body_only = not re.search(r"^(def|class|import|from)\s", code, re.M)
    return f"{setup.task.rstrip()}\n{code}\n" if body_only else f"{setup.task.rstrip()}\n\n\n{code}\n"


def feedback(report: SandboxReport) -> str:
    """What the executor tells the coder: the outcome and the error, as a person would read them."""
    said = {"passed": "All tests passed.", "failed": "A test failed.", "error": "The code raised an error.",
            "timeout": "The tests did not finish in time (an endless loop?).", "crashed": "The process crashed."}
    return f"{said[report.outcome]}\n{report.detail}".strip()


class SelfDebug(Loop):
    """Coder → executor → (explanation →) fix → executor ... until the tests pass or the turns run out."""

    loop: ClassVar[str] = "self_debug"
    other_side: ClassVar[str] = "Executor"
    actor_role: ClassVar[str] = "Coder"
    setup_type = SelfDebugSetup
    options_type = SelfDebugOptions
    setup: SelfDebugSetup

    def _conversation(self, ask: str) -> list[ChatMessage]:
        """The problem, then every exchange so far as chat turns (code, results, explanations), then the ask."""
        setup = self.setup
        system = CODER_SYSTEM.format(title=setup.actor.title())
        opening = assemble(system, [*actor_sections(setup.actor), Section(label="Problem", text=setup.task)],
                           WRITE_ASK)
        history = [ChatMessage(role="assistant" if t.role == "assistant" else "user", content=t.content)
                   for t in self.progress.turns[1:]]
        return [*opening, *history, *([ChatMessage(role="user", content=ask)] if history else [])]

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        turns = self.progress.turns
        last = turns[-1]
        if last.part == "code":
            await self._execute(scope)
        elif last.part == "execution" and self.setup.explain:
            text = await gateway.complete(self._conversation(EXPLAIN_ASK), purpose="debug_explain",
                                          temperature=0.2, max_tokens=400, scope=scope)
            explanation = text.strip() or gateway.fall_back(scope, "debug_explain", "an empty explanation", "(none)")
            self.say("assistant", self.setup.actor.speaker, explanation, scope, part="explanation")
        else:
            await self._write(gateway, scope, FIX_ASK if len(turns) > 1 else WRITE_ASK)

    async def _write(self, gateway: ModelGateway, scope: CallScope, ask: str) -> None:
        conversation = self._conversation(ask)
        text = await gateway.complete(conversation, purpose="debug_code", temperature=0.2, max_tokens=512, scope=scope)
        code = code_of(text)
        if code is None:
            again = [*conversation, ChatMessage(role="assistant", content=text), ChatMessage(role="user",
                                                                                            content=RESTATE_ASK)]
            text = await gateway.complete(again, purpose="debug_code", temperature=0.0, max_tokens=512, scope=scope)
            code = code_of(text)
        if code is None:
            code = gateway.fall_back(scope, "debug_code", "no code in the reply, even when asked again; it runs as "
                                                          "it is and will fail", text.strip() or "pass")
        self.say("assistant", self.setup.actor.speaker, code, scope, part="code")

    async def _execute(self, scope: CallScope) -> None:
        setup = self.setup
        calls_check = setup.entry_point and re.search(r"^def\s+check\s*\(", setup.tests, re.M)
        tests = setup.tests + (f"\ncheck({setup.entry_point})\n" if calls_check else "")
        report = await asyncio.to_thread(run_tests, program(setup, self.progress.turns[-1].content), tests,
                                         setup.limits)
        self.say("user", self.other_side, feedback(report), scope, part="execution")
        outcomes = [*self.progress.result.get("outcomes", []), report.outcome]
        tries = len(outcomes)
        self.progress.result = {"passed": report.passed, "tries": tries, "outcomes": outcomes,
                                "code": self.progress.turns[-2].content, "network_isolated": report.network_isolated}
        if report.passed:
            self.end("tests_passed", scope)
        elif tries >= setup.max_turns:
            self.end("max_turns", scope)
