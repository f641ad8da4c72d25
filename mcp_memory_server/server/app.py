"""Builds the MCP server: the enabled tool groups, resources, prompts and ``memory_stats``."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer

from .. import __version__
from ._search import load_model_after_handshake
from ._tools import ToolServer

if TYPE_CHECKING:
    from ..store import MemoryStore

GroupRegistrar = Callable[[MCPServer, "MemoryStore"], None]

# One entry per tool group: the module (in this package) whose register_tools adds its tools.
GROUPS: dict[str, str] = {
    "artifacts": "artifacts",
    "memory": "memory",
    "files": "files",
    "graph": "graph",
    "lab": "lab",
}

INSTRUCTIONS = """\
Durable memory for this agent, kept on the user's machine.
- memory_record / memory_recent / memory_last: log events and tool results; ask "what happened last?".
- memory_search (and query= on artifact_search / file_list): find past things by words and meaning.
- artifact_save / artifact_search / artifact_best: keep outputs (reports, checkpoints) and rank them by metric.
- file_read / file_write (with expected_sha) / file_list: notes, plans and profiles you reread and rewrite.
- graph_write / graph_query: typed graph memory (episodes, facts, patterns, persona) with lineage.
- memory_stats: what is stored and where.
Read the recall_context prompt at the start of a session and save_session_notes at the end."""


def build_server(store: MemoryStore) -> MCPServer:
    """An MCP server exposing ``store`` through the groups enabled in its config.

    The tools, resources and prompts are registered once ``initialize`` has been answered:
    their modules import the capabilities and their models, which the handshake never waits for.
    """
    server = ToolServer("mcp-memory-server", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    server.defer(lambda: _register_everything(server, store))
    load_model_after_handshake(server, store)
    return server


def _register_everything(server: ToolServer, store: MemoryStore) -> None:
    from . import prompts, resources

    modules = [GROUPS[group] for group in store.config.groups if group in GROUPS]
    for module in [*modules, "stats"]:  # memory_stats is served whichever groups are enabled
        registrar: GroupRegistrar = importlib.import_module(f".{module}", __package__).register_tools
        registrar(server, store)
    resources.register_resources(server, store)
    prompts.register_prompts(server)
