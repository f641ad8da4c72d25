"""Typed graph memory (ainl-memory's unified graph): episodes, facts, patterns, persona, runtime state.

The public surface is :class:`GraphMemory` (``MemoryStore.graph``) and the records it returns.
"""

from .memory import LINEAGE_LABELS, MAX_LINEAGE_DEPTH, QUERY_OPS, GraphMemory
from .nodes import NODE_TYPES, runtime_state_id
from .records import (
    SNAPSHOT_SCHEMA_VERSION,
    GraphEdge,
    GraphExportResult,
    GraphImportReport,
    GraphNode,
    GraphQueryResult,
    GraphSnapshot,
    GraphValidationReport,
    GraphWriteResult,
    NodeType,
    RuntimeState,
    SnapshotEdge,
)

__all__ = [
    "LINEAGE_LABELS",
    "MAX_LINEAGE_DEPTH",
    "NODE_TYPES",
    "QUERY_OPS",
    "SNAPSHOT_SCHEMA_VERSION",
    "GraphEdge",
    "GraphExportResult",
    "GraphImportReport",
    "GraphMemory",
    "GraphNode",
    "GraphQueryResult",
    "GraphSnapshot",
    "GraphValidationReport",
    "GraphWriteResult",
    "NodeType",
    "RuntimeState",
    "SnapshotEdge",
    "runtime_state_id",
]
