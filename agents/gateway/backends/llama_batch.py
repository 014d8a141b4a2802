"""Continuous batching on one llama.cpp context: concurrent calls share every decode step.

One thread owns a context with `parallel` sequences. Each step builds one batch from the next token
of every sequence that is generating and, in the room left, the next prompt tokens of sequences
still reading their prompt; one `llama_decode` serves them all, and a finished call frees its
sequence for the next one waiting. A call's prompt prefix (its rendered leading system message)
is kept as a saved sequence state and restored into whichever sequence the next call with that
prefix gets. JSON-schema grammars are checked lazily, as llama.cpp's own server does: the token
drawn without the grammar is kept when the grammar accepts it, and only otherwise is the whole
vocabulary filtered and the token drawn again. A generating call may also carry draft tokens looked
up in its own text (`lookup_drafts`): each row's token is drawn as it would be one step at a time,
and the draft is kept as far as the draws agree with it, so several tokens can come from one step.

Reproducibility: a call's tokens depend on its request alone only while calls do not overlap
(how many rows a batch holds changes the float rounding of its logits); with calls in flight
together, a fresh run with the same seed may word some answers differently. The run's request
cache makes `--replay` exact either way.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from agents.gateway.backends.lookup_drafts import LookupDrafts
from agents.gateway.backends.prefix_states import PrefixStates

#: llama-cpp-python's defaults for a chat completion, so a batched call samples as a lone one would.
TOP_K, TYPICAL_P, TOP_P, MIN_P = 40, 1.0, 0.95, 0.05
#: How many of the most likely tokens a grammar redraw looks at before it looks at all of them.
SHORTLIST = 1024


class DecodeCounters(BaseModel):
    """What the decoder did, for benchmarks: steps, how full they were, and tokens by kind."""

    steps: int = 0
    rows: int = 0
    #: Steps that decoded tokens of two calls or more together.
    shared_steps: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    grammar_redraws: int = 0
    #: Draft tokens checked, and those the model's own draws agreed with (each one a decode step saved).
    drafted_tokens: int = 0
    accepted_tokens: int = 0
    most_in_flight: int = 0
    #: Calls whose caller stopped waiting (time-outs): their sequences freed mid-way.
    abandoned: int = 0
    #: Seconds and tokens generated in the steps that only generated (no prompt rows): llama-batched-bench's S_TG.
    generation_only_s: float = 0.0
    generation_only_tokens: int = 0


@dataclass
class Job:
    """One call on its way through the decoder; `options` asks for first-token log-probabilities instead of text."""

    tokens: list[int]
    prefix: tuple[int, ...]
    max_tokens: int
    temperature: float
    seed: int
    grammar: str | None = None
    options: list[int] | None = None
    #: The calling backend's kept prefixes (each backend has its own bound).
    prefixes: PrefixStates | None = None
    #: Most draft tokens checked a step (0: one token a step).
    draft: int = 0
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)
    #: Set by the caller that stopped waiting (a time-out): the decoder frees the sequence at its next step.
    abandoned: bool = False
    # Set by the decoder:
    seq: int = -1
    read: int = 0
    reused: int = 0
    #: The prefix is in the prefix store already (restored from it, or saved to it once read).
    prefix_kept: bool = False
    generated: list[int] = field(default_factory=list)
    lookup: LookupDrafts | None = None
    #: This step's draft, checked by the rows after the last token's.
    guess: list[int] = field(default_factory=list)
    sampler: Any = None
    grammar_sampler: Any = None


@dataclass
class Finished:
    """What a job hands back: the tokens it drew, or the options' log-probabilities."""

    tokens: list[int]
    prompt_tokens: int
    reused: int
    logprobs: dict[int, float] | None = None


def _keeps(job: Job) -> bool:
    return job.prefixes is not None and job.prefixes.max_bytes > 0


