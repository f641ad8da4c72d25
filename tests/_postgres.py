"""A real, throwaway PostgreSQL cluster for the suite's second engine.

``python -m tests._postgres start DIR`` prints a URL (used by ``.ci/run``);
``stop DIR`` stops it. The test session starts its own when no URL is given. initdb
refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

__all__ = ["fresh_schema_url", "sibling_schema_url", "start", "stop"]


def _as_postgres(argv: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def _bin(name: str) -> str:
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
