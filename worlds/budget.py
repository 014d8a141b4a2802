"""Spending limits for a run: model calls and tokens, checked at tick boundaries, and the cost they add up to."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, computed_field

from agents.gateway.records import ModelCallRecord


class Prices(BaseModel):
    """What the model's provider charges; cost estimates in stats come from these."""

    model_config = ConfigDict(extra="forbid")

    prompt_per_million: float = Field(ge=0, description="Price of one million prompt tokens.")
    completion_per_million: float = Field(ge=0, description="Price of one million generated tokens.")
    currency: str = Field(default="USD", min_length=1, max_length=12)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return round((prompt_tokens * self.prompt_per_million + completion_tokens * self.completion_per_million)
                     / 1_000_000, 6)


class BudgetSpec(BaseModel):
    """A scenario's `budget:` block; `run --max-calls/--max-tokens` override its limits."""

    model_config = ConfigDict(extra="forbid")

    max_calls: int | None = Field(default=None, ge=1, description="Stop at the first tick boundary at or past this "
                                                                   "many model calls paid for.")
    max_tokens: int | None = Field(default=None, ge=1, description="The same for prompt + completion tokens.")
    prices: Prices | None = None

    def with_limits(self, max_calls: int | None, max_tokens: int | None) -> BudgetSpec:
        """Limits given on the command line win; 0 lifts a limit."""
        update = {field: (None if given == 0 else given)
                  for field, given in (("max_calls", max_calls), ("max_tokens", max_tokens)) if given is not None}
        return self.model_copy(update=update)

    def reached(self, spent: Spend) -> str | None:
        """Why the run must stop now, or None while there is budget left."""
        if self.max_calls is not None and spent.calls >= self.max_calls:
            return f"max_calls {self.max_calls} reached: {spent.calls} model calls spent"
        if self.max_tokens is not None and spent.tokens >= self.max_tokens:
            return f"max_tokens {self.max_tokens} reached: {spent.tokens} tokens spent"
        return None


def flag_for(reason: str) -> str:
    """The command-line option that raises the limit a `BudgetSpec.reached` reason names."""
    return "--max-calls" if reason.startswith("max_calls") else "--max-tokens"


class Spend(BaseModel):
    """Calls this run paid for and their tokens; answers from another run's cache (a replay, a fork's past) are free,
    while the run's own answers served again by a resume count, as they did the first time."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, call: ModelCallRecord) -> None:
        if call.paid:
            self.calls += 1
            self.prompt_tokens += call.prompt_tokens
            self.completion_tokens += call.completion_tokens


class PricedSpend(Spend):
    #: In the budget's currency; None where the scenario gives no prices.
    cost: float | None = None


class SpendReport(BaseModel):
    """What a run paid for, by agent and by purpose, against its budget and priced where it has prices."""

    budget: BudgetSpec = BudgetSpec()
    #: The budget's reason, when the run stopped at it.
    stopped: str = ""
    total: PricedSpend = Field(default_factory=PricedSpend)
    agents: dict[str, PricedSpend] = Field(default_factory=dict)
    purposes: dict[str, PricedSpend] = Field(default_factory=dict)

    def add(self, call: ModelCallRecord) -> None:
        targets = [self.total, self.purposes.setdefault(call.purpose, PricedSpend())]
        if call.agent:
            targets.append(self.agents.setdefault(call.agent, PricedSpend()))
        for target in targets:
            target.add(call)

    def close(self, budget: BudgetSpec) -> None:
        """Sort the tables and price every row with the budget's prices."""
        self.budget = budget
        self.agents = dict(sorted(self.agents.items()))
        self.purposes = dict(sorted(self.purposes.items()))
        if budget.prices is not None:
            for row in (self.total, *self.agents.values(), *self.purposes.values()):
                row.cost = budget.prices.cost(row.prompt_tokens, row.completion_tokens)
