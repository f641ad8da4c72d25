"""A real, throwaway S3 endpoint for the object-store blob tests: ``moto_server`` on 127.0.0.1.

``python -m tests._s3 start DIR`` starts one in the background, creates the bucket
:data:`BUCKET` and prints its endpoint URL (used by ``.ci/run``; pass it on as
``MCP_MEMORY_TEST_S3_ENDPOINT``); ``stop DIR`` stops it. The test session starts its own
when no endpoint is given. moto keeps objects in its memory: nothing outlives a stop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["BUCKET", "CREDENTIALS", "client_env", "create_bucket", "start", "stop"]

BUCKET = "mcp-memory-test"
# moto accepts any credentials unless started with auth (see ``start``); these are the AWS way of passing them.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


_SERVERS: dict[Path, subprocess.Popen[bytes]] = {}
"""Servers this process started, kept so that stop() reaps them (and no Popen is dropped while it runs)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_env(endpoint: str) -> dict[str, str]:
    """The environment variables a process needs to use the bucket at ``endpoint``."""
    return {"AWS_ENDPOINT_URL": endpoint, **CREDENTIALS}


def start(directory: Path, *, auth: bool = False, bucket: str | None = BUCKET) -> str:
    """Start moto in ``directory`` (created; its pid and log go there); return the endpoint URL.

    With ``auth`` moto checks signatures from the first request on, so every key it was not
    given through its IAM API is refused: the test of wrong credentials. ``bucket`` is created
    unless None.

    Raises:
        RuntimeError: the server did not answer within 60 s (its log is in the message).
    """
    directory.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "MOTO_PORT": str(port)}
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    log = open(directory / "log", "ab")  # noqa: SIM115 - handed to the server, which outlives this call
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    log.close()
    _SERVERS[directory] = process
    (directory / "pid").write_text(str(process.pid))
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"moto_server exited with {process.returncode}: {(directory / 'log').read_text()[-2000:]}"
            )
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                break
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() > deadline:
                stop(directory)
                log_text = (directory / "log").read_text()[-2000:]
                raise RuntimeError(f"moto_server did not answer at {endpoint}: {log_text}") from exc
            time.sleep(0.1)
    if bucket is not None:
        create_bucket(endpoint, bucket)
    return endpoint


def create_bucket(endpoint: str, bucket: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=CREDENTIALS["AWS_REGION"],
    )
    client.create_bucket(Bucket=bucket)


def stop(directory: Path) -> None:
    """Stop the server started in ``directory`` (nothing if none runs)."""
    pid_file = directory / "pid"
    ours = _SERVERS.pop(directory, None)
    if ours is not None:
        ours.terminate()
        try:
            ours.wait(timeout=10)
        except subprocess.TimeoutExpired:
            ours.kill()
            ours.wait()
        pid_file.unlink(missing_ok=True)
        return
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    try:  # started by another ``python -m tests._s3 start``, which has exited: not our child to wait for
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "start":
        print(start(where))
    else:
        stop(where)
