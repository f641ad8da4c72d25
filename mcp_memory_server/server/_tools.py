"""How a tool is registered: annotations, the docstring as description, and error mapping.

Anticipated errors (``MemoryServerError``) become tool errors with their message intact;
anything else is left to the SDK, which logs it and returns a generic error.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from ..errors import MemoryServerError

F = TypeVar("F", bound=Callable[..., Any])


def register(
    server: MCPServer,
    *,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    title: str | None = None,
) -> Callable[[F], F]:
    """Register ``fn`` as a tool named after it, with annotations and anticipated-error mapping."""

    def decorator(fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return await fn(*args, **kwargs)
                except MemoryServerError as exc:
                    raise ToolError(str(exc)) from None

        else:

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return fn(*args, **kwargs)
                except MemoryServerError as exc:
                    raise ToolError(str(exc)) from None

        server.add_tool(
            wrapper,
            name=fn.__name__,
            title=title,
            description=inspect.getdoc(fn),
            annotations=ToolAnnotations(
                title=title,
                read_only_hint=read_only,
                destructive_hint=destructive,
                idempotent_hint=idempotent,
                open_world_hint=False,
            ),
            structured_output=True,
        )
        return fn

    return decorator


def exactly_one(**sources: object) -> str:
    """The name of the one argument given among ``sources``.

    Raises:
        ToolError: none or several were given.
    """
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        names = ", ".join(sources)
        raise ToolError(f"give exactly one of {names} (got {', '.join(given) or 'none'})")
    return given[0]
