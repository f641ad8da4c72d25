"""The server in a terminal: Ctrl-C, start-up lines, a mistyped data directory, CLI wording and help.

Real processes only: ``python -m mcp_memory_server`` over stdio or HTTP on 127.0.0.1, and
the real CLI's ``main`` or subprocess.
"""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from _engine import records_created
from _procs import READY_TIMEOUT_S, SERVER, clean_env, http_server, stop

from mcp_memory_server.cli import main
from mcp_memory_server.errors import StorageError
from mcp_memory_server.store import MemoryStore

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "terminal-test", "version": "0"}}}  # fmt: skip
SIGINT_BOUND_S = 15.0  # generous: "at once" here means well before any client would give up, on a loaded machine


def serving_stdio(data_dir: Path, stderr_path: Path) -> subprocess.Popen[bytes]:
    """A stdio server that has answered initialize (so it is in its serving loop, blocked reading stdin)."""
    with open(stderr_path, "wb") as stderr:
        process = subprocess.Popen([*SERVER, "--data-dir", str(data_dir)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=stderr, env=clean_env())  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
    process.stdin.flush()
    ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
    assert ready, stderr_path.read_text()
    assert json.loads(process.stdout.readline())["id"] == 1
    return process


def test_sigint_stops_the_stdio_server_at_once_without_a_traceback(tmp_path: Path) -> None:
    """Ctrl-C while the server waits on stdin (the client keeps it open): exit 130 promptly, no traceback."""
    stderr_path = tmp_path / "stderr.log"
    process = serving_stdio(tmp_path / "store", stderr_path)
    try:
        process.send_signal(signal.SIGINT)
        try:
            returncode = process.wait(SIGINT_BOUND_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the stdio server ignored SIGINT for {SIGINT_BOUND_S} s")
        assert returncode == 130
        err = stderr_path.read_text()
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    finally:
        stop(process)
        for pipe in (process.stdin, process.stdout):
            assert pipe is not None
            pipe.close()
    with MemoryStore.open(tmp_path / "store") as store:  # closed cleanly: the store opens and serves
        assert store.stats().counts["events"] == 0


def test_requests_piped_before_end_of_input_are_all_answered(tmp_path: Path) -> None:
    """A client that writes its requests and closes stdin at once (a shell pipe) still gets every answer, then exit 0."""
    lines = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
         "params": {"name": "memory_record", "arguments": {"kind": "note", "text": "piped, then end of input"}}},
    ]  # fmt: skip
    done = subprocess.run([*SERVER, "--data-dir", str(tmp_path / "store")], input=b"".join(
        json.dumps(line).encode() + b"\n" for line in lines), capture_output=True, env=clean_env(),
        timeout=READY_TIMEOUT_S)  # fmt: skip
    answers = {message["id"]: message for message in map(json.loads, done.stdout.splitlines())}
    assert sorted(answers) == [1, 2, 3], done.stderr.decode()
    assert len(answers[2]["result"]["tools"]) == 26
    recorded = answers[3]["result"]["structuredContent"]
    assert recorded["event_id"].startswith("evt_") and not answers[3]["result"].get("isError")
    assert done.returncode == 0


def test_the_stdio_server_says_on_stderr_that_it_waits_for_a_client_and_where_the_store_is(
    tmp_path: Path, engine: str
) -> None:
    stderr_path = tmp_path / "stderr.log"
    process = serving_stdio(tmp_path / "store", stderr_path)
    try:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)
    finally:
        stop(process)
        assert process.stdout is not None
        process.stdout.close()
    lines = [line for line in stderr_path.read_text().splitlines() if line.startswith("mcp-memory-server:")]
    assert len(lines) == 1, lines
    assert "waiting for an MCP client on stdin/stdout" in lines[0]
    if engine == "postgres":  # the records are elsewhere: say where
        assert f"(store: {(tmp_path / 'store').resolve()}, records in postgresql database " in lines[0]
    else:
        assert f"(store: {(tmp_path / 'store').resolve()})" in lines[0]


@pytest.mark.parametrize(("transport", "path"), [("http", "/mcp"), ("sse", "/sse")])
def test_the_http_servers_print_their_url_once_listening(tmp_path: Path, transport: str, path: str) -> None:
    with http_server(tmp_path / "store", transport) as server:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while "serving MCP" not in server.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        lines = [line for line in server.stderr().splitlines() if line.startswith("mcp-memory-server:")]
    assert len(lines) == 1, lines
    assert f"at http://127.0.0.1:{server.port}{path} " in lines[0]
    assert str((tmp_path / "store").resolve()) in lines[0]


# -- a data directory whose parent does not exist ----------------------------------------------------


