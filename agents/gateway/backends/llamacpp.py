"""llama.cpp in-process: the embedded default and any local GGUF, off the event loop."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
from pathlib import Path
from typing import Any

from agents.gateway.backends.base import Backend
from agents.gateway.backends.prefix_states import DEFAULT_MAX_BYTES, PrefixStates, restore_sequence, save_sequence
from agents.gateway.errors import ModelSpecError
from agents.gateway.types import ModelReply, ModelRequest, joined_system_turns

_loaded: dict[tuple[str, int], Any] = {}
_locks: dict[tuple[str, int], threading.Lock] = {}
_registry_lock = threading.Lock()


def _load(path: Path, n_ctx: int) -> tuple[Any, threading.Lock]:
    """One Llama per (file, context) for the whole process, with a lock since it is not re-entrant."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelSpecError(
            "llama-cpp-python is not installed; run `pip install 'simulacra[embedded]'` (or `make setup`)"
        ) from exc
    key = (str(path), n_ctx)
    with _registry_lock:
        if key not in _loaded:
            threads = max(1, os.cpu_count() or 1)
            _loaded[key] = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
            _locks[key] = threading.Lock()
        return _loaded[key], _locks[key]


@functools.cache
def _formatter(llm: Any) -> Any:
    """The model's own chat template, as llama-cpp-python renders it for a chat completion."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"],
                               eos_token=llm.detokenize([llm.token_eos()]).decode(errors="ignore"),
                               bos_token=llm.detokenize([llm.token_bos()]).decode(errors="ignore"))


def _tokens(llm: Any, messages: list[dict[str, str]]) -> list[int]:
    return llm.tokenize(_formatter(llm)(messages=messages).prompt.encode(), add_bos=False, special=True)


def _tokens_if_rendered(llm: Any, messages: list[dict[str, str]]) -> list[int] | None:
    """None for messages the model's template will not render (a lone system turn, a second one)."""
    try:
        return _tokens(llm, messages)
    except Exception:
        return None


class LlamaCppBackend(Backend):
    """Runs a GGUF chat model with JSON-schema constrained decoding for structured requests."""

    gives_logprobs = True

    def __init__(self, path: Path, name: str, n_ctx: int = 4096, timeout_s: float = 300.0,
                 prefix_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if not path.is_file():
            raise ModelSpecError(f"no GGUF file at {path}")
        self.path = path
        self.name = name
        self.n_ctx = n_ctx
        self.max_in_flight = 1
        self.timeout_s = timeout_s
        #: This backend's kept prompt prefixes (a bound of 0 keeps none: every prefix evaluated, the same text).
        #: States fit any backend on the same loaded model, since they are restored under its lock.
        self.prefixes = PrefixStates(prefix_bytes)

    def _start_from_prefix(self, llm: Any, messages: list[dict[str, str]], full: list[int] | None) -> int:
        """Evaluate (or restore) the rendered leading system message on its own; the tokens restored come back.

        `full` is the whole prompt's tokens (None: its template would not render it). The chat completion
        that follows finds the prefix in the context and evaluates only the rest, so every prompt is split
        the same way, restored or not; a prompt that cannot be split is never split.
        """
        llm.reset()
        llm._ctx.kv_cache_clear()
        if full is None or len(messages) < 2 or messages[0]["role"] != "system":
            return 0
        alone = _tokens_if_rendered(llm, messages[:1])
        if alone is None:
            return 0
        shared = 0
        for a, b in zip(full, alone):
            if a != b:
                break
            shared += 1
        prefix = tuple(full[:shared])
        if not prefix or len(full) >= self.n_ctx:
            return 0  # too long a prompt fails in the completion, with llama-cpp-python's own message
        keeping = self.prefixes.max_bytes > 0
        state = self.prefixes.get(prefix) if keeping else None
        if state is not None:
            restore_sequence(llm, state, prefix)
            return len(prefix)
        llm.eval(list(prefix))
        if keeping:
            self.prefixes.put(prefix, save_sequence(llm))
        return 0

    def _option_logprobs(self, llm: Any, request: ModelRequest) -> ModelReply:
        """Log-probabilities of each option's first token right after the chat prompt (evaluated from scratch)."""
        import numpy as np

        tokens = _tokens(llm, [m.model_dump() for m in request.messages])
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"Requested tokens ({len(tokens)}) exceed context window of {self.n_ctx}")
        llm.reset()
        llm.eval(tokens)
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),)).astype(np.float64)
        top = logits.max()
        logsumexp = top + np.log(np.exp(logits - top).sum())
        first = {o: llm.tokenize(o.encode(), add_bos=False, special=False)[0] for o in request.options or []}
        values = {o: round(float(logits[t] - logsumexp), 6) for o, t in first.items()}
        return ModelReply(text=json.dumps(values), prompt_tokens=len(tokens), completion_tokens=0)

    def _generate_sync(self, request: ModelRequest) -> ModelReply:
        llm, lock = _load(self.path, self.n_ctx)
        if request.options is not None:
            with lock:
                return self._option_logprobs(llm, request)
        kwargs: dict[str, Any] = {}
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": request.json_schema}
        messages = [m.model_dump() for m in request.messages]
        with lock:
            full = _tokens_if_rendered(llm, messages)
            if full is None:  # e.g. a template that insists on user/assistant turns after one system turn
                messages = [m.model_dump() for m in joined_system_turns(request.messages)]
                full = _tokens_if_rendered(llm, messages)
            # Never continue from whatever the previous call left: how a prompt is cut into batches
            # changes its logits slightly, so a seeded call would sample differently depending on
            # which call ran before it. Every prompt is cut at the same place instead (see prefix_states).
            reused = self._start_from_prefix(llm, messages, full)
            out = llm.create_chat_completion(
                messages=messages,
                temperature=request.temperature,
                max_tokens=request.max_tokens,
                seed=request.seed,
                **kwargs,
            )
        usage = out.get("usage") or {}
        return ModelReply(
            text=out["choices"][0]["message"]["content"] or "",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            prompt_tokens_reused=reused,
        )

    async def generate(self, request: ModelRequest) -> ModelReply:
        return await asyncio.to_thread(self._generate_sync, request)
