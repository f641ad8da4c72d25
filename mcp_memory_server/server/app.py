"""Builds the MCP server: the enabled tool groups, resources, prompts and ``memory_stats``."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.mcpserver import MCPServer

from .. import __version__
from ..models import Stats
from ..store import MemoryStore
from . import artifacts, memory, prompts, resources
from . import files as files_tools
from . import graph as graph_tools
from . import lab as lab_tools
from ._search import load_model_after_handshake
from ._tools import ToolServer, register

GroupRegistrar = Callable[[MCPServer, MemoryStore], None]

# One entry per tool group; a new group adds its module's register_tools here.
GROUPS: dict[str, GroupRegistrar] = {
    "artifacts": artifacts.register_tools,
    "memory": memory.register_tools,
    "files": files_tools.register_tools,
    "graph": graph_tools.register_tools,
    "lab": lab_tools.register_tools,
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
    """An MCP server exposing ``store`` through the groups enabled in its config."""
    server = ToolServer("mcp-memory-server", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    for group in store.config.groups:
        registrar = GROUPS.get(group)
        if registrar is not None:
            registrar(server, store)

    @register(server, read_only=True, idempotent=True, title="Memory statistics")
    def memory_stats() -> Stats:
        """Counts, sizes, model status: what the store holds."""
        return store.stats()

    load_model_after_handshake(server, store)
    resources.register_resources(server, store)
    prompts.register_prompts(server)
    return server
