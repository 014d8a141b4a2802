"""One string selects a backend: `embedded`, `llamacpp:PATH`, `openai:NAME`, `fake?latency=0.2`..."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from langchain_core.language_models import BaseChatModel

from agents.gateway.backends.base import Backend
from agents.gateway.backends.fake import FakeChatBackend
from agents.gateway.backends.langchain import LangChainBackend
from agents.gateway.backends.prefix_states import DEFAULT_MAX_BYTES
from agents.gateway.errors import ModelSpecError

SPEC_HELP = (
    "use one of: embedded, embedded:1.5b, llamacpp:/path/model.gguf "
    "(both take ?n_ctx=N&prefix_mb=N&parallel=N&draft=N), openai:MODEL, ollama:MODEL, "
    "openai-compatible:http://HOST:PORT/v1?model=NAME, fake, fake?latency=SECONDS&words=N&context=N"
)


def _split_query(text: str) -> tuple[str, dict[str, str]]:
    head, _, query = text.partition("?")
    return head, dict(parse_qsl(query, keep_blank_values=True))


def _number(params: dict[str, str], key: str, default: float, spec: str) -> float:
    raw = params.pop(key, None)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ModelSpecError(f"model spec {spec!r}: {key} must be a number, got {raw!r}") from None


def _prefix_bytes(params: dict[str, str], spec: str) -> int:
    """`prefix_mb`: megabytes of evaluated prompt prefixes a llama.cpp model keeps (0 keeps none)."""
    megabytes = _number(params, "prefix_mb", DEFAULT_MAX_BYTES / 2**20, spec)
    if megabytes < 0:
        raise ModelSpecError(f"model spec {spec!r}: prefix_mb must be 0 or more, got {megabytes:g}")
    return int(megabytes * 1024 * 1024)


def _llama_options(params: dict[str, str], spec: str) -> dict[str, int]:
    """What every llama.cpp spec takes: context size, kept-prefix megabytes, sequences decoded together and
    draft tokens checked a step."""
    from agents.gateway.backends.llamacpp import DEFAULT_PARALLEL
    from agents.gateway.backends.lookup_drafts import DEFAULT_DRAFT

    n_ctx = int(_number(params, "n_ctx", 4096, spec))
    parallel = int(_number(params, "parallel", DEFAULT_PARALLEL, spec))
    if parallel < 1:
        raise ModelSpecError(f"model spec {spec!r}: parallel must be 1 or more, got {parallel}")
    draft = int(_number(params, "draft", DEFAULT_DRAFT, spec))
    if draft < 0:
        raise ModelSpecError(f"model spec {spec!r}: draft must be 0 or more, got {draft}")
    return {"n_ctx": n_ctx, "prefix_bytes": _prefix_bytes(params, spec), "parallel": parallel, "draft": draft}


def _reject_leftovers(params: dict[str, str], spec: str) -> None:
    if params:
        raise ModelSpecError(f"model spec {spec!r}: unknown option(s) {', '.join(sorted(params))}")


def _require(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ModelSpecError(f"{module} is not installed; run `pip install 'simulacra[{extra}]'`") from None


def build_backend(spec: str | BaseChatModel | Backend) -> Backend:
    """Build the backend a spec names (a Backend passes through), or raise ModelSpecError saying what to do instead."""
    if isinstance(spec, Backend):
        return spec
    if isinstance(spec, BaseChatModel):
        return LangChainBackend(spec, name=f"langchain:{type(spec).__name__}")
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"empty model spec; {SPEC_HELP}")
    spec = spec.strip()
    kind, sep, rest = spec.partition(":")
    if not sep:
        kind, params = _split_query(spec)
        rest = ""
    elif kind == "openai-compatible":
        url = urlsplit(rest)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        rest = urlunsplit((url.scheme, url.netloc, url.path, "", ""))
    else:
        rest, params = _split_query(rest)
    limit = int(_number(params, "concurrency", 0, spec))
    timeout = _number(params, "timeout", 0, spec)
    backend = _build(kind, rest, params, spec)
    _reject_leftovers(params, spec)
    if limit > 0:
        backend.max_in_flight = limit
    if timeout > 0:
        backend.timeout_s = timeout
    return backend


def _build(kind: str, rest: str, params: dict[str, str], spec: str) -> Backend:
    if kind == "fake":
        return FakeChatBackend(
            latency=_number(params, "latency", 0.0, spec),
            error_rate=_number(params, "error_rate", 0.0, spec),
            malformed_rate=_number(params, "malformed_rate", 0.0, spec),
            garbage_rate=_number(params, "garbage_rate", 0.0, spec),
            words=int(_number(params, "words", 0, spec)),
            context=int(_number(params, "context", 0, spec)),
        )
    if kind == "embedded":
        from agents.gateway.backends.gguf_assembly import EMBEDDED_MODELS, assembled_path
        from agents.gateway.backends.llamacpp import LlamaCppBackend

        chosen = EMBEDDED_MODELS.get(rest or "0.5b")
        if chosen is None:
            raise ModelSpecError(f"model spec {spec!r}: the embedded sizes are {', '.join(EMBEDDED_MODELS)}")
        return LlamaCppBackend(assembled_path(chosen), name=f"embedded:{chosen.name}", **_llama_options(params, spec))
    if kind == "llamacpp":
        from agents.gateway.backends.llamacpp import LlamaCppBackend

        if not rest:
            raise ModelSpecError(f"model spec {spec!r}: give the GGUF path, as llamacpp:/path/model.gguf")
        path = Path(rest).expanduser()
        return LlamaCppBackend(path, name=f"llamacpp:{path.name}", **_llama_options(params, spec))
    if kind == "openai":
        _require("langchain_openai", "openai")
        if not os.environ.get("OPENAI_API_KEY"):
            raise ModelSpecError("OPENAI_API_KEY is not set; export it, or use --model embedded to stay offline")
        if not rest:
            raise ModelSpecError(f"model spec {spec!r}: name the model, as openai:gpt-4o-mini")
        from langchain_openai import ChatOpenAI

        return LangChainBackend(ChatOpenAI(model=rest, max_retries=0), name=spec, structured_mode="json_schema")
    if kind == "openai-compatible":
        _require("langchain_openai", "openai")
        model = params.pop("model", "")
        if not rest.startswith(("http://", "https://")) or not model:
            raise ModelSpecError(f"model spec {spec!r}: write it as openai-compatible:http://HOST:PORT/v1?model=NAME")
        from langchain_openai import ChatOpenAI

        chat = ChatOpenAI(
            model=model, base_url=rest, api_key=os.environ.get("OPENAI_API_KEY", "not-needed"), max_retries=0
        )
        return LangChainBackend(chat, name=f"openai-compatible:{model}", structured_mode="json_object")
    if kind == "ollama":
        _require("langchain_ollama", "ollama")
        if not rest:
            raise ModelSpecError(f"model spec {spec!r}: name the model, as ollama:llama3.1")
        from langchain_ollama import ChatOllama

        return LangChainBackend(ChatOllama(model=rest), name=spec, structured_mode="ollama")
    raise ModelSpecError(f"unknown model spec {spec!r}; {SPEC_HELP}")
