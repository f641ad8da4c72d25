"""The five node types' fields, and turning incoming nodes and edges into checked rows.

Type fields follow ainl-memory (``EpisodicNode``, ``SemanticNode``, ``ProceduralNode``,
``PersonaNode``, ``RuntimeStateNode``). Fields this module does not know are kept as
given, so an ainl-memory snapshot survives a round trip; known fields are type-checked
and their defaults filled in. Legacy names are accepted on read (``last_extraction_turn``,
``persona_snapshot_json``, ``last_persona_prompt``) and written back under the current name.

Nodes come in our shape ``{id, agent_id, node_type, importance, payload, timestamp, edges}``
or in ainl-memory's (``node_type: {"type": …, …fields}``, ``importance_score``, embedded
``edges: [{target_id, label}]``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ...config import Config
from ...errors import InvalidInput
from ...ids import new_id, parse_timestamp, utc_now
from .. import _validate as check
from .records import GraphEdge, GraphNode, NodeType

__all__ = [
    "NODE_TYPES",
    "EdgeRow",
    "NodeRow",
    "check_agent_id",
    "check_label",
    "check_node_id",
    "node_text",
    "parse_edge",
    "parse_node",
    "runtime_state_id",
]

NODE_TYPES: tuple[NodeType, ...] = ("episode", "semantic", "procedural", "persona", "runtime_state")

_ULID_NODE_ID = re.compile(r"node_[0-9A-HJKMNP-TV-Z]{26}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Count = Annotated[int, Field(ge=0)]
Unit = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Number = Annotated[float, Field(allow_inf_nan=False)]
Names = list[Annotated[str, Field(max_length=1024)]]


def runtime_state_id(agent_id: str) -> str:
    """The runtime-state node id of an agent: UUIDv5 in the OID namespace, as ainl-memory derives it."""
    return str(uuid.uuid5(uuid.NAMESPACE_OID, agent_id))


def _epoch_seconds(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _rfc3339_from_epoch(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- type fields ---------------------------------------------------------------------------------


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class EpisodePayload(_Payload):
    """What happened in one agent turn."""

    turn_id: str = Field(default_factory=lambda: str(uuid.uuid4()), max_length=256)
    timestamp: int | None = Field(None, description="unix seconds; defaults to the node's timestamp")
    tool_calls: Names = []
    tools_invoked: Names = []
    user_message: str | None = None
    assistant_response: str | None = None
    outcome: str | None = Field(None, max_length=256, description="e.g. success, failure, partial")
    tags: Names = []
    conversation_id: str = Field("", max_length=256)
    follows_episode_id: str | None = None
    turn_index: Count = 0
    delegation_to: str | None = None
    persona_signals_emitted: Names = []
    sentiment: Literal["positive", "neutral", "negative", "mixed"] | None = None
    flagged: bool = False
    user_message_tokens: Count = 0
    assistant_response_tokens: Count = 0

    @field_validator("timestamp", mode="before")
    @classmethod
    def _timestamp(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _epoch_seconds(parse_timestamp(value, field="timestamp"))
        return value

    @field_validator("follows_episode_id")
    @classmethod
    def _follows(cls, value: str | None) -> str | None:
        return None if value in (None, "") else check_node_id(value, field="follows_episode_id")


class SemanticPayload(_Payload):
    """A fact the agent learned."""

    fact: str = Field(min_length=1)
    confidence: Unit = 0.7
    source_turn_id: str | None = Field(None, max_length=256)
    topic_cluster: str | None = Field(None, max_length=256)
    source_episode_id: str = ""
    contradiction_ids: Names = []
    last_referenced_at: Count = 0
    reference_count: Count = 0
    decay_eligible: bool = True
    tags: Names = []
    recurrence_count: Count = 0

    @field_validator("source_episode_id")
    @classmethod
    def _source(cls, value: str) -> str:
        return "" if value == "" else check_node_id(value, field="source_episode_id")


class ProceduralPayload(_Payload):
    """A reusable workflow pattern (and graph patch)."""

    pattern_name: str = Field(min_length=1, max_length=512)
    label: str = Field("", max_length=512)
    tool_sequence: Names = []
    trigger_conditions: Names = []
    procedure_type: Literal["tool_sequence", "response_pattern", "workflow_step", "behavioral_rule"] = "tool_sequence"
    success_count: Count = 0
    failure_count: Count = 0
    success_rate: Unit | None = Field(None, description="defaults to successes / runs (0.5 before any run)")
    retired: bool = False
    patch_version: Count = 0
    confidence: Unit | None = None
    fitness: Unit | None = None
    last_invoked_at: Count = 0
    reinforcement_episode_ids: Names = []
    suppression_episode_ids: Names = []
    declared_reads: Names = []

    @model_validator(mode="after")
    def _rate(self) -> ProceduralPayload:
        if self.success_rate is None:
            runs = self.success_count + self.failure_count
            self.success_rate = self.success_count / runs if runs else 0.5
        return self


class StrengthEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    delta: Number
    reason: str = ""
    episode_id: str = ""
    timestamp: Count = 0


class PersonaPayload(_Payload):
    """A trait of who the agent is, with how it evolved."""

    trait_name: str = Field(min_length=1, max_length=512)
    strength: Number
    layer: Literal["base", "delta", "injection"] = "base"
    source: Literal["system_default", "user_configured", "evolved", "feedback", "injection"] = "user_configured"
    strength_floor: Number = 0.0
    locked: bool = False
    relevance_score: Number = 0.0
    learned_from: Names = []
    provenance_episode_ids: Names = []
    evolution_log: list[StrengthEvent] = []
    axis_scores: dict[str, Number] = {}
    evolution_cycle: Count = 0
    last_evolved: str = ""
    agent_id: str = Field("", description="mirrors the node's agent_id")
    dominant_axes: Names = []


class RuntimeStatePayload(_Payload):
    """An agent's session counters; exactly one such node per agent."""

    agent_id: str
    turn_count: Count = 0
    last_extraction_at_turn: Count = Field(
        0, validation_alias=AliasChoices("last_extraction_at_turn", "last_extraction_turn")
    )
    persona_snapshot: str | None = Field(
        None, validation_alias=AliasChoices("persona_snapshot", "persona_snapshot_json", "last_persona_prompt")
    )
    updated_at: str = Field(default_factory=utc_now)

    @field_validator("updated_at", mode="before")
    @classmethod
    def _updated_at(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _rfc3339_from_epoch(value)  # ainl-runtime stores unix seconds
        if isinstance(value, str):
            return parse_timestamp(value, field="updated_at")
        return value


PAYLOAD_MODELS: dict[str, type[_Payload]] = {
    "episode": EpisodePayload,
    "semantic": SemanticPayload,
    "procedural": ProceduralPayload,
    "persona": PersonaPayload,
    "runtime_state": RuntimeStatePayload,
}


# -- checked rows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRow:
    id: str
    agent_id: str
    node_type: str
    importance: float
    payload: dict[str, Any]
    payload_json: str
    timestamp: str
    text: str

    def record(self) -> GraphNode:
        return GraphNode.model_validate(
            {"id": self.id, "agent_id": self.agent_id, "node_type": self.node_type, "importance": self.importance,
             "payload": self.payload, "timestamp": self.timestamp}
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class EdgeRow:
    from_id: str
    to_id: str
    label: str
    weight: float
    metadata: Any
    metadata_json: str | None
    where: str

    def record(self) -> GraphEdge:
        return GraphEdge(from_id=self.from_id, to_id=self.to_id, label=self.label, weight=self.weight,
                         metadata=self.metadata)  # fmt: skip


def check_node_id(value: object, *, field: str) -> str:
    """A node id: ``node_<ULID>`` as this server makes them, or a UUID (lower-cased) as ainl-memory does.

    Raises:
        InvalidInput: anything else.
    """
    if isinstance(value, str):
        if _ULID_NODE_ID.fullmatch(value):
            return value
        if _UUID.fullmatch(value):
            return value.lower()
    shown = value[:80] if isinstance(value, str) else value
    raise InvalidInput(
        f"{field}={shown!r} is not a node id; use node_ followed by 26 Crockford base32 characters "
        "(what graph_write generates when id is omitted) or a UUID such as 123e4567-e89b-12d3-a456-426614174000"
    )


def check_agent_id(value: object, *, field: str = "agent_id") -> str:
    """An agent id: ``""`` (the global graph) or 1-128 of ``A-Z a-z 0-9 . _ : @ + -``, starting alphanumeric."""
    if value == "":
        return ""
    if isinstance(value, str) and _AGENT_ID.fullmatch(value):
        return value
    shown = value[:80] if isinstance(value, str) else value
    raise InvalidInput(
        f'{field}={shown!r} is not an agent id; use "" for the global graph or up to 128 characters of '
        "letters, digits and . _ : @ + - starting with a letter or digit"
    )


def check_label(value: object, *, field: str) -> str:
    """An edge label: 1-128 printable characters, e.g. DERIVED_FROM."""
    if not isinstance(value, str) or not value.strip() or len(value) > 128 or _CONTROL.search(value):
        raise InvalidInput(f"{field} must be 1-128 printable characters, e.g. 'DERIVED_FROM', got {value!r}")
    return value


def _importance(value: object, *, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{field} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _payload_error(exc: ValidationError, *, where: str, node_type: str) -> InvalidInput:
    parts = []
    for error in exc.errors()[:5]:
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InvalidInput):  # our own checks already name the field
            parts.append(f"{where}.payload.{cause}")
            continue
        location = ".".join(str(part) for part in error["loc"])
        message = f"required for {node_type} nodes" if error["type"] == "missing" else error["msg"]
        parts.append(f"{where}.payload.{location}: {message}")
    more = len(exc.errors()) - len(parts)
    return InvalidInput("; ".join(parts) + (f" (and {more} more)" if more > 0 else ""))


_OUR_FIELDS = frozenset({"id", "agent_id", "node_type", "importance", "payload", "timestamp", "edges"})
_AINL_FIELDS = frozenset({"id", "agent_id", "node_type", "importance", "importance_score", "memory_category",
                          "timestamp", "edges"})  # fmt: skip


def parse_node(raw: object, *, where: str, default_agent: str, config: Config) -> tuple[NodeRow, list[EdgeRow]]:
    """Check one incoming node and its embedded edges.

    Raises:
        InvalidInput / LimitExceeded: what is wrong, naming ``where`` (e.g. ``nodes[3]``).
    """
    if isinstance(raw, GraphNode):
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object {{id?, agent_id?, node_type, importance?, payload, timestamp?}}")
    declared = raw.get("node_type")
    if isinstance(declared, Mapping):  # ainl-memory's shape: node_type = {"type": ..., **type fields}
        allowed = _AINL_FIELDS
        fields = dict(declared)
        node_type = fields.pop("type", None)
        nested = fields.get("runtime_state")
        payload: object = nested if node_type == "runtime_state" and isinstance(nested, Mapping) else fields
        importance: object = raw.get("importance", raw.get("importance_score", 0.5))
    else:
        allowed = _OUR_FIELDS
        node_type = declared
        payload = raw.get("payload", {})
        importance = raw.get("importance", 0.5)
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidInput(
            f"{where} has unknown field(s) {sorted(unknown)}; a node has id, agent_id, node_type, importance, "
            "payload (the type's fields), timestamp and edges"
        )
    if node_type not in NODE_TYPES:
        raise InvalidInput(f"{where}.node_type={node_type!r} is not a node type; use one of {', '.join(NODE_TYPES)}")
    if not isinstance(payload, Mapping):
        raise InvalidInput(f"{where}.payload must be an object of the {node_type} node's fields")
    payload = dict(payload)
    agent_raw = raw.get("agent_id")
    if agent_raw is None:
        agent_raw = payload.get("agent_id", default_agent) if node_type == "runtime_state" else default_agent
    agent_id = check_agent_id(agent_raw, field=f"{where}.agent_id")
    importance_value = _importance(importance, field=f"{where}.importance")
    timestamp = raw.get("timestamp")
    if timestamp is not None:
        if not isinstance(timestamp, str):
            raise InvalidInput(f"{where}.timestamp must be an RFC 3339 string, e.g. '2026-01-31T12:00:00Z'")
        timestamp = parse_timestamp(timestamp, field=f"{where}.timestamp")

    if node_type == "runtime_state":
        if not agent_id:
            raise InvalidInput(f"{where}: a runtime_state node belongs to one agent; give a non-empty agent_id")
        payload.setdefault("agent_id", agent_id)
    elif node_type == "persona":
        payload.setdefault("agent_id", agent_id)
    check.json_shape(payload, field=f"{where}.payload", config=config)
    try:
        model = PAYLOAD_MODELS[node_type].model_validate(payload)
    except ValidationError as exc:
        raise _payload_error(exc, where=where, node_type=node_type) from None
    except InvalidInput as exc:
        raise InvalidInput(f"{where}: {exc}") from None

    if isinstance(model, EpisodePayload):
        if model.timestamp is None:
            timestamp = timestamp or utc_now()
            model.timestamp = _epoch_seconds(timestamp)
        elif timestamp is None:
            timestamp = _rfc3339_from_epoch(model.timestamp)
    elif isinstance(model, RuntimeStatePayload):
        if model.agent_id != agent_id:
            raise InvalidInput(
                f"{where}.payload.agent_id={model.agent_id!r} differs from the node's agent_id={agent_id!r}; "
                "a runtime_state node describes its own agent"
            )
        timestamp = model.updated_at
    timestamp = timestamp or utc_now()

    node_id_raw = raw.get("id")
    if node_type == "runtime_state":
        expected = runtime_state_id(agent_id)
        if node_id_raw is not None and check_node_id(node_id_raw, field=f"{where}.id") != expected:
            raise InvalidInput(
                f"{where}.id must be {expected} for agent {agent_id!r}: runtime_state ids are "
                "UUIDv5(NAMESPACE_OID, agent_id); omit id to have it derived"
            )
        node_id = expected
    elif node_id_raw is None:
        node_id = new_id("node")
    else:
        node_id = check_node_id(node_id_raw, field=f"{where}.id")

    canonical = model.model_dump(mode="json")
    payload_json = check.json_value(canonical, field=f"{where}.payload", config=config)
    row = NodeRow(
        id=node_id, agent_id=agent_id, node_type=node_type, importance=importance_value,
        payload=json.loads(payload_json), payload_json=payload_json, timestamp=timestamp,
        text=node_text(node_type, canonical),
    )  # fmt: skip

    embedded = raw.get("edges") or []
    if isinstance(embedded, str | bytes) or not isinstance(embedded, Sequence):
        raise InvalidInput(f"{where}.edges must be a list of {{to_id, label, weight?, metadata?}}")
    edges = [
        parse_edge(edge, where=f"{where}.edges[{i}]", from_id=node_id, config=config) for i, edge in enumerate(embedded)
    ]
    return row, edges


_EDGE_NAMES = {"from_id": ("from_id", "source_id"), "to_id": ("to_id", "target_id"), "label": ("label", "edge_type")}


def parse_edge(raw: object, *, where: str, config: Config, from_id: str | None = None) -> EdgeRow:
    """Check one edge ``{from_id, to_id, label, weight?, metadata?}`` (or ainl's source_id/target_id/edge_type).

    ``from_id`` is given for edges embedded in a node, which may omit it.

    Raises:
        InvalidInput: a field is missing or malformed.
    """
    if isinstance(raw, BaseModel):
        raw = raw.model_dump()
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"{where} must be an object {{from_id, to_id, label, weight?, metadata?}}")
    known = {name for names in _EDGE_NAMES.values() for name in names} | {"weight", "metadata"}
    unknown = set(raw) - known
    if unknown:
        raise InvalidInput(f"{where} has unknown field(s) {sorted(unknown)}; an edge has from_id, to_id, label, "
                           "weight and metadata")  # fmt: skip
    values: dict[str, Any] = {}
    for name, spellings in _EDGE_NAMES.items():
        given = [raw[s] for s in spellings if s in raw]
        if len(given) > 1:
            raise InvalidInput(f"{where} gives both {spellings[0]} and {spellings[1]}; give one")
        values[name] = given[0] if given else None
    if from_id is not None:
        if values["from_id"] is not None and check_node_id(values["from_id"], field=f"{where}.from_id") != from_id:
            raise InvalidInput(f"{where}.from_id must be the node's own id ({from_id}) or omitted")
        values["from_id"] = from_id
    for name in ("from_id", "to_id", "label"):
        if values[name] is None:
            raise InvalidInput(f"{where}.{name} is required")
    weight = raw.get("weight", 1.0)
    if not check.finite_number(weight):
        raise InvalidInput(f"{where}.weight must be a finite number, got {weight!r}")
    metadata = raw.get("metadata")
    metadata_json = None if metadata is None else check.json_value(metadata, field=f"{where}.metadata", config=config)
    return EdgeRow(
        from_id=check_node_id(values["from_id"], field=f"{where}.from_id"),
        to_id=check_node_id(values["to_id"], field=f"{where}.to_id"),
        label=check_label(values["label"], field=f"{where}.label"),
        weight=float(weight),
        metadata=None if metadata_json is None else json.loads(metadata_json),
        metadata_json=metadata_json,
        where=where,
    )


def _strings(*values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and value:
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str) and v)
    return out


def node_text(node_type: str, payload: Mapping[str, Any]) -> str:
    """The searchable text of a node: the type fields a person would search by."""
    p = payload
    if node_type == "episode":
        parts = _strings(p.get("user_message"), p.get("assistant_response"), p.get("outcome"),
                         p.get("tools_invoked"), p.get("tool_calls"), p.get("tags"))  # fmt: skip
    elif node_type == "semantic":
        parts = _strings(p.get("fact"), p.get("topic_cluster"), p.get("tags"))
    elif node_type == "procedural":
        parts = _strings(p.get("pattern_name"), p.get("label"), p.get("tool_sequence"), p.get("trigger_conditions"))
    elif node_type == "persona":
        parts = _strings(p.get("trait_name"), p.get("dominant_axes"))
    else:
        parts = _strings(p.get("persona_snapshot"))
    return "\n".join(dict.fromkeys(parts))
