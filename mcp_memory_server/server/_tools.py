"""How tools are registered, published and called: lean schemas, strict arguments, lean answers.

Every byte of a tool definition or result is paid for in the agent's context on every turn,
so this layer (the one place that does it, for every tool):

- registers the tools themselves only after ``initialize`` is answered (:meth:`ToolServer.defer`),
  so a client's handshake never waits for the capabilities' imports;
- builds all schemas in one pydantic pass, the first time a client lists or calls tools,
  and strips what carries no information:
  titles, ``anyOf [T, null]`` wrappers, ``default: null``; nested models stay shared ``$defs``;
- refuses unknown arguments by name and explains invalid ones in the project's words;
- sends each result once: ``structuredContent`` without null, empty or default-valued
  fields, and the same object as one line of compact JSON text for clients that only read text.

Anticipated errors (``MemoryServerError``) become tool errors with their message intact;
anything else is logged by the SDK and answered with a generic error.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, get_type_hints

import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.helper_types import ReadResourceContents
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.mcpserver.utilities.context_injection import find_context_parameter
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata, func_metadata
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolResult,
    GetPromptResult,
    InputRequiredResult,
    TextContent,
    ToolAnnotations,
)
from mcp_types import Prompt as MCPPrompt
from mcp_types import Resource as MCPResource
from mcp_types import ResourceTemplate as MCPResourceTemplate
from mcp_types import Tool as MCPTool
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import PydanticUndefined

from ..errors import MemoryServerError

__all__ = ["ToolServer", "exactly_one", "keep_defaults", "lean_dump", "register", "register_dict_defaults"]

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)

# What a client sends before it needs the tools: the handshake of either protocol generation.
_HANDSHAKE = frozenset({"initialize", "server/discover"})


@dataclass
class _Spec:
    """A registered tool; its schemas and argument model are built later, with all the others."""

    fn: Callable[..., Any]
    name: str
    title: str | None
    description: str
    annotations: ToolAnnotations
    context_kwarg: str | None = None
    meta: FuncMetadata | None = None
    output: type[BaseModel] | None = None
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] | None = None
    parameters: tuple[str, ...] = ()


class ToolServer(MCPServer):
    """An ``MCPServer`` whose tools come from :func:`register`: built lazily, published lean, called strictly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._specs: dict[str, _Spec] = {}
        self._published: list[MCPTool] | None = None
        self._deferred: list[Callable[[], None]] = []
        self._registration_failed: MCPError | None = None
        self.middleware.append(self._register_after_handshake)

    def defer(self, registration: Callable[[], None]) -> None:
        """Run ``registration`` (which adds tools, resources or prompts) once ``initialize`` is answered.

        It runs before the first other message (normally the ``notifications/initialized``
        that follows the handshake), so every list, call or read sees the whole server.
        """
        self._deferred.append(registration)

    def complete_registration(self) -> None:
        """Run what was deferred, once. A failure is never half-served: every later request gets it."""
        if self._registration_failed is not None:
            raise self._registration_failed
        while self._deferred:
            try:
                self._deferred[0]()
            except Exception as exc:
                logger.exception("registering the tools, resources and prompts failed")
                self._registration_failed = MCPError(
                    code=INTERNAL_ERROR,
                    message=f"the server could not register its tools ({type(exc).__name__}: {exc}); "
                    "its log has the details: fix the cause and restart it",
                )
                raise self._registration_failed from exc
            self._deferred.pop(0)

    async def _register_after_handshake(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if ctx.method not in _HANDSHAKE:
            self.complete_registration()
        return await call_next(ctx)

    # The middleware covers every message a client sends; these cover code that calls the server directly.

    async def list_resources(self) -> list[MCPResource]:
        self.complete_registration()
        return await super().list_resources()

    async def list_resource_templates(self) -> list[MCPResourceTemplate]:
        self.complete_registration()
        return await super().list_resource_templates()

    async def read_resource(
        self, uri: Any, context: Context[Any, Any] | None = None
    ) -> Iterable[ReadResourceContents] | InputRequiredResult:
        self.complete_registration()
        return await super().read_resource(uri, context)

    async def list_prompts(self) -> list[MCPPrompt]:
        self.complete_registration()
        return await super().list_prompts()

    def add_spec(self, spec: _Spec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"tool {spec.name} is registered twice")
        self._specs[spec.name] = spec
        self._published = None

    def _catalog(self) -> list[MCPTool]:
        self.complete_registration()
        if self._published is None:
            _build_schemas(list(self._specs.values()))
            self._published = [
                MCPTool(
                    name=spec.name,
                    title=spec.title,
                    description=spec.description,
                    input_schema=spec.input_schema,
                    output_schema=spec.output_schema,
                    annotations=spec.annotations,
                )
                for spec in self._specs.values()
            ]
        return self._published

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[Any, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        """A prompt, after checking its arguments: a clear invalid-params error instead of an internal one."""
        self.complete_registration()
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            names = ", ".join(sorted(p.name for p in self._prompt_manager.list_prompts()))
            raise MCPError(code=INVALID_PARAMS, message=f"there is no prompt {name!r}; the prompts are: {names}")
        declared = prompt.arguments or []
        valid = [a.name for a in declared]
        given = arguments or {}
        unknown = sorted(set(given) - set(valid))
        missing = [a.name for a in declared if a.required and not str(given.get(a.name) or "").strip()]
        problems = []
        if missing:
            problems.append("missing required argument " + ", ".join(repr(m) for m in missing))
        if unknown:
            problems.append("unknown argument " + ", ".join(repr(u) for u in unknown))
        if problems:
            described = "; ".join(f"{a.name}{' (required)' if a.required else ''}: {a.description}" for a in declared)
            raise MCPError(
                code=INVALID_PARAMS,
                message=f"prompt {name}: {' and '.join(problems)}; its arguments are {described or 'none'}",
            )
        return await super().get_prompt(name, arguments, context)

    async def list_tools(self) -> list[MCPTool]:
        return list(self._catalog())

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> CallToolResult:
        self._catalog()
        spec = self._specs.get(name)
        if spec is None:
            raise ToolError(f"there is no tool {name!r}; the tools are: {', '.join(sorted(self._specs))}")
        kwargs = _validate(spec, arguments)
        binding = _bind_cursor(name, kwargs) if "cursor" in spec.parameters else None
        if spec.context_kwarg is not None:
            kwargs[spec.context_kwarg] = (
                context if context is not None else Context(mcp_server=self, subscriptions=self._subscriptions)
            )
        try:
            if inspect.iscoroutinefunction(spec.fn):
                result = await spec.fn(**kwargs)
            else:
                result = await anyio.to_thread.run_sync(functools.partial(spec.fn, **kwargs))
        except MemoryServerError as exc:
            raise ToolError(str(exc)) from None
        except ToolError:
            raise
        except Exception as exc:
            # A crash: its text (maybe the caller's data) stays in the server log.
            raise UnexpectedToolError(f"Error executing tool {name}") from exc
        structured = lean_dump(result)
        if binding is not None and structured.get("next_cursor"):
            structured["next_cursor"] = f"{structured['next_cursor']}.{binding}"
        text = json.dumps(structured, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def _bind_cursor(name: str, kwargs: dict[str, Any]) -> str:
    """Tie a tool's cursors to the call that issued them; unwrap ``kwargs["cursor"]`` in place.

    A cursor is a position in one listing: given to another tool, or with another query,
    namespace or filter, it would silently skip or return nothing. So each ``next_cursor``
    carries a tag of the tool and its arguments (all but ``cursor`` and ``limit``), and a
    cursor whose tag differs is refused. Returns the tag.
    """
    same = {key: value for key, value in kwargs.items() if key not in ("cursor", "limit")}
    fingerprint = json.dumps([name, same], sort_keys=True, default=str, ensure_ascii=False)
    tag = hashlib.sha256(fingerprint.encode()).hexdigest()[:10]
    cursor = kwargs.get("cursor")
    if cursor:
        position, _, given = str(cursor).rpartition(".")
        if not position:
            raise ToolError(f"cursor {str(cursor)[:40]!r} is not a cursor this server issued; pass next_cursor "
                            "from the last page")  # fmt: skip
        if given != tag:
            raise ToolError(
                f"this cursor came from another {name} call or another tool: a cursor continues the call "
                "that returned it, with the same arguments (only limit may change); omit cursor to start over"
            )
        kwargs["cursor"] = position
    return tag


def register(
    server: MCPServer,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    title: str | None = None,
) -> Callable[[F], F]:
    """Register ``fn`` as a tool named after it; its docstring is the description, its parameters the input.

    Registration only records the function; nothing is introspected until a client asks.
    """
    if not isinstance(server, ToolServer):
        raise TypeError("tools are registered on the ToolServer built by build_server")

    def decorator(fn: F) -> F:
        server.add_spec(
            _Spec(
                fn=fn,
                name=fn.__name__,
                title=title,
                description=inspect.getdoc(fn) or "",
                annotations=_annotations(read_only=read_only, destructive=destructive, idempotent=idempotent),
            )
        )
        return fn

    return decorator


def _annotations(*, read_only: bool, destructive: bool, idempotent: bool) -> ToolAnnotations:
    """All four hints, explicitly: a client that misreads a missing hint's default must not guess wrong."""
    return ToolAnnotations(
        read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=False
    )


def exactly_one(**sources: object) -> str:
    """The name of the one argument given among ``sources``.

    Raises:
        ToolError: none or several were given.
    """
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(sources)
        # a JSON null reads as an argument left out; "json": null means the JSON value null only in the library
        unset = (
            '; a null value counts as not given (to store the JSON value null, send text "null")'
            if not given and "json" in sources
            else ""
        )
        raise ToolError(f"give exactly one of {names} (got {', '.join(given) or 'none'}){unset}")
    return given[0]


# -- schemas -----------------------------------------------------------------------------------


def _build_schemas(specs: list[_Spec]) -> None:
    """Argument models, then every input and output schema in one pass, so shared models are built once."""
    inputs: list[Any] = []
    for spec in specs:
        if spec.meta is not None:
            continue
        spec.context_kwarg = find_context_parameter(spec.fn)
        skip = [spec.context_kwarg] if spec.context_kwarg else []
        spec.meta = func_metadata(spec.fn, skip_names=skip, structured_output=False)
        spec.parameters = tuple(f.alias or n for n, f in spec.meta.arg_model.model_fields.items())
        output = get_type_hints(spec.fn).get("return")
        if not (isinstance(output, type) and issubclass(output, BaseModel)):
            raise TypeError(f"tool {spec.name} must return a pydantic model, not {output!r}")
        spec.output = output
        inputs.append(((spec.name, "in"), "validation", spec.meta.arg_model.__pydantic_core_schema__))
        inputs.append(((spec.name, "out"), "validation", output.__pydantic_core_schema__))
    if not inputs:
        return
    roots, definitions = GenerateJsonSchema(by_alias=True).generate_definitions(inputs)
    defs: dict[str, Any] = {name: _lean(schema, output=False) for name, schema in definitions.items()}
    # Output schemas are for validating clients, not read by the model: shapes only, no prose.
    out_defs: dict[str, Any] = {
        name: _without_descriptions(_lean(schema, output=True)) for name, schema in definitions.items()
    }
    for spec in specs:
        if (spec.name, "in") not in {key for key, _ in roots}:
            continue
        spec.input_schema = _inline(roots[((spec.name, "in"), "validation")], defs, ())
        spec.input_schema.pop("description", None)  # the tool's own description says it
        spec.output_schema = _standalone(roots[((spec.name, "out"), "validation")], out_defs)


_NULL = {"type": "null"}


def _lean(schema: Any, *, output: bool) -> Any:
    """``schema`` without titles, ``[T, null]`` unions or null defaults; for outputs, omitted fields not required."""
    if isinstance(schema, list):
        return [_lean(item, output=output) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or (output and value in ([], {}))):
            continue
        if (key == "additionalProperties" and value is True) or (key == "items" and value == {}):
            continue  # what JSON Schema assumes anyway
        if key in ("properties", "$defs", "definitions", "patternProperties"):
            out[key] = {name: _lean(sub, output=output) for name, sub in value.items()}
        else:
            out[key] = _lean(value, output=output)
    options = out.get("anyOf")
    if isinstance(options, list) and options and all(isinstance(o, dict) and o.keys() == {"type"} for o in options):
        # anyOf of bare types is a type list; "integer" adds nothing next to "number".
        types = [o["type"] for o in options]
        if "number" in types:
            types = [t for t in types if t != "integer"]
        del out["anyOf"]
        if _NULL["type"] in types:
            types.remove(_NULL["type"])
            out["x-nullable"] = True
        out["type"] = types[0] if len(types) == 1 else types
        options = None
    if isinstance(options, list) and _NULL in options:
        rest = [o for o in options if o != _NULL]
        del out["anyOf"]
        if len(rest) == 1:
            out = {**rest[0], **out}
        else:
            out["anyOf"] = rest
        out["x-nullable"] = True  # a marker for the parent's `required`, removed there
    if output and isinstance(out.get("enum"), list) and all(isinstance(v, str) for v in out["enum"]):
        out.pop("type", None)  # the values say it (input schemas keep it for clients that insist)
    properties = out.get("properties")
    if isinstance(properties, dict):
        nullable = {name for name, sub in properties.items() if isinstance(sub, dict) and sub.pop("x-nullable", 0)}
        if output and "required" in out:
            # Null fields are omitted from answers, so a nullable field is never required there.
            out["required"] = [name for name in out["required"] if name not in nullable]
            if not out["required"]:
                del out["required"]
    return out


def _without_descriptions(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_without_descriptions(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    return {
        key: {n: _without_descriptions(sub) for n, sub in value.items()}
        if key in ("properties", "$defs")
        else _without_descriptions(value)
        for key, value in schema.items()
        if not (key == "description" and isinstance(value, str))
    }


def _inline(schema: Any, defs: Mapping[str, Any], stack: tuple[str, ...]) -> Any:
    """An input schema with its nested models written in place (they are small, and read by the model)."""
    if isinstance(schema, list):
        return [_inline(item, defs, stack) for item in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.removeprefix("#/$defs/")
        if name in stack:
            raise TypeError(f"tool arguments may not be recursive ({name})")
        target = {k: v for k, v in defs[name].items() if k not in ("description", "x-nullable")}
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        return {**_inline(target, defs, (*stack, name)), **siblings}
    return {key: _inline(value, defs, stack) for key, value in schema.items()}


def _standalone(root: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """The schema of one tool: its root inlined, with only the ``$defs`` it refers to."""
    ref = root.get("$ref", "")
    schema = dict(defs[ref.removeprefix("#/$defs/")]) if ref else dict(root)
    schema.pop("x-nullable", None)
    needed: dict[str, Any] = {}
    pending = _refs(schema)
    while pending:
        name = pending.pop()
        if name not in needed:
            needed[name] = defs[name]
            pending |= _refs(defs[name])
    if needed:
        # A shared definition is reached only through a $ref and its "properties" already
        # describe an object; "type": "object" there costs 16 characters per definition on
        # every turn and would only catch an answer that is not an object, which ours never is.
        schema["$defs"] = {name: _untyped_object(needed[name]) for name in sorted(needed)}
    return schema


def _untyped_object(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") == "object" and "properties" in schema:
        return {key: value for key, value in schema.items() if key != "type"}
    return schema


def _refs(schema: Any) -> set[str]:
    if isinstance(schema, dict):
        found = {schema["$ref"].removeprefix("#/$defs/")} if isinstance(schema.get("$ref"), str) else set()
        for value in schema.values():
            found |= _refs(value)
        return found
    if isinstance(schema, list):
        return set().union(*(_refs(item) for item in schema)) if schema else set()
    return set()


# -- arguments ---------------------------------------------------------------------------------


def _validate(spec: _Spec, arguments: dict[str, Any]) -> dict[str, Any]:
    assert spec.meta is not None
    unknown = [name for name in arguments if name not in spec.parameters]
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, spec.parameters, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ToolError(
            f"{spec.name} has no parameter {', '.join(hints)}; "
            f"its parameters are: {', '.join(spec.parameters) or 'none'}"
        )
    parsed = spec.meta.pre_parse_json(arguments)
    properties = spec.input_schema.get("properties", {})
    for name, value in parsed.items():
        flagged = _bool_as_number(value, properties.get(name, {}), name)
        if flagged is not None:
            where, given = flagged
            raise ToolError(f"invalid arguments for {spec.name}: {where} must be a number, got {_show(given)}")
    try:
        model = spec.meta.arg_model.model_validate(parsed)
    except ValidationError as exc:
        raise ToolError(_explain(spec, exc)) from None
    return model.model_dump_one_level()


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    found = {kind} if isinstance(kind, str) else set(kind or ())
    for branch in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
        found |= _types(branch)
    return found


def _branch(schema: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """The part of ``schema`` (itself or one of its union's branches) that describes values of JSON type ``kind``."""
    for branch in (schema, *schema.get("anyOf", ()), *schema.get("oneOf", ())):
        if kind in _types(branch) and "anyOf" not in branch and "oneOf" not in branch:
            found: Mapping[str, Any] = branch
            return found
    return {}


def _bool_as_number(value: Any, schema: Mapping[str, Any], where: str) -> tuple[str, Any] | None:
    """Where ``value`` holds true/false in a place whose schema asks for a number (and the value), if anywhere.

    pydantic's lax mode reads true as 1, so ``limit=true`` would quietly mean one hit and
    ``{"loss": true}`` a metric of 1.0: refuse it as the wrong type it is.
    """
    if not schema:
        return None  # free-form below here (a payload, data): nothing asks for a number
    if isinstance(value, bool):
        types = _types(schema)
        return (where, value) if types & {"integer", "number"} and "boolean" not in types else None
    if isinstance(value, dict):
        shape = _branch(schema, "object")
        fields, extra = shape.get("properties", {}), shape.get("additionalProperties")
        for key, item in value.items():
            sub = fields.get(key, extra if isinstance(extra, dict) else {})
            if (found := _bool_as_number(item, sub, f"{where}.{key}")) is not None:
                return found
    elif isinstance(value, list):
        items = _branch(schema, "array").get("items", {})
        for i, item in enumerate(value):
            if (found := _bool_as_number(item, items if isinstance(items, dict) else {}, f"{where}[{i}]")) is not None:
                return found
    return None


_EXPECTED = {
    "string": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "list": "a list",
    "tuple": "a list",
    "dict": "an object",
    "model": "an object",
    "model_attributes": "an object",
}


def _explain(spec: _Spec, exc: ValidationError) -> str:
    """Pydantic's errors in our words: which parameter, what was wrong, what to send (no library URLs)."""
    problems = []
    properties = spec.input_schema.get("properties", {})
    for error in exc.errors(include_url=False)[:5]:
        loc = [str(part) for part in error["loc"]]
        where = ".".join(loc) or "arguments"
        kind = error["type"]
        given = error.get("input")
        if kind == "missing":
            problem = f"{where} is required"
        elif kind == "literal_error":
            problem = f"{where} must be one of {error.get('ctx', {}).get('expected', '')}, got {_show(given)}"
        elif kind.endswith(("_type", "_parsing")) and kind.rsplit("_", 1)[0] in _EXPECTED:
            problem = f"{where} must be {_EXPECTED[kind.rsplit('_', 1)[0]]}, got {_show(given)}"
        elif kind == "extra_forbidden":
            problem = f"{where} is not a known field"
        else:
            problem = f"{where}: {error['msg'][0].lower()}{error['msg'][1:]}, got {_show(given)}"
        top = properties.get(loc[0], {}) if loc else {}
        if top.get("description"):
            problem += f" ({loc[0]}: {top['description']})"
        problems.append(problem)
    more = exc.error_count() - len(problems)
    if more > 0:
        problems.append(f"and {more} more")
    return f"invalid arguments for {spec.name}: " + "; ".join(problems)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if value is not None else "null"
    return text if len(text) <= 60 else text[:57] + "..."


# -- answers -----------------------------------------------------------------------------------

# (model class, field name) -> the defaults of the keys of that dict field, given the record.
_DICT_DEFAULTS: dict[tuple[type[BaseModel], str], Callable[[Any], Mapping[str, Any]]] = {}
# Records that are a file format (a graph snapshot): they keep their default values, losing only nulls.
_KEEP_DEFAULTS: set[type[BaseModel]] = set()


def register_dict_defaults(
    model: type[BaseModel], field_name: str, defaults: Callable[[Any], Mapping[str, Any]]
) -> None:
    """Let :func:`lean_dump` drop the keys of ``model.field_name`` that hold their default (e.g. graph payloads)."""
    _DICT_DEFAULTS[(model, field_name)] = defaults


def keep_defaults(model: type[BaseModel]) -> None:
    """Have :func:`lean_dump` keep default values inside ``model`` (an interchange format read by other tools)."""
    _KEEP_DEFAULTS.add(model)


def lean_dump(record: BaseModel) -> dict[str, Any]:
    """``record`` as JSON without null fields and fields holding their default; payloads given by users are kept whole."""
    dumped = record.model_dump(mode="json", by_alias=True)
    return _prune(record, dumped, whole=False)


def _prune(record: BaseModel, dumped: dict[str, Any], *, whole: bool) -> dict[str, Any]:
    whole = whole or type(record) in _KEEP_DEFAULTS
    for name, info in type(record).model_fields.items():
        key = info.alias or name
        if key not in dumped:
            continue
        value = getattr(record, name)
        if value is None or (not whole and _is_default(info, value)):
            del dumped[key]
            continue
        hook = None if whole else _DICT_DEFAULTS.get((type(record), name))
        if hook is not None and isinstance(dumped[key], dict):
            defaults = hook(record)
            dumped[key] = {k: v for k, v in dumped[key].items() if not (k in defaults and defaults[k] == v)}
        else:
            dumped[key] = _prune_value(value, dumped[key], whole=whole)
    return dumped


def _prune_value(value: Any, dumped: Any, *, whole: bool) -> Any:
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return _prune(value, dumped, whole=whole)
    if isinstance(value, list | tuple) and isinstance(dumped, list) and len(value) == len(dumped):
        return [_prune_value(v, d, whole=whole) for v, d in zip(value, dumped, strict=True)]
    if isinstance(value, dict) and isinstance(dumped, dict):
        return {k: _prune_value(value[k], d, whole=whole) if k in value else d for k, d in dumped.items()}
    return dumped


def _is_default(info: Any, value: Any) -> bool:
    if info.default is not PydanticUndefined:
        default = info.default
    elif info.default_factory is not None and info.default_factory in (list, dict, tuple):
        default = info.default_factory()
    else:
        return False
    return type(value) is type(default) and bool(value == default)