class BatchedDecoder:
    """Serves jobs from any thread; one worker thread does every llama.cpp call on its own context."""

    def __init__(self, model: Any, n_ctx_per_seq: int, parallel: int, threads: int, n_batch: int = 512) -> None:
        import llama_cpp

        self._llama = llama_cpp
        self.model = model
        self.vocab = llama_cpp.llama_model_get_vocab(model.model)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_per_seq = n_ctx_per_seq
        self.parallel = parallel
        self.n_batch = n_batch
        self.counters = DecodeCounters()
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx_per_seq * parallel
        params.n_batch = params.n_ubatch = n_batch
        params.n_seq_max = parallel
        params.n_threads = params.n_threads_batch = threads
        params.kv_unified = True
        params.no_perf = True
        self.ctx = llama_cpp.llama_init_from_model(model.model, params)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not make a context for batched decoding")
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        #: A recurrent model's state cannot lose its last few tokens, so its calls decode a token a step.
        self.can_draft = not (llama_cpp.llama_model_is_recurrent(model.model)
                              or llama_cpp.llama_model_is_hybrid(model.model))
        self.batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._waiting: deque[Job] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="llama-batch", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> concurrent.futures.Future:
        if not job.tokens:
            raise ValueError("an empty prompt: nothing to decode")
        if job.options is None and job.max_tokens < 1:
            raise ValueError(f"max_tokens must be 1 or more, got {job.max_tokens}")
        if len(job.tokens) + job.max_tokens > self.n_ctx_per_seq and job.options is None:
            raise ValueError(f"Requested tokens ({len(job.tokens) + job.max_tokens}) exceed context window "
                             f"of {self.n_ctx_per_seq}")
        with self._wake:
            if self._closed:
                raise RuntimeError("the batched decoder is closed")
            self._waiting.append(job)
            self._wake.notify()
        return job.future

    def close(self) -> None:
        """Stop the worker after the step under way; calls still waiting fail rather than hang."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        self._thread.join()
        self._llama.llama_batch_free(self.batch)
        self._llama.llama_free(self.ctx)

    # The worker thread from here on.

    def _serve(self) -> None:
        active: dict[int, Job] = {}
        while True:
            with self._wake:
                while not self._closed and not self._waiting and not active:
                    self._wake.wait()
                if self._closed:
                    for seq in list(active):
                        self._fail(active, seq, RuntimeError("the batched decoder closed"))
                    for job in self._waiting:
                        if job.future.set_running_or_notify_cancel():
                            job.future.set_exception(RuntimeError("the batched decoder closed"))
                    return
                while self._waiting and len(active) < self.parallel:
                    job = self._waiting.popleft()
                    if job.future.set_running_or_notify_cancel():
                        free = next(s for s in range(self.parallel) if s not in active)
                        active[free] = job
            try:
                self._start_new(active)
                self._step(active)
            except Exception as exc:  # a failed step fails the calls in it; the gateway retries them
                for seq in list(active):
                    self._fail(active, seq, exc)

    def _start_new(self, active: dict[int, Job]) -> None:
        """Give each newly admitted job its sequence: a kept prefix restored, a sampler seeded; one that cannot
        start fails alone."""
        for seq, job in list(active.items()):
            if job.seq >= 0:
                continue
            job.seq = seq
            try:
                self._start(job)
            except Exception as exc:  # noqa: BLE001 - e.g. a grammar llama.cpp refuses: that call fails, not the rest
                self._fail(active, seq, exc)
        self.counters.most_in_flight = max(self.counters.most_in_flight, len(active))

    def _start(self, job: Job) -> None:
        """Clear the job's sequence, restore its kept prefix if any, and seed its samplers."""
        seq = job.seq
        self._llama.llama_memory_seq_rm(self.memory, seq, -1, -1)
        fits = 0 < len(job.prefix) < len(job.tokens)  # something is left to read, so the last row has logits
        state = job.prefixes.get(job.prefix) if fits and _keeps(job) else None
        if state is not None:
            buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
            if self._llama.llama_state_seq_set_data(self.ctx, buffer, len(state), seq) == len(state):
                job.read = job.reused = len(job.prefix)
                job.prefix_kept = True
        if job.options is None:
            job.lookup = LookupDrafts(job.tokens) if job.draft > 0 and self.can_draft else None
            job.sampler = self._sampler(job.temperature, job.seed)
            if job.grammar is not None:
                job.grammar_sampler = self._llama.llama_sampler_init_grammar(
                    self.vocab, job.grammar.encode(), b"root")
                if not job.grammar_sampler:  # NULL: llama.cpp could not parse it
                    job.grammar_sampler = None
                    raise ValueError("llama.cpp refused the JSON Schema's grammar")

    def _sampler(self, temperature: float, seed: int) -> Any:
        llama = self._llama
        chain = llama.llama_sampler_chain_init(llama.llama_sampler_chain_default_params())
        if temperature <= 0:
            llama.llama_sampler_chain_add(chain, llama.llama_sampler_init_greedy())
            return chain
        for part in (llama.llama_sampler_init_top_k(TOP_K), llama.llama_sampler_init_typical(TYPICAL_P, 1),
                     llama.llama_sampler_init_top_p(TOP_P, 1), llama.llama_sampler_init_min_p(MIN_P, 1),
                     llama.llama_sampler_init_temp(temperature), llama.llama_sampler_init_dist(seed)):
            llama.llama_sampler_chain_add(chain, part)
        return chain

    def _step(self, active: dict[int, Job]) -> None:
        """One decode: every generating sequence's last token, then prompt chunks in the room left."""
        for seq in [seq for seq, job in active.items() if job.abandoned]:
            self.counters.abandoned += 1
            self._fail(active, seq, TimeoutError("the caller stopped waiting"))
        batch, rows = self.batch, {}
        batch.n_tokens = 0

        def add(job: Job, token: int, position: int, wants_logits: bool) -> None:
            i = batch.n_tokens
            batch.token[i], batch.pos[i], batch.n_seq_id[i] = token, position, 1
            batch.seq_id[i][0] = job.seq
            batch.logits[i] = wants_logits
            batch.n_tokens = i + 1
            if wants_logits:
                rows.setdefault(job.seq, []).append(i)

        generating_jobs = [job for job in active.values() if job.read == len(job.tokens) and job.generated]
        for number, job in enumerate(generating_jobs):
            position = len(job.tokens) + len(job.generated) - 1
            # Room for every other generating job's row; no draft past the last token the call may draw.
            room = min(job.draft, job.max_tokens - len(job.generated) - 1,
                       self.n_batch - batch.n_tokens - (len(generating_jobs) - number))
            job.guess = job.lookup.draft(room) if job.lookup is not None else []
            for k, token in enumerate([job.generated[-1], *job.guess]):
                add(job, token, position + k, True)
        generating = batch.n_tokens
        produced = self.counters.generated_tokens
        for job in active.values():
            if job.read < len(job.tokens):
                # A chunk stops at the prefix's end, so the prefix alone can be saved once it is read.
                end = len(job.prefix) if job.read < len(job.prefix) else len(job.tokens)
                take = min(end - job.read, self.n_batch - batch.n_tokens)
                for k in range(job.read, job.read + take):
                    add(job, job.tokens[k], k, k == len(job.tokens) - 1)
                job.read += take
        if batch.n_tokens == 0:
            return
        started = time.perf_counter()
        if self._llama.llama_decode(self.ctx, batch) != 0:
            raise RuntimeError("llama_decode failed (context full or interrupted)")
        counters = self.counters
        counters.steps += 1
        counters.rows += batch.n_tokens
        counters.prompt_tokens += batch.n_tokens - generating
        counters.shared_steps += len({batch.seq_id[i][0] for i in range(batch.n_tokens)}) > 1
        for job in active.values():
            if job.prefix and job.read == len(job.prefix) and not job.prefix_kept and _keeps(job):
                self._keep_prefix(job)
        for seq, job_rows in rows.items():
            self._advance(active, active[seq], job_rows)
        if generating == batch.n_tokens:
            counters.generation_only_s += time.perf_counter() - started
            counters.generation_only_tokens += counters.generated_tokens - produced

    def _keep_prefix(self, job: Job) -> None:
        size = self._llama.llama_state_seq_get_size(self.ctx, job.seq)
        buffer = (ctypes.c_uint8 * size)()
        written = self._llama.llama_state_seq_get_data(self.ctx, buffer, size, job.seq)
        job.prefixes.put(job.prefix, ctypes.string_at(buffer, written))
        job.prefix_kept = True

    def _advance(self, active: dict[int, Job], job: Job, rows: list[int]) -> None:
        """Draw from each row in turn while the draws agree with the draft; drop the cache rows of the rest."""
        if job.options is not None:
            self._finish(active, job, logprobs=self._logprobs(rows[0], job.options))
            return
        guess, job.guess = job.guess, []
        self.counters.drafted_tokens += len(guess)
        position = len(job.tokens) + len(job.generated)  # where the first drawn token goes
        agreed = 0
        for row in rows:
            token = self._draw(job, row)
            agrees = agreed < len(guess) and token == guess[agreed]
            self.counters.accepted_tokens += agrees
            if self._llama.llama_vocab_is_eog(self.vocab, token):
                self._finish(active, job)
                return
            job.generated.append(token)
            self.counters.generated_tokens += 1
            if job.lookup is not None:
                job.lookup.extend([token])
            if len(job.generated) >= job.max_tokens:
                self._finish(active, job)
                return
            if not agrees:
                break
            agreed += 1
        # Rows of the draft past the first disagreement hold tokens never drawn.
        if agreed < len(guess) and not self._llama.llama_memory_seq_rm(self.memory, job.seq, position + agreed, -1):
            raise RuntimeError("llama.cpp could not drop a draft's rejected rows from the cache")

    def _draw(self, job: Job, row: int) -> int:
        """The chain's token if the grammar takes it; else the grammar filters the candidates and the chain draws again."""
        llama = self._llama
        token = llama.llama_sampler_sample(job.sampler, self.ctx, row)
        if job.grammar_sampler is None:
            return token
        one = (llama.llama_token_data * 1)(llama.llama_token_data(token, 1.0, 0.0))
        single = llama.llama_token_data_array(data=ctypes.cast(one, llama.llama_token_data_p), size=1,
                                              selected=-1, sorted=False)
        llama.llama_sampler_apply(job.grammar_sampler, ctypes.byref(single))
        if math.isinf(one[0].logit):
            self.counters.grammar_redraws += 1
            token = self._redraw(job, row)
        llama.llama_sampler_accept(job.grammar_sampler, token)
        return token

    def _redraw(self, job: Job, row: int) -> int:
        """Draw among the tokens the grammar allows, as if it had filtered the whole vocabulary first.

        The chain keeps only the `TOP_K` best tokens before anything else, so when that many allowed
        tokens are among the `SHORTLIST` most likely, the draw over the shortlist is the same draw as
        over the whole vocabulary, at a hundredth of the grammar's cost; otherwise the whole vocabulary is filtered.
        """
        import numpy as np

        llama = self._llama
        logits = np.ctypeslib.as_array(llama.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab,))
        shortlist = np.argpartition(-logits, SHORTLIST)[:SHORTLIST]
        for ids in (shortlist, None):
            candidates = self._candidates(logits, ids)
            view = llama.llama_token_data_array(data=candidates.ctypes.data_as(llama.llama_token_data_p),
                                                size=len(candidates), selected=-1, sorted=False)
            llama.llama_sampler_apply(job.grammar_sampler, ctypes.byref(view))
            allowed = int(np.isfinite(candidates["logit"]).sum())
            if allowed >= (TOP_K if job.temperature > 0 else 1) or ids is None:
                llama.llama_sampler_apply(job.sampler, ctypes.byref(view))
                return int(candidates["id"][view.selected])
        raise AssertionError("unreachable: the whole vocabulary is always drawn from")

    @staticmethod
    def _candidates(logits: Any, ids: Any) -> Any:
        """Token data for `ids` (None: every token) with their logits, laid out as llama.cpp reads it."""
        import numpy as np

        chosen = np.arange(len(logits), dtype=np.intc) if ids is None else ids.astype(np.intc)
        candidates = np.zeros(len(chosen), dtype=np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)],
                                                          align=True))
        candidates["id"] = chosen
        candidates["logit"] = logits[chosen]
        return candidates

    def _logprobs(self, row: int, options: list[int]) -> dict[int, float]:
        import numpy as np

        logits = np.ctypeslib.as_array(self._llama.llama_get_logits_ith(self.ctx, row), shape=(self.n_vocab,))
        values = logits.astype(np.float64)
        top = values.max()
        logsumexp = top + np.log(np.exp(values - top).sum())
        return {token: round(float(values[token] - logsumexp), 6) for token in options}

    def _finish(self, active: dict[int, Job], job: Job, logprobs: dict[int, float] | None = None) -> None:
        self._drop(active, job.seq)
        job.future.set_result(Finished(tokens=job.generated, prompt_tokens=len(job.tokens),
                                       reused=job.reused, logprobs=logprobs))

    def _fail(self, active: dict[int, Job], seq: int, exc: BaseException) -> None:
        job = active[seq]
        self._drop(active, seq)
        job.future.set_exception(exc)

    def _drop(self, active: dict[int, Job], seq: int) -> None:
        job = active.pop(seq)
        self._llama.llama_memory_seq_rm(self.memory, seq, -1, -1)
        for sampler in (job.sampler, job.grammar_sampler):
            if sampler is not None:
                self._llama.llama_sampler_free(sampler)
        job.sampler = job.grammar_sampler = None
