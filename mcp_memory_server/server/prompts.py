"""Prompts from ``prompts/*.md``: a small ``key: value`` header, a ``---`` line, then the body.

Header keys: ``name``, ``description``, and one ``argument: name | description`` line per
argument (append `` (required)`` to require it, or `` (default X)`` to give it a default). The body
uses ``{argument}`` placeholders; a line whose placeholders are all empty is left out, so an
optional argument that was not given leaves no "Topic: " behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt, PromptArgument

_DEFAULT = re.compile(r"\(default ([^)]+)\)\s*$")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def prompts_dir() -> Path:
    """``prompts/`` inside the installed package, else at the repository root (a checkout)."""
    packaged = Path(__file__).resolve().parent.parent / "prompts"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "prompts"


def load_prompt(path: Path) -> Prompt:
    header, _, body = path.read_text(encoding="utf-8").partition("\n---\n")
    meta: dict[str, str] = {}
    arguments: list[PromptArgument] = []
    defaults: dict[str, str] = {}
    for line in header.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "argument":
            arg_name, _, arg_description = (part.strip() for part in value.partition("|"))
            required = arg_description.endswith("(required)")
            default = _DEFAULT.search(arg_description)
            if default:
                defaults[arg_name] = default.group(1)
            arguments.append(
                PromptArgument(
                    name=arg_name,
                    description=arg_description.removesuffix("(required)").strip(),
                    required=required,
                )
            )
        elif key:
            meta[key] = value
    template = body.strip()
    names = [a.name for a in arguments]

    def render(**values: Any) -> str:
        filled = {name: str(values.get(name) or "").strip() or defaults.get(name, "") for name in names}
        lines = []
        for line in template.splitlines():
            used = _PLACEHOLDER.findall(line)
            if used and not any(filled.get(name) for name in used):
                continue
            lines.append(line.format_map(filled))
        return "\n".join(lines)

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
