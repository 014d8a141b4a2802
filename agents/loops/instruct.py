"""Self-Instruct (Wang et al., arXiv 2212.10560): grow an instruction set from seed tasks, round by round, filtered."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agents.gateway import CallScope, ModelGateway
from agents.loops.base import Loop, LoopOptions, LoopSetup
from agents.prompting import Section, assemble
from agents.seeding import stable_rng


class Instance(BaseModel):
    model_config = ConfigDict(extra="ignore")

    input: str = ""
    output: str = ""


class SeedTask(BaseModel):
    """One task in the seed file's format (and the format the grown pool is written in)."""

    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = ""
    instruction: str = Field(min_length=1)
    instances: list[Instance] = Field(default_factory=list)
    is_classification: bool = False


#: The 175 human-written seed tasks of Self-Instruct (Apache-2.0; source in scenarios/data/README.md).
SHIPPED_SEEDS = Path(__file__).with_name("self_instruct_seed_tasks.jsonl")


def shipped_seeds() -> list[SeedTask]:
    return [SeedTask.model_validate_json(line) for line in SHIPPED_SEEDS.read_text(encoding="utf-8").split("\n")
            if line.strip()]


class SelfInstructOptions(LoopOptions):
    seeds: list[SeedTask] = Field(default_factory=list, description="The seed tasks (a `seeds_file` fills them).")
    target: int = Field(default=100, ge=1, le=1_000_000, description="Stop once this many new tasks are kept.")
    human_per_prompt: int = Field(default=6, ge=1, le=16)
    machine_per_prompt: int = Field(default=2, ge=0, le=16)
    new_per_round: int = Field(default=8, ge=1, le=20)
    max_rounds: int = Field(default=1000, ge=1, le=1_000_000, description="A cap for models that give little usable.")
    rouge_threshold: float = Field(default=0.7, gt=0, le=1)


class SelfInstructSetup(LoopSetup, SelfInstructOptions):
    task: str = "Grow a set of instructions from the seed tasks"
    seeds: list[SeedTask] = Field(min_length=1)


class NewInstructions(BaseModel):
    instructions: list[str] = Field(min_length=1, max_length=20)


class ClassificationCheck(BaseModel):
    is_classification: bool


class OutputFirst(BaseModel):
    """For classification: the label first, then an input that has it, so labels do not all come out alike."""

    output: str = Field(description="A class label.")
    input: str = Field(description="An input that belongs to that class.")


class InputFirst(BaseModel):
    input: str = Field(description="An input for the task, or an empty string if it needs none.")
    output: str = Field(description="The correct response to the task for that input.")


class OutputFirstInstances(BaseModel):
    instances: list[OutputFirst] = Field(min_length=1, max_length=4)


class InputFirstInstances(BaseModel):
    instances: list[InputFirst] = Field(min_length=1, max_length=4)


#: What a failed instance call falls back to: one empty example, which the filters then drop (logged).
_NO_INSTANCES: dict[type[BaseModel], BaseModel] = {
    OutputFirstInstances: OutputFirstInstances(instances=[OutputFirst(output="", input="")]),
    InputFirstInstances: InputFirstInstances(instances=[InputFirst(input="", output="")]),
}
_UNSUITABLE = re.compile(r"\b(images?|pictures?|photos?|graphs?|files?|maps?|draw\w*|plot\w*|go to)\b", re.I)


@lru_cache(maxsize=1)
def _scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(a: str, b: str) -> float:
    return _scorer().score(a, b)["rougeL"].fmeasure


def rejection(instruction: str, pool: list[str], threshold: float = 0.7) -> str | None:
    """Why the paper's filters drop an instruction, or None to keep it."""
    text = instruction.strip()
    words = len(text.split())
    if words < 4 or words > 150:
        return f"{words} words (keep 4 to 150)"
    if (found := _UNSUITABLE.search(text)) is not None:
        return f"mentions {found.group(0)!r}, which a language model cannot do"
    if text.lower().startswith("write a program"):
        return "starts with 'Write a program'"
    if not text[0].isascii() or not text[0].isalnum():
        return "starts with punctuation or a non-ASCII character"
    for other in pool:
        if (score := rouge_l(text, other)) >= threshold:
            return f"ROUGE-L {score:.2f} with {other[:60]!r}"
    return None


INSTRUCT_SYSTEM = "You invent varied, useful tasks that a helpful text assistant could be asked to do."
INSTRUCT_ASK = ("Write {n} new tasks, different from these and from one another in topic and in kind (questions, "
                "rewriting, classification, advice, reasoning, creative writing...). Each is one instruction a person "
                "might give, understandable without the examples.")
CLASSIFY_ASK = ("Is this a classification task, one whose answer is a label from a small fixed set (yes/no, "
                "positive/negative, a category)?")
