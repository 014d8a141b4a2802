"""The model gateway: one place every model call goes through."""

from agents.gateway.cache import CacheMode, RequestCache, copy_cache
from agents.gateway.errors import (
    ContextLimitError,
    GatewayError,
    ModelServerDownError,
    ModelSpecError,
    ModelUnavailableError,
    PermanentModelError,
    TransientModelError,
)
from agents.gateway.gateway import GatewayCounters, ModelGateway
from agents.gateway.records import (
    GatewayRecord,
    ModelCallRecord,
    ModelFallbackRecord,
    ModelRepairRecord,
    ModelRetryRecord,
)
from agents.gateway.scope import CallScope, RecordSink
from agents.gateway.specs import build_backend
from agents.gateway.types import ChatMessage, ModelReply, ModelRequest

__all__ = [
    "CacheMode", "ChatMessage", "ContextLimitError", "GatewayCounters", "GatewayError", "GatewayRecord", "ModelCallRecord",
    "ModelFallbackRecord", "ModelGateway", "ModelRepairRecord", "ModelReply", "ModelRequest", "ModelRetryRecord",
    "ModelServerDownError", "ModelSpecError", "ModelUnavailableError", "PermanentModelError", "RequestCache", "TransientModelError",
    "CallScope", "RecordSink", "build_backend", "copy_cache",
]
