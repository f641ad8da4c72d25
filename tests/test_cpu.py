"""A server process's numpy BLAS runs on ``embed_threads`` threads, so its spinning threads
do not take the core a hybrid search's BM25 helper runs on (``mcp_memory_server/_cpu.py``).

Each case is a real subprocess: BLAS reads its thread count once, when numpy loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _procs import clean_env

from mcp_memory_server._cpu import available_cores

REPORT = "from threadpoolctl import threadpool_info; import json; print(json.dumps([i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']))"

pytestmark = pytest.mark.skipif(available_cores() < 2, reason="one core: BLAS has one thread whatever is set")


def blas_threads(code: str, **env: str) -> list[int]:
    base = {
        k: v
        for k, v in clean_env(env).items()
        if k not in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
    }
    base.update(env)
    out = subprocess.run([sys.executable, "-c", f"{code}\n{REPORT}"], env=base, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    threads: list[int] = json.loads(out.stdout.strip().splitlines()[-1])
    assert threads, "numpy loaded no BLAS library threadpoolctl can see"
    return threads


def test_numpy_alone_uses_several_blas_threads() -> None:
    """The baseline the cap changes: without it, numpy's BLAS takes more than one thread here."""
    assert max(blas_threads("import numpy")) > 1


def test_the_cli_caps_blas_at_embed_threads(tmp_path: Path) -> None:
    """Any command (here ``stats``) sets the cap before numpy loads; --embed-threads raises it."""
    run = "from mcp_memory_server.cli import main; main(['stats', '--data-dir', {!r}{}]); import numpy"
    assert blas_threads(run.format(str(tmp_path / "a"), "")) == [1]
    assert blas_threads(run.format(str(tmp_path / "b"), ", '--embed-threads', '2'")) == [2]


def test_a_cap_set_after_numpy_loaded_reaches_the_loaded_library() -> None:
    assert blas_threads(
        "import numpy\nfrom mcp_memory_server._cpu import limit_blas_threads\nlimit_blas_threads(1)"
    ) == [1]


def test_the_users_own_blas_setting_is_kept(tmp_path: Path) -> None:
    run = f"from mcp_memory_server.cli import main; main(['stats', '--data-dir', {str(tmp_path)!r}]); import numpy"
    assert blas_threads(run, OPENBLAS_NUM_THREADS="2") == [2]
