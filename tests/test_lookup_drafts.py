"""Draft tokens looked up in a call's own text: what the decoder guesses, and how a spec sets how many."""

from __future__ import annotations

import pytest

from agents.gateway import build_backend
from agents.gateway.backends.lookup_drafts import LookupDrafts
from agents.gateway.errors import ModelSpecError


def test_the_draft_is_what_followed_the_latest_earlier_appearance_of_the_ending():
    drafts = LookupDrafts([1, 2, 3, 4, 9, 1, 2, 3, 5, 6, 1, 2])
    assert drafts.draft(3) == [3, 5, 6]  # "1 2" last came before "3 5 6", not before "3 4 9"
    assert drafts.draft(1) == [3]


def test_a_longer_matching_ending_wins_over_a_more_recent_shorter_one():
    drafts = LookupDrafts([7, 8, 9, 1, 1, 8, 9, 2, 7, 8, 9])
    assert drafts.draft(2) == [1, 1]  # "7 8 9" came before "1 1"; "8 9" alone came last before "2"


def test_no_draft_from_a_lone_token_or_an_ending_never_seen():
    assert LookupDrafts([1, 2, 3, 4, 3]).draft(4) == []  # only "3" matches: too weak a guess
    assert LookupDrafts([1, 2, 3, 4]).draft(4) == []
    assert LookupDrafts([1, 2, 1, 2]).draft(0) == []


def test_tokens_added_later_are_looked_up_too():
    drafts = LookupDrafts([5, 6, 7])
    drafts.extend([8, 5, 6])
    assert drafts.draft(4) == [7, 8, 5, 6]
    drafts.extend([9, 8, 5])
    assert drafts.draft(2) == [6, 9]  # the newest "8 5" was followed by "6 9"


def test_draft_tokens_in_a_spec_must_not_be_negative():
    with pytest.raises(ModelSpecError, match="draft must be 0 or more"):
        build_backend("llamacpp:/no/such/model.gguf?draft=-1")


EOG = 0


class _Batch:
    def __init__(self, size: int) -> None:
        self.n_tokens = 0
        self.token, self.pos, self.n_seq_id, self.logits = [0] * size, [0] * size, [0] * size, [False] * size
        self.seq_id = [[0] for _ in range(size)]


class _ScriptedLlama:
    """llama.cpp as far as the decoder's steps use it: a cache of (sequence, position) → token that refuses
    a position out of turn, as llama.cpp does, and a "model" that knows the one right continuation."""

    def __init__(self, text: list[int]) -> None:
        self.text = text  # prompt and the continuation the model gives, EOG last
        self.cache: dict[int, dict[int, int]] = {}
        self.removals: list[int] = []
        self.refuse_removal = False

    def llama_decode(self, ctx: object, batch: _Batch) -> int:
        for i in range(batch.n_tokens):
            cells = self.cache.setdefault(batch.seq_id[i][0], {})
            position = batch.pos[i]
            in_turn = position not in cells and (position == 0 or position - 1 in cells)
            assert in_turn, f"position {position} out of turn"
            cells[position] = batch.token[i]
        return 0

    def draw(self, batch: _Batch, row: int) -> int:
        """The next token if everything the row's sequence holds so far is the right text, else a wrong one."""
        cells, position = self.cache[batch.seq_id[row][0]], batch.pos[row]
        right = all(cells.get(p) == self.text[p] for p in range(position + 1))
        return self.text[position + 1] if right else 999

    def llama_memory_seq_rm(self, memory: object, seq: int, start: int, end: int) -> bool:
        if start >= 0:
            self.removals.append(start)
            if self.refuse_removal:
                return False
        self.cache[seq] = {p: t for p, t in self.cache.get(seq, {}).items() if 0 <= start and p < start}
        return True

    def llama_vocab_is_eog(self, vocab: object, token: int) -> bool:
        return token == EOG


def _scripted(prompt: list[int], reply: list[int], draft: int, max_tokens: int = 40):
    """A decoder with no model and no context, on the scripted llama: the steps' bookkeeping alone."""
    from agents.gateway.backends.llama_batch import BatchedDecoder, DecodeCounters, Job

    llama = _ScriptedLlama(prompt + reply + [EOG])
    decoder = object.__new__(BatchedDecoder)
    decoder._llama, decoder.vocab, decoder.memory, decoder.ctx = llama, None, None, None
    decoder.n_batch, decoder.parallel, decoder.can_draft, decoder.counters = 64, 1, True, DecodeCounters()
    decoder.batch = _Batch(64)
    decoder._draw = lambda job, row: llama.draw(decoder.batch, row)
    job = Job(tokens=prompt, prefix=(), max_tokens=max_tokens, temperature=0.0, seed=0, draft=draft, seq=0)
    job.lookup = LookupDrafts(prompt) if draft else None
    return decoder, job, llama


def _decode(prompt: list[int], reply: list[int], draft: int, max_tokens: int = 40):
    decoder, job, llama = _scripted(prompt, reply, draft, max_tokens)
    active = {0: job}
    while active:
        decoder._step(active)
    return job.future.result(), decoder.counters, llama


PROMPT = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]
REPLY = [13, 14, 15, 16, 30, 31, 17, 18, 19, 20, 21, 40, 13, 14, 15]


def test_drafted_decoding_gives_what_a_token_a_step_gives_in_fewer_steps():
    stepwise, plain, _ = _decode(PROMPT, REPLY, draft=0)
    drafted, counters, llama = _decode(PROMPT, REPLY, draft=4)
    assert stepwise.tokens == drafted.tokens == REPLY
    assert counters.steps < plain.steps
    assert 0 < counters.accepted_tokens < counters.drafted_tokens
    assert llama.removals  # the rows of wrong guesses left the cache, or the next step would have been refused


def test_a_call_stops_at_its_token_limit_whatever_its_draft_agreed():
    reply, _, _ = _decode(PROMPT, REPLY, draft=4, max_tokens=6)
    assert reply.tokens == REPLY[:6]


def test_a_cache_that_cannot_drop_rejected_rows_fails_the_step_rather_than_decode_on_them():
    decoder, job, llama = _scripted(PROMPT, REPLY, draft=4)
    llama.refuse_removal = True  # as a recurrent model's state would
    active = {0: job}
    with pytest.raises(RuntimeError, match="rejected rows"):
        while active:
            decoder._step(active)
