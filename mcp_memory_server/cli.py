"""The ``mcp-memory-server`` command: a thin layer over :class:`MemoryStore` and the MCP server.

With no arguments it serves MCP over stdio on the default store. Every setting in
:class:`Config` is a flag here (generated) and an ``MCP_MEMORY_*`` variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import Config, env_var
from .errors import MemoryServerError

Command = Callable[[argparse.Namespace, Config], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def decorator(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return decorator


def _settings_parser() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings (each also read from its MCP_MEMORY_* variable)")
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [{env_var(f.name)}]"
        kind = str(f.type)
        if "list" in kind:
            group.add_argument(flag, dest=f.name, action="append", metavar="DIR", help=help_text)
        elif kind.startswith("int"):
            group.add_argument(flag, dest=f.name, type=int, metavar="N", help=help_text)
        else:
            group.add_argument(flag, dest=f.name, metavar=f.name.split("_")[-1].upper(), help=help_text)
    return parent


def build_parser() -> argparse.ArgumentParser:
    settings = _settings_parser()
    parser = argparse.ArgumentParser(
        prog="mcp-memory-server",
        description="Durable memory for LLM agents over MCP. With no command: serve over stdio.",
        parents=[settings],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[settings], help="serve MCP (stdio, sse or http)")
    serve.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")

    sub.add_parser("stats", parents=[settings], help="print counts, sizes and versions as JSON")

    gc = sub.add_parser("gc", parents=[settings], help="remove old unpinned artifacts and unused blobs")
    gc.add_argument("--older-than-days", type=float, default=None, help="retention for unpinned records")
    gc.add_argument("--apply", action="store_true", help="really delete (default: dry run)")

    for extend in _PARSER_EXTENSIONS:
        extend(sub, settings)
    return parser


# Capabilities with their own subcommands add a function here that adds their parsers.
_PARSER_EXTENSIONS: list[Callable[[Any, argparse.ArgumentParser], None]] = []


def _config(args: argparse.Namespace) -> Config:
    return Config.load({f.name: getattr(args, f.name, None) for f in dataclasses.fields(Config)})


def _print_json(value: Any) -> None:
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    print(json.dumps(value, indent=2, ensure_ascii=False))


@command("serve")
def _serve(args: argparse.Namespace, config: Config) -> int:
    from .server import build_server
    from .store import MemoryStore

    store = MemoryStore(config)
    server = build_server(store)
    transport = getattr(args, "transport", "stdio")
    try:
        if transport == "stdio":
            server.run("stdio")
        else:
            from .server.http import serve_http

            serve_http(server, config, transport, args.host, args.port)
    finally:
        store.close()
    return 0


@command("stats")
def _stats(args: argparse.Namespace, config: Config) -> int:
    from .store import MemoryStore

    with MemoryStore(config) as store:
        _print_json(store.stats())
    return 0


@command("gc")
def _gc(args: argparse.Namespace, config: Config) -> int:
    from .store import MemoryStore

    with MemoryStore(config) as store:
        _print_json(store.gc(older_than_days=args.older_than_days, dry_run=not args.apply))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
        return _COMMANDS[args.command or "serve"](args, config)
    except MemoryServerError as exc:
        print(f"mcp-memory-server: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
