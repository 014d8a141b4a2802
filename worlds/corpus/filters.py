"""Which harvested dialogues are worth training on: each filter a threshold on one of the dialogue's figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

from pydantic import BaseModel, Field, field_validator

from agents.roleplay.records import EndReason
from worlds.corpus.quality import DialogueFigures
from worlds.corpus.samples import Item
from worlds.events import ConversationEnded

#: A dialogue needs two speakers to teach anything about answering; not an option.
ONE_SPEAKER = "one speaker"
#: Every reason a conversation or a session (role-play or Self-*) can end for.
END_REASONS = sorted({*get_args(ConversationEnded.model_fields["reason"].annotation), *get_args(EndReason)})


class HarvestFilters(BaseModel):
    """Thresholds, each inclusive (a dialogue at the limit is kept); shares are of the dialogue's lines."""

    min_turns: int = Field(default=2, ge=0)
    max_turns: int | None = Field(default=None, ge=0)
    #: Keep only dialogues that ended for one of these reasons; empty keeps every reason.
    end_reasons: list[str] = Field(default_factory=list)
    max_self_address: float | None = Field(default=None, ge=0, le=1)
    max_echo: float | None = Field(default=None, ge=0, le=1)
    max_out_of_character: float | None = Field(default=None, ge=0, le=1)
    max_wrong_addressee: float | None = Field(default=None, ge=0, le=1)
    max_role_flips: int | None = Field(default=None, ge=0)
    max_repetition: float | None = Field(default=None, ge=0, le=1)
    min_chars: int | None = Field(default=None, ge=0)
    max_chars: int | None = Field(default=None, ge=0)
    #: Self-Eval: keep answers the model itself rates at least this likely to be right.
    min_p_true: float | None = Field(default=None, ge=0, le=1)

    @field_validator("end_reasons")
    @classmethod
    def _known_reasons(cls, reasons: list[str]) -> list[str]:
        """A reason no dialogue can end for would silently remove every one."""
        unknown = [reason for reason in reasons if reason not in END_REASONS]
        if unknown:
            raise ValueError(f"{unknown[0]!r} is no end reason; dialogues end for {', '.join(END_REASONS)}")
        return reasons

    def names(self) -> list[str]:
        """The filters in the order they are tried, by their option names: what the summary and card count."""
        return [name for name, _ in self._ordered()]

    def active(self) -> dict[str, object]:
        """The thresholds set, by option name (the card lists them)."""
        return {name.replace("_", "-"): value for name, value in self.model_dump().items()
                if value not in (None, [])}

    def rejects(self, item: Item, seen: DialogueFigures) -> str | None:
        """The first filter the item fails, by option name; None when it passes them all."""
        return next((name for name, fails in self._ordered() if fails(item, seen)), None)

    def _ordered(self) -> list[tuple[str, Callable[[Item, DialogueFigures], bool]]]:
        """The set filters, with the two-speaker rule right after the length floor."""
        tests = self._tests()
        tests.insert(1, (ONE_SPEAKER, lambda item, seen: seen.speakers < 2))
        return tests

    def _tests(self) -> list[tuple[str, Callable[[Item, DialogueFigures], bool]]]:
        def share(count: int, lines: int) -> float:
            """A dialogue without lines has no share of anything, rather than a division by zero."""
            return count / lines if lines else 0.0

        tests: list[tuple[str, Callable[[Item, DialogueFigures], bool]]] = [
            ("--min-turns", lambda item, seen: seen.lines < self.min_turns)]
        if self.max_turns is not None:
            tests.append(("--max-turns", lambda item, seen: seen.lines > self.max_turns))
        if self.end_reasons:
            tests.append(("--end-reason", lambda item, seen: item.dialogue.end_reason not in self.end_reasons))
        if self.max_self_address is not None:
            tests.append(("--max-self-address",
                          lambda item, seen: share(seen.self_address, seen.lines) > self.max_self_address))
        if self.max_echo is not None:
            tests.append(("--max-echo", lambda item, seen: share(seen.echo, seen.lines) > self.max_echo))
        if self.max_out_of_character is not None:
            tests.append(("--max-out-of-character", lambda item, seen:
                          share(seen.out_of_character, seen.lines) > self.max_out_of_character))
        if self.max_wrong_addressee is not None:
            tests.append(("--max-wrong-addressee", lambda item, seen:
                          share(seen.wrong_addressee, seen.lines) > self.max_wrong_addressee))
        if self.max_role_flips is not None:
            tests.append(("--max-role-flips", lambda item, seen: seen.role_flips > self.max_role_flips))
        if self.max_repetition is not None:
            tests.append(("--max-repetition", lambda item, seen: seen.repeated_trigram_share > self.max_repetition))
        if self.min_chars is not None:
            tests.append(("--min-chars", lambda item, seen: seen.min_chars < self.min_chars))
        if self.max_chars is not None:
            tests.append(("--max-chars", lambda item, seen: seen.max_chars > self.max_chars))
        if self.min_p_true is not None:
            tests.append(("--min-p-true", lambda item, seen: item.dialogue.kind == "self_eval" and (
                item.p_true is None or item.p_true < self.min_p_true)))
        return tests
