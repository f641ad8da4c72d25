"""Prompts from ``prompts/*.md``: a small ``key: value`` header, a ``---`` line, then the body.

Header keys: ``name``, ``description``, and one ``argument: name | description`` line per
argument (append `` (required)`` to require it). The body uses ``{argument}`` placeholders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument


def prompts_dir() -> Path:
    """``prompts/`` inside the installed package, else at the repository root (a checkout)."""
    packaged = Path(__file__).resolve().parent.parent / "prompts"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "prompts"


def load_prompt(path: Path) -> Prompt:
    header, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
    meta: dict[str, str] = {}
    arguments: list[PromptArgument] = []
    for line in header.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "argument":
            arg_name, _, arg_description = value.partition("|")
            required = arg_description.strip().endswith("(required)")
            arguments.append(
                PromptArgument(
                    name=arg_name.strip(),
                    description=arg_description.replace("(required)", "").strip(),
                    required=required,
                )
            )
        elif key:
            meta[key] = value
    template = body.strip()
    names = [a.name for a in arguments]

    def render(**values: Any) -> str:
        filled = {name: values.get(name) or "" for name in names}
        return template.format_map(filled)

    return Prompt(
        name=meta.get("name", path.stem),
        title=meta.get("title"),
        description=meta.get("description", ""),
        arguments=arguments,
        fn=render,
        context_kwarg=None,
    )


def register_prompts(server: MCPServer) -> None:
    for path in sorted(prompts_dir().glob("*.md")):
        server.add_prompt(load_prompt(path))
