"""The openai-compatible backend against a real llama.cpp server (the embedded GGUF on loopback)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agents.gateway import (
    CallScope,
    ChatMessage,
    ModelGateway,
    ModelRequest,
    build_backend,
)
from agents.gateway.backends.gguf_assembly import assembled_path
from agents.gateway.records import GatewayRecord
from tests.conftest import model_calls, rate_strawberry

# One event loop for the module: langchain-openai caches its async HTTP client per base URL for the
# whole process, so a second per-test loop would meet a client bound to a closed one.
pytestmark = [pytest.mark.model, pytest.mark.asyncio(loop_scope="module")]

STARTUP_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` on a free loopback port, up until the module ends."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(assembled_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", str(os.cpu_count() or 1),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        with httpx.Client(trust_env=False, timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{_tail(log)}")
                try:
                    if client.get(f"{base}/models").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server not ready after {STARTUP_TIMEOUT_S:.0f} s:\n{_tail(log)}")
                time.sleep(0.25)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def gateway(server_url: str) -> ModelGateway:
    # One attempt: a failure against a local server is a bug to see, not a blip to retry.
    return ModelGateway(build_backend(f"openai-compatible:{server_url}?model=local"), max_attempts=1)


async def test_text_reply_with_usage(gateway: ModelGateway) -> None:
    records: list[GatewayRecord] = []
    messages = [
        ChatMessage(role="system", content="You are Bob, a quiet bicycle mechanic. Answer in one short sentence."),
        ChatMessage(role="user", content="Hi Bob, can you fix my flat tyre today?"),
    ]
    text = await gateway.complete(
        messages, purpose="chat", temperature=0.7, max_tokens=32, scope=CallScope("Bob", 5, records.append)
    )
    assert text.strip()
    (call,) = model_calls(records)
    assert call.model == "openai-compatible:local"
    assert call.response == text
    assert call.prompt_tokens > 0
    assert 0 < call.completion_tokens <= 32


async def test_structured_reply_parses(gateway: ModelGateway) -> None:
    verdict, records = await rate_strawberry(gateway, "Ann")
    assert 1 <= verdict.score <= 10 and verdict.label.strip()
    calls = model_calls(records)
    assert calls and all(c.structured == "Verdict" and c.completion_tokens > 0 for c in calls)
    assert all(r.kind != "model_fallback" for r in records)


async def test_server_constrains_output_to_the_schema(gateway: ModelGateway) -> None:
    """The schema must reach the server: a prompt that says nothing of JSON still yields the schema's object."""
    schema = {
        "type": "object",
        "properties": {
            "colour": {"type": "string", "enum": ["mauve", "teal"]},
            "zebra_count": {"type": "integer"},
        },
        "required": ["colour", "zebra_count"],
    }
    request = ModelRequest(
        model=gateway.model_name,
        messages=[ChatMessage(role="user", content="Write a haiku about the sea.")],
        temperature=0.0,
        max_tokens=40,
        seed=1,
        json_schema=schema,
    )
    reply = await gateway.backend.generate(request)
    value = json.loads(reply.text)
    assert set(value) == {"colour", "zebra_count"}
    assert value["colour"] in ("mauve", "teal")
    assert isinstance(value["zebra_count"], int)
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0
