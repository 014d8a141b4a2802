"""Concrete model backends behind the gateway's one interface."""

from agents.gateway.backends.base import Backend

__all__ = ["Backend"]
