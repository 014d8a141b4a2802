"""llama.cpp in-process: the embedded default and any local GGUF, concurrent calls decoded in one batch."""

from __future__ import annotations

import asyncio
import atexit
import functools
import json
import os
import threading
from pathlib import Path
from typing import Any

from agents.gateway.backends.base import Backend
from agents.gateway.backends.llama_batch import BatchedDecoder, Finished, Job
from agents.gateway.backends.lookup_drafts import DEFAULT_DRAFT
from agents.gateway.backends.prefix_states import DEFAULT_MAX_BYTES, PrefixStates
from agents.gateway.errors import ModelSpecError
from agents.gateway.types import ModelReply, ModelRequest, joined_system_turns

#: Sequences decoded together by default: on 2 cores, 4 give most of what batching gains (see docs/benchmarks.md).
DEFAULT_PARALLEL = 4

_loaded: dict[tuple[str, int], Any] = {}
_decoders: dict[tuple[str, int, int], BatchedDecoder] = {}
_registry_lock = threading.Lock()


def _load(path: Path, n_ctx: int) -> Any:
    """One Llama per (file, context) for the whole process: the weights, the tokenizer and the chat template."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelSpecError(
            "llama-cpp-python is not installed; run `pip install 'simulacra[embedded]'` (or `make setup`)"
        ) from exc
    key = (str(path), n_ctx)
    with _registry_lock:
        if key not in _loaded:
            _loaded[key] = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=_threads(), verbose=False)
        return _loaded[key]


def _threads() -> int:
    return max(1, os.cpu_count() or 1)


def _decoder(path: Path, n_ctx: int, parallel: int) -> tuple[Any, BatchedDecoder]:
    """One decoder per (file, context, parallel) for the whole process; backends on it keep their own prefixes."""
    llm = _load(path, n_ctx)
    key = (str(path), n_ctx, parallel)
    with _registry_lock:
        if key not in _decoders:
            _decoders[key] = BatchedDecoder(llm._model, n_ctx, parallel, _threads())
        return llm, _decoders[key]


@atexit.register
def _close_models() -> None:
    """Let each worker finish its step, then free the models, while the interpreter still has what freeing
    them needs (left to garbage collection at shutdown, llama-cpp-python's finaliser fails noisily)."""
    with _registry_lock:
        decoders, models = list(_decoders.values()), list(_loaded.values())
        _decoders.clear()
        _loaded.clear()  # a later load gets a fresh model, never a freed one
    for decoder in decoders:
        decoder.close()
    for llm in models:
        llm.close()


@functools.cache
def _formatter(llm: Any) -> Any:
    """The model's own chat template, as llama-cpp-python renders it for a chat completion."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"],
                               eos_token=llm.detokenize([llm.token_eos()]).decode(errors="ignore"),
                               bos_token=llm.detokenize([llm.token_bos()]).decode(errors="ignore"))


def grammar_for(schema: dict[str, Any]) -> str:
    """The GBNF grammar that constrains decoding to a JSON Schema, its fields in the schema's own order
    (the order the prompt shows them in, and the order the model decides them in)."""
    return _grammar(json.dumps(schema))


@functools.lru_cache(maxsize=256)
def _grammar(schema_json: str) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(schema_json)


def _tokens(llm: Any, messages: list[dict[str, str]]) -> list[int]:
    return llm.tokenize(_formatter(llm)(messages=messages).prompt.encode(), add_bos=False, special=True)


def _tokens_if_rendered(llm: Any, messages: list[dict[str, str]]) -> list[int] | None:
    """None for messages the model's template will not render (a lone system turn, a second one)."""
    try:
        return _tokens(llm, messages)
    except Exception:
        return None


def _prompt(llm: Any, request: ModelRequest) -> tuple[list[int], tuple[int, ...]]:
    """The prompt's tokens and its prefix: as much of it as the leading system message rendered alone shares.

    Every prompt is read as that prefix and then the rest, whether the prefix is restored or evaluated,
    so keeping prefixes changes the speed and never the text; a prompt that cannot be split is not split.
    """
    messages = [m.model_dump() for m in request.messages]
    full = _tokens_if_rendered(llm, messages)
    if full is None:  # e.g. a template that insists on user/assistant turns after one system turn
        messages = [m.model_dump() for m in joined_system_turns(request.messages)]
        full = _tokens(llm, messages)
    if len(messages) < 2 or messages[0]["role"] != "system":
        return full, ()
    alone = _tokens_if_rendered(llm, messages[:1]) or []
    shared = 0
    for a, b in zip(full, alone):
        if a != b:
            break
        shared += 1
    return full, tuple(full[:shared])


class LlamaCppBackend(Backend):
    """Runs a GGUF chat model with JSON-schema constrained decoding; up to `parallel` calls share each decode step."""

    gives_logprobs = True

    def __init__(self, path: Path, name: str, n_ctx: int = 4096, timeout_s: float = 300.0,
                 prefix_bytes: int = DEFAULT_MAX_BYTES, parallel: int = DEFAULT_PARALLEL,
                 draft: int = DEFAULT_DRAFT) -> None:
        if not path.is_file():
            raise ModelSpecError(f"no GGUF file at {path}")
        self.path = path
        self.name = name
        self.n_ctx = n_ctx
        self.parallel = parallel
        self.max_in_flight = parallel
        self.timeout_s = timeout_s
        #: This backend's kept prompt prefixes (a bound of 0 keeps none: every prefix evaluated, the same text).
        self.prefixes = PrefixStates(prefix_bytes)
        #: Draft tokens looked up in a call's own text and checked each step (0: one token a step).
        self.draft = draft

    @property
    def decoder(self) -> BatchedDecoder:
        """The shared decoder this backend's calls go through (loaded on first use)."""
        return _decoder(self.path, self.n_ctx, self.parallel)[1]

    def _job(self, request: ModelRequest) -> tuple[Any, BatchedDecoder, Job]:
        """Off the event loop: loading the model, rendering and tokenizing take a while."""
        llm, decoder = _decoder(self.path, self.n_ctx, self.parallel)
        tokens, prefix = _prompt(llm, request)
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"Requested tokens ({len(tokens)}) exceed context window of {self.n_ctx}")
        options = None
        if request.options is not None:
            options = [llm.tokenize(o.encode(), add_bos=False, special=False)[0] for o in request.options]
        grammar = grammar_for(request.json_schema) if request.json_schema else None
        # The reply is shortened to fit the context, as llama-cpp-python's own completion does.
        room = min(request.max_tokens, self.n_ctx - len(tokens))
        return llm, decoder, Job(tokens=tokens, prefix=prefix, max_tokens=room, temperature=request.temperature,
                                 seed=request.seed, grammar=grammar, options=options, prefixes=self.prefixes,
                                 draft=self.draft)

    async def generate(self, request: ModelRequest) -> ModelReply:
        llm, decoder, job = await asyncio.to_thread(self._job, request)
        done = decoder.submit(job)
        try:
            finished: Finished = await asyncio.wrap_future(done)
        except asyncio.CancelledError:
            job.abandoned = True  # a time-out: the decoder frees the sequence at its next step
            raise
        if finished.logprobs is not None:
            values = {option: finished.logprobs[token] for option, token in zip(request.options or [], job.options or [])}
            return ModelReply(text=json.dumps(values), prompt_tokens=finished.prompt_tokens, completion_tokens=0)
        return ModelReply(text=llm.detokenize(finished.tokens).decode("utf-8", errors="ignore"),
                          prompt_tokens=finished.prompt_tokens, completion_tokens=len(finished.tokens),
                          prompt_tokens_reused=finished.reused)
