"""Parameters shared by several tools, each described once in a few words (the model reads them every turn)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

Tags = Annotated[list[str] | None, Field(description="tags; filters need all")]
Kinds = Annotated[list[str] | None, Field(description="only these kinds")]
Topic = Annotated[str | None, Field(description="thread name, e.g. a task")]
Metrics = Annotated[dict[str, float] | None, Field(description="named numbers, e.g. {loss: 0.3}")]
Timestamp = Annotated[str | None, Field(description="RFC 3339 time")]
GraphId = Annotated[str | None, Field(description="graph (agent) id")]
NodeId = Annotated[str | None, Field(description="graph node id")]
Scope = Annotated[
    Literal["all", "run", "graph", "node"],
    Field(description="run: this run's; graph/node: by graph_id/node_id"),
]
Limit = Annotated[int, Field(description="page size")]
Cursor = Annotated[str | None, Field(description="next_cursor of the last page")]
# core.search.SOURCES, spelled out so the schema lists them (tests/test_lab_search.py checks they agree).
Sources = Annotated[
    list[Literal["events", "artifacts", "files", "graph", "lab"]] | None, Field(description="default events")
]
SearchMode = Annotated[
    Literal["hybrid", "semantic", "lexical"],
    Field(description="hybrid: words+meaning; lexical never waits for the model"),
]
ArtifactId = Annotated[str | None, Field(description="its id (or uri)")]
Uri = Annotated[str | None, Field(description="cas://sha256/<hex> (or artifact_id)")]
