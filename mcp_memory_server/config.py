"""Settings: every one has a command-line flag and an ``MCP_MEMORY_*`` environment variable.

Precedence is flag, then environment, then default. The flags are generated from the
fields below (see ``cli.py``), so a new setting is one field here.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import InvalidInput

__all__ = ["ALL_GROUPS", "Config", "default_data_dir", "home_dir"]

ALL_GROUPS = ("artifacts", "memory", "files", "lab", "graph")
ENV_PREFIX = "MCP_MEMORY_"


def default_data_dir() -> Path:
    """``$MCP_MEMORY_HOME`` if set, else the platform's user data directory."""
    home = os.environ.get("MCP_MEMORY_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("mcp-memory-server", appauthor=False))


def _check_database_url(url: str) -> None:
    """Refuse a URL no engine here opens before anything is created (``storage/open.py`` opens the rest).

    Raises:
        InvalidInput: the scheme is not postgresql://, postgres:// or sqlite:///.
    """
    parts = urlsplit(url)
    if parts.scheme.split("+", 1)[0].lower() not in ("postgresql", "postgres", "sqlite"):
        shown = url if parts.password is None else url.replace(f":{parts.password}@", ":***@", 1)
        raise InvalidInput(
            f"database_url {shown!r} is not a URL of an engine this program has; use "
            "postgresql://user@host:5432/db for PostgreSQL, or leave it unset for SQLite in the data directory"
        )


def _setting(default: Any, help: str, *, env: str | None = None, flag: bool = True, sep: str = os.pathsep) -> Any:
    # ``sep`` splits a list setting's environment variable: os.pathsep for paths, "," for
    # values that may hold a colon themselves (host:port, origins).
    meta = {"help": help, "env": env, "flag": flag, "sep": sep}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a store or server can be told. Build with :meth:`load`."""

    data_dir: Path | None = _setting(None, "data directory (default: $MCP_MEMORY_HOME or the user data dir)")
    create_data_dir: bool = _setting(
        False, "create a data directory whose parent folders do not exist yet (else refused, to catch a typo)"
    )
    database_url: str | None = _setting(
        None,
        "where records live: postgresql://user@host:5432/db for a shared PostgreSQL database "
        "(pip install 'mcp-memory-server[postgres]'); default: memory.db (SQLite) in the data directory",
    )
    blob_url: str | None = _setting(
        None,
        "where content lives: s3://bucket/prefix for an S3-compatible bucket, reached through AWS_ENDPOINT_URL "
        "and the AWS_* credentials (pip install 'mcp-memory-server[s3]'); default: blobs/ in the data directory",
    )
    memory_root: str | None = _setting(
        None,
        "where keyed memories are saved (store.memories): a directory or s3://bucket/prefix, "
        "one numbered archive per save of each key",
    )
    run_id: str | None = _setting(None, "scope id stamped on every record (default: one per server start)")
    tools: str = _setting(",".join(ALL_GROUPS), "comma-separated tool groups to enable")
    allow_path: list[str] = _setting(
        [], "extra root under which server-local paths may be read or written (repeatable)"
    )
    read_only_prefixes: list[str] = _setting(
        [], "memory-file prefix refusing writes and deletes, as namespace/prefix, e.g. default/policies/ (repeatable)"
    )
    token: str | None = _setting(None, "bearer token required by the HTTP transports")
    allowed_hosts: list[str] = _setting(
        [],
        "extra Host header the HTTP transports accept, as name or name:port, e.g. mcp.lan (repeatable; "
        "loopback names, the bound address and, for a wildcard bind, this machine's names are always accepted)",
        sep=",",
    )
    allowed_origins: list[str] = _setting(
        [], "extra Origin header the HTTP transports accept, e.g. https://app.example (repeatable)", sep=","
    )
    # The SDK's own defaults (10,000 sessions, 30 minutes idle) let one client hold ~10,000
    # server sessions in memory; a memory server has a handful of clients.
    max_sessions: int = _setting(
        100, "most open streamable HTTP sessions at once (then 503 until one closes or idles out)"
    )
    max_session_idle_seconds: int = _setting(
        1800, "close a streamable HTTP session after this many seconds without a request"
    )
    stateless_http: bool = _setting(
        False,
        "serve streamable HTTP without server-side sessions, so any replica can answer any request "
        "(also: serve --stateless)",
    )
    audit: bool = _setting(
        True,
        "record who changed each memory file and why in its audit log (Flyte's audit; this process's writes "
        "only: --no-audit leaves them out of audit_tail, the file's current metadata is still kept)",
    )
    keep_versions: bool = _setting(
        True,
        "keep the content of every memory file version (Flyte's keep_versions; this process's writes only: "
        "with --no-keep-versions a version's content is dropped, for gc to free, once a newer one replaces it)",
    )
    sync: str = _setting("full", "SQLite synchronous mode: full (survives power loss) or normal")
    hot_window: int = _setting(1000, "newest events per run answered from memory")
    max_text_bytes: int = _setting(1_048_576, "largest text/JSON field accepted, in bytes")
    max_base64_bytes: int = _setting(16_777_216, "largest decoded base64 payload accepted, in bytes")
    max_json_depth: int = _setting(32, "deepest JSON nesting accepted")
    max_labels: int = _setting(64, "most labels, tags or metrics on one record")
    max_path_bytes: int = _setting(1024, "longest file path accepted, in bytes")
    max_page_size: int = _setting(500, "largest page a list or search returns")
    max_response_bytes: int = _setting(262_144, "largest inline content in one response, in bytes")
    max_resource_bytes: int = _setting(1_048_576, "largest chunk one resource read returns, in bytes")
    max_request_bytes: int = _setting(33_554_432, "largest JSON-RPC message (HTTP body or stdio line), in bytes")
    max_request_depth: int = _setting(64, "deepest JSON nesting of one JSON-RPC message, checked before parsing")
    max_request_items: int = _setting(
        65_536, "most JSON values (elements and members) in one JSON-RPC message, checked before parsing"
    )
    max_body_seconds: int = _setting(
        30,
        "longest wait for an HTTP request's headers (then the connection is closed) and for the rest of its body (then 408), in seconds",
    )
    embed_model: str | None = _setting(None, "sentence-transformers model name or path for search")
    embed_threads: int = _setting(
        1, "threads for embedding (ONNX Runtime or torch) and numpy's BLAS; 1 keeps single queries fast under load"
    )
    lab_metric: str = _setting("val_bpb", "the lab's primary metric (a metrics key of each run)")
    lab_direction: str = _setting("min", "whether the lab metric is better lower (min) or higher (max)")

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Config:
        """Resolve every setting from ``overrides`` (flags), then the environment, then defaults.

        Raises:
            InvalidInput: an environment variable or override has the wrong form.
        """
        environ = os.environ if environ is None else environ
        overrides = {k: v for k, v in (overrides or {}).items() if v is not None and v != []}
        names = [f.name for f in dataclasses.fields(cls)]
        for unknown in sorted(set(overrides) - set(names)):
            close = difflib.get_close_matches(unknown, names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidInput(f"unknown setting {unknown!r}; {hint}valid settings: {', '.join(names)}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
                continue
            env_name = env_var(f.name)
            if env_name in environ and environ[env_name] != "":
                values[f.name] = _from_env(f, environ[env_name], env_name)
        config = cls(**values)
        config.validate()
        return config

    def validate(self) -> None:
        """Raises: InvalidInput: a setting is out of range."""
        unknown = set(self.groups) - set(ALL_GROUPS)
        if unknown:
            raise InvalidInput(f"unknown tool group(s) {sorted(unknown)}; choose from {', '.join(ALL_GROUPS)}")
        if self.sync not in ("full", "normal"):
            raise InvalidInput(f"sync={self.sync!r} is not valid; use 'full' or 'normal'")
        if self.lab_direction not in ("min", "max"):
            raise InvalidInput(f"lab_direction={self.lab_direction!r} is not valid; use 'min' or 'max'")
        if not self.lab_metric.strip() or '"' in self.lab_metric or "\\" in self.lab_metric:
            raise InvalidInput(f"lab_metric={self.lab_metric!r} must be a metric name without quotes or backslashes")
        if self.database_url:
            _check_database_url(self.database_url)
        for host in self.allowed_hosts:
            if not host or any(c.isspace() or c in "/@*" for c in host.removesuffix(":*")):
                raise InvalidInput(
                    f"allowed_hosts entry {host!r} is not a Host header value; give a name or address, "
                    "optionally with :port or :* (e.g. mcp.lan, 10.0.0.5:8765, [fe80::1]:*)"
                )
        for origin in self.allowed_origins:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest or any(c.isspace() for c in rest):
                raise InvalidInput(
                    f"allowed_origins entry {origin!r} is not an origin; give scheme://host[:port] with no path, "
                    "e.g. https://app.example"
                )
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            positive = f.name.startswith("max_") or f.name in ("hot_window", "embed_threads")
            if positive and (not isinstance(value, int) or value < 1):
                raise InvalidInput(f"{f.name} must be a positive integer, got {value!r}")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.strip() for g in self.tools.split(",") if g.strip()))  # "graph,graph" is graph

    @property
    def data_dir_is_default(self) -> bool:
        """True when neither ``data_dir`` nor ``$MCP_MEMORY_HOME`` chose the directory (the platform default)."""
        return not self.data_dir and not os.environ.get("MCP_MEMORY_HOME")

    @property
    def resolved_data_dir(self) -> Path:
        return (Path(self.data_dir).expanduser() if self.data_dir else default_data_dir()).resolve()

    @property
    def allowed_roots(self) -> tuple[Path, ...]:
        """Roots under which server-local paths may be used: every ``allow_path``, the temp dir, and the cwd.

        Clients often start servers from ``/`` or the home directory, and the data directory
        usually lives under home, so the working directory counts only when it is none of
        ``/``, the home directory, an ancestor of home, or an ancestor of the data directory.
        The temp dir counts unless it is ``/``, home or an ancestor of home. Roots given with
        ``allow_path`` always count. (The data directory itself is refused whatever the roots;
        see ``core/local_paths.py``.)
        """
        home = home_dir()
        data_dir = self.resolved_data_dir

        def broad(path: Path) -> bool:
            return path.parent == path or (home is not None and home.is_relative_to(path))

        cwd = Path.cwd().resolve()
        temp = Path(tempfile.gettempdir()).resolve()
        roots = [Path(p).expanduser().resolve() for p in self.allow_path]
        if not broad(temp):
            roots.append(temp)
        if not broad(cwd) and not data_dir.is_relative_to(cwd):
            roots.append(cwd)
        return tuple(dict.fromkeys(roots))


def home_dir() -> Path | None:
    """The resolved home directory, or None when there is none."""
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def env_var(name: str) -> str:
    """The environment variable of a setting, e.g. ``data_dir`` → ``MCP_MEMORY_DATA_DIR``."""
    return ENV_PREFIX + name.upper()


def _from_env(f: dataclasses.Field[Any], raw: str, env_name: str) -> Any:
    kind = str(f.type)
    if "list" in kind:
        sep = f.metadata["sep"]
        parts = raw.split(sep) if sep == os.pathsep else [p.strip() for p in raw.split(sep)]
        return [p for p in parts if p]
    if kind.startswith("bool"):
        if raw.strip().lower() in _TRUE:
            return True
        if raw.strip().lower() in _FALSE:
            return False
        raise InvalidInput(f"{env_name}={raw!r} must be a boolean: 1, true, yes or on; 0, false, no or off")
    if kind.startswith("int"):
        try:
            return int(raw)
        except ValueError:
            raise InvalidInput(f"{env_name}={raw!r} must be an integer") from None
    if "Path" in kind:
        return Path(raw)
    return raw
