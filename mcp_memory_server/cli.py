"""The ``mcp-memory-server`` command: a thin layer over :class:`MemoryStore` and the MCP server.

With no arguments it serves MCP over stdio on the default store. Every setting in
:class:`Config` is a flag here (generated) and an ``MCP_MEMORY_*`` variable.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cpu import limit_blas_threads
from .config import Config, env_var
from .errors import InvalidInput, MemoryServerError

if TYPE_CHECKING:
    from .core.lab import Lab

Command = Callable[[argparse.Namespace, Config], int]
_COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def decorator(fn: Command) -> Command:
        _COMMANDS[name] = fn
        return fn

    return decorator


_SETTINGS_POINTER = (
    "Every global setting (limits, tool groups, HTTP guards, embedding model, lab metric; each also an "
    "MCP_MEMORY_* variable) is accepted here too; mcp-memory-server --help lists them."
)


def _settings_parser(quiet: bool = False) -> argparse.ArgumentParser:
    """The settings as flags; ``quiet`` hides all but --data-dir from help (a subcommand's help points here)."""
    # SUPPRESS: a setting given before the subcommand must survive the subparser's own defaults.
    parent = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    group = parent.add_argument_group("settings (each also read from its MCP_MEMORY_* variable)")
    for f in dataclasses.fields(Config):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [{env_var(f.name)}]"
        if quiet and f.name != "data_dir":
            help_text = argparse.SUPPRESS
        kind = str(f.type)
        if "list" in kind:
            group.add_argument(flag, dest=f.name, action="append", metavar="DIR", help=help_text)
        elif kind.startswith("bool") and f.default is True:
            # On by default: the flag that matters is --no-NAME (--NAME is accepted too).
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, help=help_text)
        elif kind.startswith("bool"):
            group.add_argument(flag, dest=f.name, action="store_true", help=help_text)
        elif kind.startswith("int"):
            group.add_argument(flag, dest=f.name, type=int, metavar="N", help=help_text)
        else:
            group.add_argument(flag, dest=f.name, metavar=f.name.split("_")[-1].upper(), help=help_text)
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-memory-server",
        description="Durable memory for LLM agents over MCP. With no command: serve over stdio.",
        parents=[_settings_parser()],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Subcommands accept every setting but list only their own options (and --data-dir).
    settings = _settings_parser(quiet=True)

    # serve uses every setting, so its help lists them all.
    serve = sub.add_parser("serve", parents=[_settings_parser()], help="serve MCP (stdio, sse or http)", epilog="")
    serve.add_argument("--transport", choices=["stdio", "sse", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument("--stateless", dest="stateless_http", action="store_true", default=argparse.SUPPRESS,
                       help="streamable HTTP without sessions: run several replicas behind any balancer")  # fmt: skip

    sub.add_parser("stats", parents=[settings], help="print counts, sizes and versions as JSON")

    gc = sub.add_parser("gc", parents=[settings], help="remove old unpinned artifacts and unused blobs")
    gc.add_argument("--older-than-days", type=float, default=None, help="retention for unpinned records")
    gc.add_argument("--apply", action="store_true", help="really delete (default: dry run)")

    for extend in _PARSER_EXTENSIONS:
        extend(sub, settings)
    _point_to_settings(sub)
    return parser


def _point_to_settings(sub: Any) -> None:
    """Give every parser that takes the settings (recursively) the pointer to where they are listed."""
    for child in dict.fromkeys(sub.choices.values()):
        if any(a.dest == "data_dir" for a in child._actions) and child.epilog is None:
            child.epilog = _SETTINGS_POINTER
        for action in child._actions:
            if isinstance(action, argparse._SubParsersAction):
                _point_to_settings(action)


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

    transport = getattr(args, "transport", "stdio")
    if config.stateless_http and transport != "http":
        raise InvalidInput(
            f"--stateless applies to --transport http only (stdio and sse keep one session per connection); "
            f"drop it, or serve with --transport http --stateless (got --transport {transport})"
        )
    if transport != "stdio":
        from .server.http import check_bind

        check_bind(args.host, config)  # before opening the store, so a refused start leaves nothing behind
    store = MemoryStore(config)
    try:
        server = build_server(store)
        if transport == "stdio":
            import anyio

            from .server.stdio import serve_stdio

            print(f"mcp-memory-server: waiting for an MCP client on stdin/stdout (store: {store.description}); "
                  "Ctrl-C or end of input to stop", file=sys.stderr, flush=True)  # fmt: skip
            anyio.run(serve_stdio, server, config)
        else:
            from .server.http import serve_http

            serve_http(server, config, transport, args.host, args.port, store.description)
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


def _files_parsers(sub: Any, settings: argparse.ArgumentParser) -> None:
    files = sub.add_parser("files", help="export or import a namespace of memory files")
    actions = files.add_subparsers(dest="files_command", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export", parents=[settings], help="write a namespace (live files, history, audit, transcript) out"
    )
    export.add_argument("dest", help="a new directory, a .tar.gz file, or an fsspec URL")
    export.add_argument("--namespace", default="default", help="the namespace to export (default: default)")
    restore = actions.add_parser("import", parents=[settings], help="restore an export into an empty namespace")
    restore.add_argument("src", help="an export directory, .tar.gz file, or fsspec URL")
    restore.add_argument("--namespace", default=None, help="the namespace to fill (default: the exported one)")


_PARSER_EXTENSIONS.append(_files_parsers)


@command("files")
def _files(args: argparse.Namespace, config: Config) -> int:
    from .store import MemoryStore

    with MemoryStore(config) as store:
        if args.files_command == "export":
            _print_json(store.files.export(args.namespace, args.dest))
        else:
            _print_json(store.files.import_(args.src, args.namespace))
    return 0


def _graph_parsers(sub: Any, settings: argparse.ArgumentParser) -> None:
    graph = sub.add_parser("graph", help="export, import or validate typed graph memory")
    actions = graph.add_subparsers(dest="graph_command", metavar="ACTION", required=True)
    export = actions.add_parser("export", parents=[settings], help="write an agent's graph snapshot as JSON")
    export.add_argument("--agent-id", default="", help='the agent to export (default: "", the global graph)')
    export.add_argument("--output", "-o", default=None, help="file to write (default: standard output)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    load = actions.add_parser("import", parents=[settings], help="load a graph snapshot (strict by default)")
    load.add_argument("src", help="a snapshot JSON file, or - for standard input")
    load.add_argument(
        "--allow-dangling-edges", action="store_true", help="forensic load: keep edges whose nodes are missing"
    )
    check = actions.add_parser("validate", parents=[settings], help="report dangling, cross-agent and orphan items")
    check.add_argument("--agent-id", default=None, help="one agent's graph (default: the whole store)")
    ainl = actions.add_parser("import-db", parents=[settings], help="import an ainl-memory SQLite database")
    ainl.add_argument("src", help="the ainl-memory database file (read only, never changed)")
    ainl.add_argument("--agent-id", default=None, help="import only this agent's graph (default: every agent)")
    ainl.add_argument(
        "--allow-dangling-edges", action="store_true", help="forensic load: keep edges whose nodes are missing"
    )


_PARSER_EXTENSIONS.append(_graph_parsers)


@command("graph")
def _graph(args: argparse.Namespace, config: Config) -> int:
    """``graph validate`` exits 2 when the graph is not valid."""
    from .store import MemoryStore

    with MemoryStore(config) as store:
        if args.graph_command == "export":
            if args.output is None:
                print(store.graph.export(args.agent_id).model_dump_json(indent=1))
            else:
                _print_json(store.graph.export_to_file(args.agent_id, args.output, overwrite=args.overwrite))
            return 0
        if args.graph_command == "import":
            source = sys.stdin.read() if args.src == "-" else store.graph.read_snapshot_file(args.src)
            _print_json(store.graph.import_snapshot(source, allow_dangling_edges=args.allow_dangling_edges))
            return 0
        if args.graph_command == "import-db":
            _print_json(store.graph.import_database(args.src, agent_id=args.agent_id,
                                                    allow_dangling_edges=args.allow_dangling_edges))  # fmt: skip
            return 0
        report = store.graph.validate(args.agent_id)
        _print_json(report)
        return 0 if report.is_valid else 2


def _lab_parsers(sub: Any, settings: argparse.ArgumentParser) -> None:
    lab = sub.add_parser("lab", help="the experiment ledger: novelty checks, run log, morning report, results.tsv")
    actions = lab.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    init = actions.add_parser("init", parents=[settings], help="create the ledger (optionally from a results.tsv)")
    init.add_argument("--from-tsv", default=None, metavar="FILE", help="import this autoresearch results.tsv")
    check = actions.add_parser("check", parents=[settings], help="has this idea (or one close to it) been tried?")
    check.add_argument("description", nargs="?", default=None, help="the change you are about to try")
    check.add_argument("--description", dest="description_flag", default=None, help="the same, as a flag")
    check.add_argument("--tag", dest="tags", action="append", default=None, help="a tag (repeatable)")
    check.add_argument("--family", default=None, help="the line of work, e.g. lr-sweep")
    check.add_argument("--mode", choices=["explore", "exploit", "replicate"], default="explore")
    check.add_argument("--threshold", type=float, default=None, help="match threshold 0-1 (default: calibrated)")
    check.add_argument("--limit", type=int, default=5, help="closest runs to show (default 5)")
    check.add_argument(
        "--fail-on-similar", action="store_true", help="exit 2 when the policy decision is block (for shell loops)"
    )
    log = actions.add_parser("log", parents=[settings], help="record a finished run; prints its decision packet")
    log.add_argument("description", help="what the run changed")
    log.add_argument("--status", required=True, choices=["keep", "discard", "crash"])
    log.add_argument(
        "--metric", dest="metrics", action="append", default=[], metavar="NAME=VALUE",
        help="a metric, e.g. val_bpb=0.9912 (repeatable)",
    )  # fmt: skip
    log.add_argument("--commit", default=None)
    log.add_argument("--parent-commit", default=None)
    log.add_argument("--branch", default=None)
    log.add_argument("--family", default=None)
    log.add_argument("--hypothesis", default=None)
    log.add_argument("--tag", dest="tags", action="append", default=None)
    log.add_argument("--notes", default=None)
    log.add_argument("--error", default=None, help="a crash's one-line error (default: read from --log-file)")
    log.add_argument(
        "--log", "--log-file", dest="log_file", default=None, metavar="FILE",
        help="the run's output (run.log), stored as an artifact; its final '---' footer gives metrics",
    )  # fmt: skip
    log.add_argument(
        "--summary", default=None, metavar="FILE",
        help="train.py's summary sidecar (JSON of final metrics); default: $AUTORESEARCH_SUMMARY_PATH when set",
    )  # fmt: skip
    log.add_argument("--patch-file", default=None, help="the run's diff, stored as an artifact")
    log.add_argument(
        "--results-tsv", default=None, metavar="FILE",
        help="also append the run's row to this autoresearch results.tsv (created with its header if absent)",
    )  # fmt: skip
    log.add_argument("--mode", choices=["explore", "exploit", "replicate"], default="exploit")
    log.add_argument("--ts", default=None, help="when it ran (RFC 3339; default now)")
    report = actions.add_parser("report", parents=[settings], help="write the morning report (Markdown + PNG)")
    report.add_argument("--since-hours", type=float, default=16.0, help="the window in hours (default 16)")
    report.add_argument("--until", default=None, help="end of the window (RFC 3339; default now)")
    report.add_argument("--output", "-o", default=None, help="also write the Markdown to this file")
    report.add_argument("--chart", default=None, help="also write the PNG chart to this file")
    load = actions.add_parser("import-tsv", parents=[settings], help="bootstrap the ledger from a results.tsv")
    load.add_argument("src", help="an autoresearch results.tsv, or - for standard input")
    load.add_argument("--branch", default=None)
    load.add_argument("--family", default=None)
    load.add_argument("--parent-commit", default=None, help="the commit the first row was built on")
    dump = actions.add_parser("export-tsv", parents=[settings], help="write the ledger as a results.tsv")
    dump.add_argument("--output", "-o", default=None, help="file to write (default: standard output)")
    dump.add_argument("--branch", default=None, help="only this branch's runs")
    dump.add_argument(
        "--extra-metrics", action="store_true", help="a column for every metric, after autoresearch's five"
    )


_PARSER_EXTENSIONS.append(_lab_parsers)


@command("lab")
def _lab(args: argparse.Namespace, config: Config) -> int:
    """``lab check --fail-on-similar`` exits 2 when the policy decision is block."""
    from .core.lab.autoresearch import SUMMARY_PATH_VARIABLE, read_summary_file
    from .errors import InvalidInput
    from .store import MemoryStore

    with MemoryStore(config) as store:
        lab = store.lab
        action = args.lab_command
        if action == "init":
            imported = lab.import_tsv(path=args.from_tsv) if args.from_tsv else None
            if imported is not None and imported.imported:
                _embed_imported_runs(lab, imported.imported)
            _print_json({
                "data_dir": str(store.data_dir), "metric": lab.metric, "direction": lab.direction,
                "runs": lab.count(), "imported": imported.imported if imported else 0,
            })  # fmt: skip
            return 0
        if action == "check":
            description = _one_description(args)
            verdict = lab.check(description, tags=args.tags, family=args.family, mode=args.mode,
                                threshold=args.threshold, limit=args.limit)  # fmt: skip
            _print_json(verdict)
            closest = verdict.top_matches[0] if verdict.top_matches else None
            note = f"; closest {closest.run_id} ({closest.status}): {closest.description[:80]}" if closest else ""
            print(f"{verdict.policy.decision}: {verdict.classification} in {verdict.mode} mode{note}", file=sys.stderr)
            return 2 if args.fail_on_similar and verdict.policy.decision == "block" else 0
        if action == "log":
            metrics: dict[str, float] = {}
            for item in args.metrics:
                name, sep, raw = item.partition("=")
                try:
                    metrics[name.strip()] = float(raw)
                except ValueError:
                    raise InvalidInput(f"--metric {item!r} must look like NAME=NUMBER, e.g. val_bpb=0.9912") from None
                if not sep or not name.strip():
                    raise InvalidInput(f"--metric {item!r} must look like NAME=NUMBER, e.g. val_bpb=0.9912")
            summary_path = args.summary or os.environ.get(SUMMARY_PATH_VARIABLE) or None
            summary = read_summary_file(summary_path) if summary_path else None
            run = lab.log(
                args.description, args.status, metrics, summary=summary, commit=args.commit, parent_commit=args.parent_commit,
                branch=args.branch, family=args.family, hypothesis=args.hypothesis, tags=args.tags,
                notes=args.notes, error=args.error, log_path=args.log_file, patch_path=args.patch_file,
                mode=args.mode, ts=args.ts,
            )  # fmt: skip
            if args.results_tsv:
                _append_results_row(Path(args.results_tsv), lab.export_run_tsv(run.run_id))
            _print_json(run.decision_packet)
            return 0
        if action == "report":
            result = lab.report(args.since_hours, until=args.until)
            assert result.report_artifact_id is not None
            markdown = store.artifacts.read_bytes(result.report_artifact_id).decode("utf-8")
            if args.chart and result.chart_artifact_id:
                chart = Path(args.chart)
                chart.write_bytes(store.artifacts.read_bytes(result.chart_artifact_id))
                # A Markdown viewer opens a file next to the report, not a cas:// URI.
                beside = Path(args.output).resolve().parent if args.output else Path.cwd()
                link = Path(os.path.relpath(chart.resolve(), beside)).as_posix()
                markdown = markdown.replace(f"]({result.chart_uri})", f"]({link})")
            if args.output:
                Path(args.output).write_text(markdown, encoding="utf-8")
            print(markdown)
            return 0
        if action == "import-tsv":
            if args.src == "-":
                imported = lab.import_tsv(sys.stdin.read(), branch=args.branch, family=args.family,
                                          parent_commit=args.parent_commit)  # fmt: skip
            else:
                imported = lab.import_tsv(path=args.src, branch=args.branch, family=args.family,
                                          parent_commit=args.parent_commit)  # fmt: skip
            if imported.imported:
                _embed_imported_runs(lab, imported.imported)
            _print_json(imported)
            return 0
        text = lab.export_tsv(branch=args.branch, extra_metrics=args.extra_metrics)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0


def _embed_imported_runs(lab: Lab, count: int) -> None:
    """Embed the imported runs now, with progress: else the loop's first ``lab check`` embeds
    them all before answering (measured: 26 s for 10,000 rows, 5 min for 100,000)."""
    from tqdm import tqdm

    from .embeddings import EmbeddingUnavailable

    print(f"embedding {count} imported runs for novelty checks …", file=sys.stderr)
    with tqdm(desc="embedding", unit="run", file=sys.stderr, disable=None) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            lab.embed_missing(progress)
        except EmbeddingUnavailable as exc:  # the import stands; checks fall back as they always do
            print(f"note: the runs are imported but not embedded: {exc}", file=sys.stderr)


def _append_results_row(path: Path, table: str) -> None:
    """Append the data line of a one-run results.tsv ``table``, writing its header first into a new or empty file."""
    header, row = table.splitlines(keepends=True)
    with path.open("a+", encoding="utf-8") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            handle.write(header)
        handle.write(row)


def _one_description(args: argparse.Namespace) -> str:
    from .errors import InvalidInput

    if args.description is not None and args.description_flag is not None:
        raise InvalidInput("give the description once: as the argument or as --description, not both")
    description = args.description if args.description is not None else args.description_flag
    if description is None:
        raise InvalidInput("lab check needs the change you are about to try: lab check 'lr 0.04' or --description …")
    return str(description)


def _search_parsers(sub: Any, settings: argparse.ArgumentParser) -> None:
    sub.add_parser(
        "reindex", parents=[settings],
        help="re-embed every searchable record with the configured model (progress on stderr)",
    )  # fmt: skip


_PARSER_EXTENSIONS.append(_search_parsers)


@command("reindex")
def _reindex(args: argparse.Namespace, config: Config) -> int:
    import time

    from tqdm import tqdm

    from .store import MemoryStore

    started = time.perf_counter()
    with MemoryStore(config) as store:
        search = store.search
        print(f"loading embedding model {search.embedder.model_id} …", file=sys.stderr)
        with tqdm(desc="embedding", unit="doc", file=sys.stderr, disable=None) as bar:

            def progress(done: float, total: float | None, message: str) -> None:
                if total is not None:
                    bar.total = int(total)
                    bar.update(int(done) - bar.n)

            embedded = search.reindex(progress)
        status = search.status()
    _print_json({"embedded_documents": embedded, "documents": status["documents"], "model_id": status["model_id"],
                 "dim": status["dim"], "seconds": round(time.perf_counter() - started, 2)})  # fmt: skip
    return 0


# The core words a fix in its own terms (a setting or parameter name, ``name=true``, "the
# server"), right for a tool call or a library call; on the command line it must name the flag.
_FLAG_NAMES = [
    *(f.name for f in dataclasses.fields(Config) if "_" in f.name),
    "allow_dangling_edges",
    "older_than_days",
]
_FLAG_WORDS = re.compile(r"(?<![\w.\-])(" + "|".join(_FLAG_NAMES) + r")(?:=true\b|=True\b)?(?![\w\[])")


def cli_wording(message: str) -> str:
    """``message`` with setting and parameter names as the flags that set them here."""
    message = message.replace("start the server with --allow-path", "pass --allow-path")
    return _FLAG_WORDS.sub(lambda m: "--" + m.group(1).replace("_", "-"), message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = _config(args)
        limit_blas_threads(config.embed_threads)  # before numpy loads; see _cpu.py for why
        return _COMMANDS[args.command or "serve"](args, config)
    except MemoryServerError as exc:
        print(f"mcp-memory-server: error: {cli_wording(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