INSTANCE_SYSTEM = "You write worked examples for tasks: inputs and the correct outputs for them."
OUTPUT_FIRST_ASK = "Give 1 to 3 examples. For each, first choose a class label, then write an input of that class."
INPUT_FIRST_ASK = ("Give 1 to 3 examples. For each, write an input (empty if the task needs none), then the correct "
                   "output for it.")


class SelfInstruct(Loop):
    """Each step is a round: 8 example tasks in, new instructions out, filtered, classified, given instances."""

    loop: ClassVar[str] = "self_instruct"
    other_side: ClassVar[str] = "Curator"
    actor_role: ClassVar[str] = "Task Writer"
    setup_type = SelfInstructSetup
    options_type = SelfInstructOptions
    setup: SelfInstructSetup

    def _step_key(self) -> int | str:
        return f"round-{self.progress.result.get('rounds', 0)}"

    @property
    def pool(self) -> list[SeedTask]:
        return [SeedTask.model_validate(t) for t in self.progress.result.get("pool", [])]

    def _examples(self, round_number: int) -> list[str]:
        """6 human tasks and 2 machine ones (once there are some), drawn from the round's seed."""
        setup, rng = self.setup, stable_rng(self.setup.seed, "self-instruct", round_number)
        machine = [t.instruction for t in self.pool]
        taken_machine = rng.sample(machine, min(setup.machine_per_prompt, len(machine)))
        human_count = setup.human_per_prompt + setup.machine_per_prompt - len(taken_machine)
        humans = rng.sample([t.instruction for t in setup.seeds], min(human_count, len(setup.seeds)))
        return humans + taken_machine

    async def _step(self, gateway: ModelGateway, scope: CallScope) -> None:
        setup, result = self.setup, self.progress.result
        round_number = result.get("rounds", 0) + 1
        examples = self._examples(round_number)
        listing = "\n".join(f"{i}. {text}" for i, text in enumerate(examples, 1))
        asked = await gateway.structured(
            assemble(INSTRUCT_SYSTEM, [Section(label="Example tasks", text=listing)],
                     INSTRUCT_ASK.format(n=setup.new_per_round)),
            NewInstructions, purpose="instruct_generate", temperature=1.0, max_tokens=600, scope=scope,
            default=NewInstructions(instructions=["(none)"]))
        self.say("user", self.other_side, listing, scope, part="examples")
        self.say("assistant", setup.actor.speaker, "\n".join(asked.instructions), scope, part="instructions")
        known = [t.instruction for t in setup.seeds] + [t.instruction for t in self.pool]
        kept, dropped = [], []
        for instruction in (i.strip() for i in asked.instructions):
            reason = rejection(instruction, known, setup.rouge_threshold) if instruction != "(none)" else "no answer"
            if reason is None:
                task = await self._complete_task(gateway, scope, instruction, len(self.pool) + len(kept))
                reason = None if task is not None else "no usable instance"
                if task is not None:
                    kept.append(task.model_dump())
                    known.append(instruction)
            if reason is not None:
                dropped.append({"instruction": instruction, "reason": reason})
        pool = result.get("pool", []) + kept
        self.progress.result = {"rounds": round_number, "pool": pool, "kept": len(pool),
                                "dropped": result.get("dropped", []) + dropped}
        if len(pool) >= setup.target:
            self.end("target_reached", scope)
        elif round_number >= setup.max_rounds:
            self.end("max_iterations", scope, detail=f"{len(pool)} of {setup.target} tasks after {round_number} rounds")

    async def _complete_task(self, gateway: ModelGateway, scope: CallScope, instruction: str,
                             number: int) -> SeedTask | None:
        """Classify, then make instances output-first (classification) or input-first; None if none survive."""
        section = [Section(label="Task", text=instruction)]
        check = await gateway.structured(assemble(INSTRUCT_SYSTEM, section, CLASSIFY_ASK), ClassificationCheck,
                                         purpose="instruct_classify", temperature=0.0, max_tokens=40, scope=scope,
                                         default=ClassificationCheck(is_classification=False))
        schema = OutputFirstInstances if check.is_classification else InputFirstInstances
        ask = OUTPUT_FIRST_ASK if check.is_classification else INPUT_FIRST_ASK
        made = await gateway.structured(assemble(INSTANCE_SYSTEM, section, ask), schema, purpose="instruct_instances",
                                        temperature=0.7, max_tokens=500, scope=scope, default=_NO_INSTANCES[schema])
        instances = [Instance(input=i.input.strip(), output=i.output.strip()) for i in made.instances]
        instances = [i for i in instances if i.output and i.input != i.output]
        if not instances:
            return None
        return SeedTask(id=f"machine_task_{number}", name=f"machine_task_{number}", instruction=instruction,
                        instances=instances, is_classification=check.is_classification)
