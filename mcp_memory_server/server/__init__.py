"""MCP wiring: one module per tool group, each tool a thin adapter over the core."""

from .app import GROUPS, build_server

__all__ = ["GROUPS", "build_server"]
