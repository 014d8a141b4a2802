"""llama.cpp in-process: the embedded default and any local GGUF, off the event loop."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

from agents.gateway.backends.base import Backend
from agents.gateway.errors import ModelSpecError
from agents.gateway.types import ModelReply, ModelRequest

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


class LlamaCppBackend(Backend):
    """Runs a GGUF chat model with JSON-schema constrained decoding for structured requests."""

    gives_logprobs = True

    def __init__(self, path: Path, name: str, n_ctx: int = 4096, timeout_s: float = 300.0) -> None:
        if not path.is_file():
            raise ModelSpecError(f"no GGUF file at {path}")
        self.path = path
        self.name = name
        self.n_ctx = n_ctx
        self.max_in_flight = 1
        self.timeout_s = timeout_s

    def _option_logprobs(self, llm: Any, request: ModelRequest) -> ModelReply:
        """Log-probabilities of each option's first token right after the chat prompt (evaluated from scratch)."""
        import numpy as np
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        formatter = Jinja2ChatFormatter(template=llm.metadata["tokenizer.chat_template"],
                                        eos_token=llm.detokenize([llm.token_eos()]).decode(errors="ignore"),
                                        bos_token=llm.detokenize([llm.token_bos()]).decode(errors="ignore"))
        prompt = formatter(messages=[m.model_dump() for m in request.messages]).prompt
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
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
        with lock:
            # Evaluate every prompt from scratch. Reusing the previous call's KV cache changes the
            # last prompt token's logits slightly (a 1-token batch instead of the full batch), so a
            # seeded call would sample different text depending on which call ran before it.
            llm.reset()
            out = llm.create_chat_completion(
                messages=[m.model_dump() for m in request.messages],
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
        )

    async def generate(self, request: ModelRequest) -> ModelReply:
        return await asyncio.to_thread(self._generate_sync, request)
