"""Principle-driven answers (Self-Align, Sun et al., arXiv 2305.03047): think about which principles apply, then answer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from agents.gateway import CallScope, ModelGateway
from agents.loops.base import PLACEHOLDER, Loop, LoopOptions, LoopSetup, actor_sections
from agents.prompting import Section, assemble

#: The principles and worked examples that ship with simulacra (a user's own file replaces the principles).
PRINCIPLES_FILE = Path(__file__).with_name("principles.md")


def parse_principles(text: str) -> tuple[list[str], str]:
    """The numbered principles of a principles file, and its worked examples (after `## Examples`, if any)."""
    head, *rest = re.split(r"^## Examples[ \t]*$", text, maxsplit=1, flags=re.M)
    examples = rest[0] if rest else ""
    return [m.group(1).strip() for m in re.finditer(r"^\s*\d+\.\s+(.+)$", head, re.M)], examples.strip()


def read_principles(path: Path = PRINCIPLES_FILE) -> list[str]:
    return parse_principles(path.read_text(encoding="utf-8"))[0]


def shipped_examples() -> str:
    return parse_principles(PRINCIPLES_FILE.read_text(encoding="utf-8"))[1]


class SelfAlignOptions(LoopOptions):
    principles: list[str] = Field(default_factory=read_principles, min_length=1,
                                  description="The principles, in order (a scenario's `principles_file` fills them).")
    examples: str = Field(default_factory=shipped_examples,
                          description="Worked examples whose thoughts cite the principles by number.")


class SelfAlignSetup(LoopSetup, SelfAlignOptions):
    pass


ALIGN_SYSTEM = ("You are {title}. Before you answer, you think in private about what the question needs and which of "
                "your principles apply; then you answer in a way that follows them.")
ALIGN_ASK = ("Reply in exactly two parts: a line starting `Thoughts:` that names the principles that apply by "
             "number, then a line starting `Answer:` with your answer.")
_PARTS = re.compile(r"thoughts?\s*:\s*(?P<thoughts>.*?)\n\s*\**answer\**\s*:\s*(?P<answer>.+)", re.I | re.S)


def split_reply(text: str) -> tuple[str, str] | None:
    """(thoughts, answer) from a reply in the two-part form, or None when it is not in that form."""
    found = _PARTS.search(text)
    if found is None or not found.group("answer").strip():
        return None
    return found.group("thoughts").strip(), found.group("answer").strip()


class SelfAlign(Loop):
    """One question, one principled answer; thoughts and answer are logged apart, so a corpus can drop the thoughts."""

    loop: ClassVar[str] = "self_align"
    other_side: ClassVar[str] = "User"
    actor_role: ClassVar[str] = "Assistant"
    setup_type = SelfAlignSetup
    options_type = SelfAlignOptions
    setup: SelfAlignSetup

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup = self.setup
        principles = "\n".join(f"{i}. {p}" for i, p in enumerate(setup.principles, 1))
        prompt = assemble(ALIGN_SYSTEM.format(title=setup.actor.title()),
                          [*actor_sections(setup.actor), Section(label="Your principles", text=principles),
                           Section(label="Examples", text=setup.examples), Section(label="Question", text=setup.task)],
                          ALIGN_ASK)
        parts = None
        for attempt in range(2):
            text = await gateway.complete(prompt, purpose="align_answer", temperature=0.7 if attempt else 0.3,
                                          max_tokens=400, scope=scope)
            if (parts := split_reply(text)) is not None:
                break
        if parts is None:
            parts = gateway.fall_back(scope, "align_answer", "the reply was not in the Thoughts/Answer form twice; "
                                                             "it is kept whole as the answer", ("", text.strip()))
        thoughts, answer = parts
        named = sorted({int(n) for n in re.findall(r"\b(\d{1,2})\b", thoughts) if 1 <= int(n) <= len(setup.principles)})
        if not answer:
            answer = gateway.fall_back(scope, "align_answer", "the reply had no answer", PLACEHOLDER)
        self.say("assistant", setup.actor.speaker, thoughts or "(none)", scope, part="thoughts")
        self.say("assistant", setup.actor.speaker, answer, scope, part="answer")
        self.progress.result = {"thoughts": thoughts, "answer": answer, "principles": named}
        self.end("answered", scope)
