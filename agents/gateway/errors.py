"""Failures the gateway distinguishes: user mistakes, passing trouble, and exhausted attempts."""

from pathlib import Path

from memory.errors import InputError


class GatewayError(Exception):
    """Base for every error raised by the model gateway."""


class ModelSpecError(GatewayError, InputError):
    """The user asked for a model we cannot build (bad spec, missing key or package)."""


class TransientModelError(GatewayError):
    """A failure worth retrying: time-out, rate limit, dropped connection, server hiccup."""


class PermanentModelError(GatewayError):
    """A failure retrying cannot fix (bad credentials, unknown model, replay cache miss)."""


class ModelUnavailableError(GatewayError):
    """Every attempt failed and the caller gave no fallback."""


class ContextLimitError(ModelUnavailableError):
    """The prompt does not fit the model's context window; asking again with the same prompt cannot help."""


class ModelServerDownError(GatewayError):
    """The model server stopped answering (refused or dropped connections on every attempt).

    Not a ModelUnavailableError on purpose: no caller falls back from it, so a run stops at the tick
    it reached, with the log whole up to the tick before, instead of filling the log with fallbacks.
    `run_dir` names the run it stopped, once the runner knows it.
    """

    run_dir: Path | None = None