def test_a_data_dir_under_a_missing_folder_is_refused_by_the_cli_with_the_flag_to_create_it(
    tmp_path: Path, fresh_database_url: Callable[[], str | None]
) -> None:
    typo = tmp_path / "memroy" / "store"
    result = subprocess.run([*SERVER, "stats", "--data-dir", str(typo)], capture_output=True, text=True,
                            env=clean_env(), timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert f"its parent {typo.parent} does not exist" in result.stderr
    assert "--create-data-dir" in result.stderr and "Traceback" not in result.stderr
    assert not typo.parent.exists()  # nothing was created

    for extra_args, env in (([], {"MCP_MEMORY_CREATE_DATA_DIR": "1"}), (["--create-data-dir"], {})):
        target = tmp_path / f"new{len(env)}" / "store"
        url = fresh_database_url()  # each new store its own records on PostgreSQL, as each has its own directory
        if url:
            env = {**env, "MCP_MEMORY_DATABASE_URL": url}
        made = subprocess.run([*SERVER, "stats", "--data-dir", str(target), *extra_args], capture_output=True,
                              text=True, env=clean_env(env), timeout=120)  # fmt: skip
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["data_dir"] == str(target.resolve())
        assert records_created(target, url)


def test_memory_store_open_refuses_a_missing_parent_unless_asked_to_create_it(tmp_path: Path) -> None:
    typo = tmp_path / "no" / "such" / "store"
    with pytest.raises(StorageError, match=r"does not exist; check the path, or pass create_data_dir=true"):
        MemoryStore.open(typo)
    assert not (tmp_path / "no").exists()
    with MemoryStore.open(typo, create_data_dir=True) as store:
        assert store.data_dir == typo.resolve()
    with MemoryStore.open(tmp_path / "direct") as store:  # an existing parent needs no asking
        assert records_created(store.data_dir)


def test_a_bad_boolean_in_the_environment_is_refused_with_the_accepted_forms(tmp_path: Path) -> None:
    result = subprocess.run([*SERVER, "stats", "--data-dir", str(tmp_path / "s")], capture_output=True, text=True,
                            env=clean_env({"MCP_MEMORY_CREATE_DATA_DIR": "maybe"}), timeout=120)  # fmt: skip
    assert result.returncode == 1
    assert "MCP_MEMORY_CREATE_DATA_DIR='maybe' must be a boolean: 1, true, yes or on" in result.stderr


# -- CLI wording and help ------------------------------------------------------------------------------


def test_cli_errors_name_flags_not_parameters(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "store")
    assert main(["gc", "--older-than-days", "-1", "--data-dir", store]) == 1
    error = capsys.readouterr().err
    assert "--older-than-days must be a non-negative number" in error and "older_than_days" not in error
    assert main(["--max-page-size", "0", "stats", "--data-dir", store]) == 1
    error = capsys.readouterr().err
    assert "--max-page-size must be a positive integer" in error and "max_page_size" not in error

    dangling = {"agent_id": "zed", "schema_version": "1.0", "nodes": [],
                "edges": [{"source_id": str(uuid.uuid4()), "target_id": str(uuid.uuid4()), "edge_type": "L"}]}  # fmt: skip
    (tmp_path / "dangling.json").write_text(json.dumps(dangling))
    assert main(["graph", "import", str(tmp_path / "dangling.json"), "--data-dir", store]) == 1
    error = capsys.readouterr().err
    assert "--allow-dangling-edges" in error and "allow_dangling_edges" not in error


def test_cli_wording_rewrites_the_server_hint_for_allowed_roots() -> None:
    from mcp_memory_server.cli import cli_wording

    message = "path '/x' resolves to /x, outside the allowed roots (/tmp); start the server with --allow-path to allow"
    assert cli_wording(message).endswith("outside the allowed roots (/tmp); pass --allow-path to allow")
    # A field of a record (after a dot) is data, not a flag.
    assert cli_wording("snapshot.nodes[0].agent_id='a' differs") == "snapshot.nodes[0].agent_id='a' differs"


@pytest.mark.parametrize("argv", [["gc"], ["stats"], ["graph", "import"], ["lab", "check"], ["files", "export"]])
def test_subcommand_help_lists_its_own_options_and_points_to_the_global_settings(argv: list[str]) -> None:
    wide = clean_env({"COLUMNS": "300"})  # argparse wraps at the terminal width, and may break a name at its hyphen
    result = subprocess.run([*SERVER, *argv, "--help"], capture_output=True, text=True, env=wide, timeout=60)
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "--data-dir" in text
    for hidden in ("--max-text-bytes", "--allowed-origins", "--embed-threads", "--lab-direction", "--token"):
        assert hidden not in text, hidden
    assert "mcp-memory-server --help lists them" in text


def test_a_global_setting_still_works_after_a_subcommand(tmp_path: Path) -> None:
    result = subprocess.run([*SERVER, "stats", "--data-dir", str(tmp_path / "s"), "--tools", "artifacts"],
                            capture_output=True, text=True, env=clean_env(), timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["groups"] == ["artifacts"]


def test_top_level_and_serve_help_list_every_setting() -> None:
    for argv in ([], ["serve"]):
        result = subprocess.run([*SERVER, *argv, "--help"], capture_output=True, text=True, env=clean_env(), timeout=60)
        assert "--max-text-bytes" in result.stdout and "--create-data-dir" in result.stdout


if sys.platform == "win32":  # pragma: no cover - signals differ
    pytestmark = pytest.mark.skip("POSIX signals")
