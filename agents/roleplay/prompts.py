"""Inception prompts and the helpers' prompts, in our own words: each side knows both roles and keeps its own."""

from __future__ import annotations

from agents.cognition.voice import in_first_person
from agents.prompting import Section, bullet_list
from agents.roleplay.setup import RoleCard, RoleplaySetup


def _who(card: RoleCard) -> str:
    """The role, and the world agent's persona and recollections when one plays it."""
    if card.agent:
        parts = [f"You are {card.agent}" + (f", here in the role of {card.role}." if card.role != card.agent else ".")]
    else:
        parts = [f"You are the {card.role}."]
    if card.persona:
        parts.append(card.persona)
    if card.memories:  # in the agent's own words, or a small model says its own name back in third person
        remembered = [in_first_person(card.agent, m) for m in card.memories] if card.agent else card.memories
        parts.append("Things you remember that may matter here:\n" + bullet_list(remembered))
    return "\n".join(parts)


def task_text(task: str, subtasks: list[str]) -> str:
    """The task as both sides see it, with the planner's sub-tasks in order."""
    if not subtasks:
        return task
    return task + "\nWork through it in these steps:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(subtasks, 1))


def assistant_system(setup: RoleplaySetup, task: str) -> str:
    """Keeps the assistant solving, one instruction at a time, without ever taking over the user's part."""
    user, assistant = setup.user.title(), setup.assistant.title()
    return (
        f"{_who(setup.assistant)}\n"
        f"You are working with {user}, who directs the work. The roles never swap: {user} gives "
        f"instructions, you carry them out.\n\n"
        f"The task you share:\n{task}\n\n"
        f"How you answer, every time:\n"
        f"- Each message from {user} holds one instruction and an input (which may be None).\n"
        f"- Reply to that one instruction with a concrete, complete answer that starts with `Solution:`; "
        f"give the actual details (steps, examples, text or code), not a promise to do it later.\n"
        f"- If an instruction is impossible, unsafe or beyond what {assistant} could know, say so plainly "
        f"and say why, instead of inventing an answer.\n"
        f"- Never give {user} instructions and never ask {user} to do the work.\n"
        f"- Finish every reply with `Next request.`"
    )


def user_system(setup: RoleplaySetup, task: str) -> str:
    """Keeps the user instructing step by step, with the done token only once the task is solved."""
    assistant = setup.assistant.title()
    return (
        f"{_who(setup.user)}\n"
        f"{assistant} is working for you on a task. The roles never swap: you always give the "
        f"instructions, {assistant} always carries them out.\n\n"
        f"The task you share:\n{task}\n\n"
        f"How you write, every time:\n"
        f"- Exactly one instruction per message, in this form:\n"
        f"Instruction: <one thing for {assistant} to do>\n"
        f"Input: <material the instruction needs, or None>\n"
        f"- Move the task on step by step, building on {assistant}'s last answer; never repeat an "
        f"instruction that was already answered, and never solve the task yourself.\n"
        f"- Once the task is fully complete, reply with {setup.done_token} alone. Never write it before that."
    )


def user_ask(setup: RoleplaySetup, started: bool) -> str:
    """The user's cue: the first instruction, or the next new one, or the done token."""
    user = setup.user.title()
    if not started:
        return (f"Write {user}'s first message: the first instruction, as two lines, "
                f"`Instruction: ...` and `Input: ...`.")
    return (f"Write {user}'s next message: one new instruction, different from every instruction above, that "
            f"takes the task a step further after the latest answer, as two lines, `Instruction: ...` and "
            f"`Input: ...`. If the task is fully complete, write {setup.done_token} alone instead.")


def assistant_ask(setup: RoleplaySetup) -> str:
    """The assistant's cue: answer the latest instruction, in full, then hand back."""
    return (f"Write {setup.assistant.title()}'s reply to the latest instruction: `Solution:` followed by the "
            f"actual content it asks for, then `Next request.`")


def specifier(setup: RoleplaySetup) -> list[Section]:
    return [
        Section(label="Roles", text=f"{setup.assistant.role} will help {setup.user.role}."),
        Section(label="Vague task", text=setup.task),
    ]


SPECIFIER_SYSTEM = "You turn vague assignments into concrete, imaginative ones that two people could finish in one sitting."


def specifier_ask(words: int) -> str:
    return (f"Rewrite the task as one specific assignment with concrete details (names, numbers, a clear "
            f"result to hand over), in at most {words} words. Reply with the rewritten task only.")


PLANNER_SYSTEM = "You break assignments into short, ordered steps that can each be finished in one reply."
PLANNER_ASK = "List 2 to 6 ordered sub-tasks that together complete the task, each a short imperative sentence."

CRITIC_ASK = ("Choose the candidate that best meets the criteria and the speaker's role. Give its number "
              "and a one-sentence reason.")


def critic_system(setup: RoleplaySetup, task: str) -> str:
    critic = setup.critic
    assert critic is not None
    persona = f" {critic.persona}" if critic.persona else ""
    return (f"You are {critic.agent or critic.role}, judging turns of a role-play between {setup.user.title()} "
            f"(who instructs) and {setup.assistant.title()} (who solves).{persona}\n"
            f"The task:\n{task}\n\nYour criteria: {critic.criteria}.")
