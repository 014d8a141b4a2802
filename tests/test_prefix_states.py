"""Kept prompt prefixes (bounded by bytes, least recently used out first) and one system turn for strict servers."""

from __future__ import annotations

import pytest

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from agents.gateway import ChatMessage, build_backend
from agents.gateway.backends.prefix_states import PrefixStates
from agents.gateway.errors import ModelSpecError
from agents.gateway.types import ModelRequest, joined_system_turns


def test_the_oldest_unused_prefix_goes_first_when_the_bytes_run_out():
    states = PrefixStates(max_bytes=10)
    states.put((1,), b"aaaa")
    states.put((2,), b"bbbb")
    assert states.get((1,)) == b"aaaa"  # (1,) is now the most recently used
    states.put((3,), b"cccc")
    assert states.get((2,)) is None and states.get((1,)) == b"aaaa" and states.get((3,)) == b"cccc"
    assert states.counters.model_dump() == {"hits": 3, "misses": 1, "evictions": 1, "bytes": 8}


def test_a_state_bigger_than_the_bound_is_not_kept_and_evicts_nothing():
    states = PrefixStates(max_bytes=4)
    states.put((1,), b"aaaa")
    states.put((2,), b"bbbbb")
    assert states.get((2,)) is None and states.get((1,)) == b"aaaa"
    assert states.counters.evictions == 0 and states.counters.bytes == 4


def test_prefix_megabytes_in_a_spec_must_not_be_negative():
    with pytest.raises(ModelSpecError, match="prefix_mb must be 0 or more"):
        build_backend("llamacpp:/no/such/model.gguf?prefix_mb=-1")


def test_keeping_the_same_prefix_twice_counts_its_bytes_once():
    states = PrefixStates(max_bytes=10)
    states.put((1,), b"aaaa")
    states.put((1,), b"aaaa")
    assert states.counters.bytes == 4


def test_leading_system_turns_are_joined_in_order_and_the_rest_kept():
    turns = [ChatMessage(role="system", content="Who you are."), ChatMessage(role="system", content="It is 9:00."),
             ChatMessage(role="user", content="Hi!"), ChatMessage(role="system", content="later")]
    assert joined_system_turns(turns) == [ChatMessage(role="system", content="Who you are.\n\nIt is 9:00."), *turns[2:]]
    assert joined_system_turns(turns[1:]) == turns[1:]


async def test_a_langchain_model_gets_one_system_turn():
    seen: list[list[BaseMessage]] = []

    class Recording(BaseChatModel):
        """Answers "ok" and keeps what it was sent."""

        @property
        def _llm_type(self) -> str:
            return "recording"

        def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
            seen.append(messages)
            return ChatResult(generations=[ChatGeneration(message=AIMessage(content="ok"))])

    request = ModelRequest(model="m", messages=[ChatMessage(role="system", content="A"),
                                                ChatMessage(role="system", content="B"),
                                                ChatMessage(role="user", content="C")])
    reply = await build_backend(Recording()).generate(request)
    assert reply.text == "ok"
    assert [(type(m).__name__, m.content) for m in seen[0]] == [("SystemMessage", "A\n\nB"), ("HumanMessage", "C")]


def test_parallel_sequences_in_a_spec_must_be_at_least_one():
    with pytest.raises(ModelSpecError, match="parallel must be 1 or more"):
        build_backend("llamacpp:/no/such/model.gguf?parallel=0")


def test_a_schemas_grammar_keeps_its_fields_in_the_schemas_order():
    """The model writes the line before deciding to end the talk, as the prompt shows them, not A to Z."""
    pytest.importorskip("llama_cpp")
    from agents.gateway.backends.llamacpp import grammar_for

    schema = {"type": "object", "properties": {"line": {"type": "string"}, "end_conversation": {"type": "boolean"}},
              "required": ["line", "end_conversation"]}
    root = next(rule for rule in grammar_for(schema).splitlines() if rule.startswith("root ::="))
    assert root.index("line") < root.index("end-conversation"), root
