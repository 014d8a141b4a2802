"""Draft tokens for speculative decoding, looked up in the call's own text (prompt lookup decoding).

Small models copy a great deal from their prompts: JSON keys the instructions name, place and
people's names, phrases of the persona. When the last few tokens of a call's text appeared before,
the tokens that followed them then are a good guess for what follows now; the decoder checks the
guess in the same step as the next token, and keeps what the model itself would have drawn.

Drafts come from the call's own prompt and its own tokens so far, nothing else, so a request is
decoded the same way whatever ran before it.
"""

from __future__ import annotations

#: The runs of trailing tokens looked up, longest (the surer guess) first; a lone token's last appearance
#: is too weak a guess to be worth the rows it takes (measured on the demo's calls, docs/benchmarks.md).
LONGEST_MATCH, SHORTEST_MATCH = 3, 2
#: Tokens drafted a step by default: on 2 cores a step of 5 rows costs about 1.6 steps of 1, and saves more.
DEFAULT_DRAFT = 4


class LookupDrafts:
    """Where each run of `SHORTEST_MATCH`..`LONGEST_MATCH` tokens last appeared, kept up to date as tokens are added."""

    def __init__(self, tokens: list[int]) -> None:
        self.text: list[int] = []
        self._seen: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: list[int]) -> None:
        for token in tokens:
            end = len(self.text)  # runs ending here now have a token after them: `token`
            for size in range(SHORTEST_MATCH, min(LONGEST_MATCH, end) + 1):
                self._seen[tuple(self.text[end - size:end])] = end
            self.text.append(token)

    def draft(self, most: int) -> list[int]:
        """Up to `most` tokens that followed the latest earlier appearance of the text's longest known ending."""
        if most < 1:
            return []
        end = len(self.text)
        for size in range(min(LONGEST_MATCH, end), SHORTEST_MATCH - 1, -1):
            found = self._seen.get(tuple(self.text[end - size:]))
            if found is not None:
                return self.text[found:found + most]
        return []
