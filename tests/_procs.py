"""Real server processes for the end-to-end and reliability tests: start, wait until ready, stop.

Nothing here is mocked: servers are ``python -m mcp_memory_server`` subprocesses on a
real data directory, HTTP servers listen on 127.0.0.1, and helpers talk to them through
the SDK's clients or plain ``http.client``.
"""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mcp import StdioServerParameters

SERVER = [sys.executable, "-m", "mcp_memory_server"]
READY_TIMEOUT_S = 60.0

# Runs the server as ``python -m mcp_memory_server`` would, after two optional test hooks:
# MCP_TEST_PID_FILE receives the server's pid (so a test can SIGKILL exactly it), and
# MCP_TEST_IMPORT_MARKERS="dir|mod1,mod2" makes the first import of any listed module
# (or a submodule) create dir/<module> before that import runs.
_LAUNCHER = """\
import os, runpy, sys
pid_file = os.environ.pop("MCP_TEST_PID_FILE", "")
if pid_file:
    with open(pid_file + ".tmp", "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(pid_file + ".tmp", pid_file)
markers = os.environ.pop("MCP_TEST_IMPORT_MARKERS", "")
if markers:
    folder, names = markers.split("|", 1)
    watched = tuple(names.split(","))
    def _hook(event, args):
        if event == "import":
            name = args[0]
            for top in watched:
                if name == top or name.startswith(top + "."):
                    path = os.path.join(folder, top)
                    if not os.path.exists(path):
                        open(path, "w").close()
    sys.addaudithook(_hook)
sys.argv = ["mcp-memory-server", *sys.argv[1:]]
runpy.run_module("mcp_memory_server", run_name="__main__", alter_sys=True)
"""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any ``MCP_MEMORY_*`` setting from the developer's shell.

    ``MCP_MEMORY_DATABASE_URL`` stays: on the PostgreSQL run it is the test's own schema
    (conftest sets it, and removes a developer's on the SQLite run), so a server
    subprocess keeps its records where the test looks for them.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_MEMORY_") or k == "MCP_MEMORY_DATABASE_URL"}
    env.update(extra or {})
    return env


def launcher_command(data_dir: Path, *args: str) -> list[str]:
    """The command line of a stdio server on ``data_dir`` started through the test launcher."""
    return [sys.executable, "-c", _LAUNCHER, "--data-dir", str(data_dir), *args]


def stdio_params(
    data_dir: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    launcher: bool = False,
) -> StdioServerParameters:
    """Parameters that spawn a stdio server on ``data_dir`` (through the test launcher if asked).

    The SDK starts the server with a minimal environment plus ``env``; the test's
    ``MCP_MEMORY_DATABASE_URL`` (PostgreSQL run) is added, so the server's records land
    where the test looks for them, and ``PYTHONPATH``, so it runs the code under test.
    """
    command = launcher_command(data_dir, *args) if launcher else [*SERVER, "--data-dir", str(data_dir), *args]
    inherited = {k: os.environ[k] for k in ("MCP_MEMORY_DATABASE_URL", "PYTHONPATH") if os.environ.get(k)}
    full_env = {**inherited, **(env or {})}
    return StdioServerParameters(command=command[0], args=command[1:], env=full_env, cwd=cwd)


# Bytes read from a process's stdout past the line returned. select() sees only the pipe: two lines
# that arrive in one read would leave the second in a BufferedReader's buffer while select() waits
# on an empty pipe, which under load read as a server that stopped answering.
_PENDING: weakref.WeakKeyDictionary[subprocess.Popen[bytes], bytearray] = weakref.WeakKeyDictionary()


def read_line(process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_S) -> bytes:
    """One line of the process's stdout (with its newline; what is left at end of output), or TimeoutError."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    pending = _PENDING.setdefault(process, bytearray())
    deadline = time.monotonic() + timeout
    while b"\n" not in pending:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError(f"no output from the process within {timeout} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            line = bytes(pending)
            pending.clear()
            return line
        pending += chunk
    end = pending.index(b"\n") + 1
    line = bytes(pending[:end])
    del pending[:end]
    return line


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class HttpServer:
    """A running ``serve --transport http|sse`` process."""

    process: subprocess.Popen[bytes]
    port: int
    transport: str
    stderr_path: Path
    host: str = "127.0.0.1"  # where clients connect (a wildcard bind is reached through 127.0.0.1)

    @property
    def url(self) -> str:
        """The MCP endpoint: ``/mcp`` for streamable HTTP, ``/sse`` for SSE."""
        return f"http://{self.host}:{self.port}/{'sse' if self.transport == 'sse' else 'mcp'}"

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One raw HTTP request (headers exactly as given, ``Host`` included); returns status and body."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            given = {k.lower() for k in (headers or {})}
            conn.putrequest(method, path, skip_host="host" in given, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None and "content-length" not in given:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            # An SSE stream never ends on its own: read what is there for an error, else stop.
            data = response.read() if response.status >= 300 else response.read1(4096)
            return response.status, data
        finally:
            conn.close()


def _spawn_http(
    data_dir: Path, transport: str, args: Sequence[str], env: Mapping[str, str] | None, log_dir: Path, bind: str
) -> HttpServer:
    port = free_port()
    stderr_path = log_dir / f"server-{transport}-{port}.log"
    command = [*SERVER, "serve", "--transport", transport, "--host", bind, "--port", str(port),
               "--data-dir", str(data_dir), *args]  # fmt: skip
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=clean_env(env)
        )
    return HttpServer(process, port, transport, stderr_path, "127.0.0.1" if bind in ("0.0.0.0", "::") else bind)


def wait_until_listening(server: HttpServer, timeout: float = READY_TIMEOUT_S) -> bool:
    """Poll until the server accepts connections (True) or its process exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        if port_open(server.port, server.host):
            return True
        time.sleep(0.05)
    raise TimeoutError(f"the {server.transport} server did not listen within {timeout} s:\n{server.stderr()}")


def stop(process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if the process does not exit in time; always reaps it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def http_server(
    data_dir: Path,
    transport: str = "http",
    *args: str,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    bind: str = "127.0.0.1",
) -> Iterator[HttpServer]:
    """Run ``serve --transport <transport> --host <bind>`` on a free port until the block ends."""
    log_dir = log_dir or data_dir.parent
    log_dir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):  # another process may take the free port before the server binds it
        server = _spawn_http(data_dir, transport, args, env, log_dir, bind)
        if wait_until_listening(server):
            break
        if "address already in use" not in server.stderr().lower():
            raise RuntimeError(f"the {transport} server exited with {server.process.returncode}:\n{server.stderr()}")
    else:
        raise RuntimeError(f"no free port for the {transport} server:\n{server.stderr()}")
    try:
        yield server
    finally:
        stop(server.process)


def run_python(code: str, *args: str, timeout: float = 60.0, cwd: Path | None = None) -> str:
    """Run ``code`` in a fresh interpreter; return its stdout, raising with stderr if it fails."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd=cwd,
    )
    if done.returncode != 0:
        raise AssertionError(f"subprocess failed with {done.returncode}:\n{done.stderr}")
    return done.stdout


def wait_for_file(path: Path, timeout: float = READY_TIMEOUT_S) -> str:
    """Poll until ``path`` exists with content; return the content."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text()
            if text:
                return text
        time.sleep(0.02)
    raise TimeoutError(f"{path} did not appear within {timeout} s")
