"""A real, throwaway PostgreSQL cluster for the suite's second engine.

``python -m tests._postgres start DIR`` prints a URL (used by ``.ci/run``);
``stop DIR`` stops it. The test session starts its own when no URL is given. initdb
refuses to run as root, so as root the cluster belongs to the ``postgres`` user.

The programs are Debian's (``initdb`` on the path, or ``/usr/lib/postgresql/*/bin``) unless
``$MCP_MEMORY_TEST_PG_BIN`` names a bin folder; ``MCP_MEMORY_TEST_PG_BIN=pgserver`` takes the
PostgreSQL 16 + pgvector build in the ``pgserver`` wheel (``pip install -e ".[pgvector-tests]"``),
copied once to a folder the ``postgres`` user can read.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

__all__ = ["fresh_schema_url", "pgserver_bin", "sibling_schema_url", "start", "stop"]

PG_BIN_ENV = "MCP_MEMORY_TEST_PG_BIN"


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def pgserver_bin() -> Path:
    """The bin folder of the ``pgserver`` wheel's PostgreSQL (with pgvector), in a copy any user can read and run.

    The wheel sits in a virtual environment the ``postgres`` user may not be able to enter, so
    its install tree is copied to the temp dir (once per wheel build; 34 MB).

    Raises:
        RuntimeError: pgserver is not installed.
    """
    # Found, not imported: only its files are needed, not its Python side (psutil, fasteners).
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f'{PG_BIN_ENV}=pgserver needs the pgserver wheel: pip install -e ".[pgvector-tests]"')
    package = Path(next(iter(spec.submodule_search_locations)))
    stamp = hashlib.blake2b(str(package.resolve()).encode(), digest_size=6).hexdigest()
    target = Path(os.environ.get("TMPDIR", "/tmp")) / f"mcp-memory-pgserver-{stamp}"
    # The programs find libpq at $ORIGIN/../../../pgserver.libs (the wheel's layout), kept in the copy.
    install = target / "pgserver" / "pginstall"
    if not (install / "bin" / "postgres").is_file():
        partial = target.with_name(f"{target.name}.{os.getpid()}")
        shutil.copytree(package / "pginstall", partial / "pgserver" / "pginstall", dirs_exist_ok=True)
        shutil.copytree(package.parent / "pgserver.libs", partial / "pgserver.libs", dirs_exist_ok=True)
        for path in [partial, *partial.rglob("*")]:
            mode = path.stat().st_mode
            # Readable by everyone; executable by everyone where the owner may execute (the programs, folders).
            path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))
        if not target.exists():
            partial.rename(target)
        else:  # another session finished first: its copy serves
            shutil.rmtree(partial, ignore_errors=True)
    return install / "bin"


def _bin(name: str) -> str:
    chosen = os.environ.get(PG_BIN_ENV)
    if chosen:
        folder = pgserver_bin() if chosen == "pgserver" else Path(chosen)
        if not (folder / name).is_file():
            raise RuntimeError(f"{name} not found in {folder} (from ${PG_BIN_ENV})")
        return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise RuntimeError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(directory: Path) -> str:
    """Create and start a cluster in ``directory`` (created); returns its URL. Raises if it cannot start."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    port = _free_port()
    _run(_as_postgres([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]))
    options = (
        f"-k {directory} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        " -c full_page_writes=off -c max_connections=500 -c shared_buffers=128MB"
    )
    log = directory / "log"
    _run(_as_postgres([_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start"]), log)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def _run(argv: list[str], log: Path | None = None) -> None:
    """Run a cluster command; on failure raise with what it and the server said (CI shows it)."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        server_log = log.read_text(errors="replace")[-4000:] if log is not None and log.is_file() else ""
        raise RuntimeError(
            f"PostgreSQL for the tests could not start: {' '.join(argv)} exited {result.returncode}\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}{server_log}"
        )


def stop(directory: Path) -> None:
    subprocess.run(
        _as_postgres([_bin("pg_ctl"), "-D", str(directory / "data"), "-m", "immediate", "stop"]),
        check=False,
        capture_output=True,
    )


def fresh_schema_url(base: str) -> str:
    """``base`` narrowed to a new, empty schema: each test gets a store of its own in one cluster."""
    schema = "t_" + uuid.uuid4().hex[:16]
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}options=-csearch_path%3D{schema}"


def sibling_schema_url(url: str) -> str:
    """``url`` (one store's, from :func:`fresh_schema_url`) turned to another new, empty schema of the same cluster."""
    return fresh_schema_url(re.sub(r"[?&]options=-csearch_path%3D\w+$", "", url))


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "start":
        print(start(where))
    else:
        stop(where)
