"""Any langchain-core chat model (OpenAI, Ollama, OpenAI-compatible servers, user instances)."""

from __future__ import annotations

from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agents.gateway.backends.base import Backend
from agents.gateway.types import ChatMessage, ModelReply, ModelRequest, joined_system_turns

#: How a backend is asked for JSON: OpenAI's json_schema, a server's json_object+schema
#: (llama.cpp, vLLM), Ollama's `format`, or only the instruction in the prompt.
StructuredMode = Literal["json_schema", "json_object", "ollama", "prompt"]

_ROLE_TO_MESSAGE = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_langchain(messages: list[ChatMessage]) -> list[BaseMessage]:
    return [_ROLE_TO_MESSAGE[m.role](content=m.content) for m in messages]


class LangChainBackend(Backend):
    """Adapts a BaseChatModel; sampling and structure are passed the way each provider expects."""

    def __init__(
        self,
        model: BaseChatModel,
        name: str,
        structured_mode: StructuredMode = "prompt",
        max_in_flight: int = 4,
        timeout_s: float = 120.0,
    ) -> None:
        self.model = model
        self.name = name
        self.structured_mode = structured_mode
        self.enforces_schema = structured_mode != "prompt"
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s

    def _call_kwargs(self, request: ModelRequest) -> dict[str, Any]:
        schema = request.json_schema
        if self.structured_mode in ("json_schema", "json_object"):
            kwargs: dict[str, Any] = {
                "temperature": request.temperature,
                "max_tokens": request.max_tokens,
                "seed": request.seed,
            }
            if schema is not None and self.structured_mode == "json_schema":
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": schema.get("title", "answer"), "schema": schema, "strict": False},
                }
            elif schema is not None:
                # Servers such as llama.cpp's reject json_schema but constrain json_object to a schema.
                kwargs["extra_body"] = {"response_format": {"type": "json_object", "schema": schema}}
            return kwargs
        if self.structured_mode == "ollama":
            options = {"temperature": request.temperature, "seed": request.seed, "num_predict": request.max_tokens}
            return {"options": options, **({"format": schema} if schema is not None else {})}
        return {}

    async def generate(self, request: ModelRequest) -> ModelReply:
        # One system turn: some servers' chat templates refuse a second (prefix caching still sees the same text).
        message = await self.model.ainvoke(to_langchain(joined_system_turns(request.messages)),
                                           **self._call_kwargs(request))
        content = message.content if isinstance(message.content, str) else str(message.content)
        usage = getattr(message, "usage_metadata", None) or {}
        return ModelReply(
            text=content,
            prompt_tokens=usage.get("input_tokens", 0),
            completion_tokens=usage.get("output_tokens", 0),
        )
