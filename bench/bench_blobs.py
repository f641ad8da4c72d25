"""Blob-store throughput: put, get and range reads on the local folder and on an S3 bucket (moto).

    python bench/bench_blobs.py                          # starts moto_server on 127.0.0.1, ~1 minute
    python bench/bench_blobs.py --endpoint http://127.0.0.1:9000 --bucket mine   # another endpoint

Each operation sits next to its floor, measured in the same run on the same bytes:
plain file I/O (write + fsync, read, seek + read) for both stores, and for the bucket also
the raw boto3 call with no store logic (put_object, get_object, a ranged get_object), so
``x_file`` is the price of the medium and ``x_raw`` the price of our code (hashing,
staging, put-if-absent, the existence check). moto keeps objects in its own process's
memory on this machine: the bucket figures are a loopback HTTP server's, not a network's.
Prints a table (stderr) and the JSON (stdout), written to ``bench/results/blobs-<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import machine, print_table, write_results

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _s3 import BUCKET, client_env, create_bucket, start, stop  # noqa: E402

from mcp_memory_server.storage.blobs import BlobStore, LocalBlobStore  # noqa: E402
from mcp_memory_server.storage.objectstore import S3BlobStore  # noqa: E402

MiB = 1 << 20


def _rate(fn: Callable[[], Any], repeat: int) -> float:
    """Best-of-``repeat`` seconds for one call of ``fn`` (the least disturbed by the other load)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _file_floor(work: Path, payloads: list[bytes], big: bytes, ranges: list[int], range_len: int) -> dict[str, float]:
    folder = work / "floor"
    folder.mkdir()

    def put_small() -> None:
        for n, data in enumerate(payloads):
            with open(folder / f"s{n}-{random.random()}", "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())

    def put_big() -> None:
        with open(folder / f"big-{random.random()}", "wb") as out:
            out.write(big)
            out.flush()
            os.fsync(out.fileno())

    (folder / "big").write_bytes(big)
    for n, data in enumerate(payloads):
        (folder / f"small{n}").write_bytes(data)

    def get_small() -> None:
        for n in range(len(payloads)):
            (folder / f"small{n}").read_bytes()

    def get_big() -> None:
        (folder / "big").read_bytes()

    def ranged() -> None:
        with open(folder / "big", "rb") as handle:
            for offset in ranges:
                handle.seek(offset)
                handle.read(range_len)

    return _measure(put_small, put_big, get_small, get_big, ranged)


def _raw_s3_floor(
    client: Any, prefix: str, payloads: list[bytes], big: bytes, ranges: list[int], range_len: int
) -> dict[str, float]:
    client.put_object(Bucket=BUCKET, Key=f"{prefix}/big", Body=big)
    for n, data in enumerate(payloads):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/small{n}", Body=data)

    def put_small() -> None:
        for n, data in enumerate(payloads):
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/w{n}-{random.random()}", Body=data)

    def put_big() -> None:
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/bigw-{random.random()}", Body=big)

    def get_small() -> None:
        for n in range(len(payloads)):
            client.get_object(Bucket=BUCKET, Key=f"{prefix}/small{n}")["Body"].read()

    def get_big() -> None:
        client.get_object(Bucket=BUCKET, Key=f"{prefix}/big")["Body"].read()

    def ranged() -> None:
        for offset in ranges:
            range_header = f"bytes={offset}-{offset + range_len - 1}"
            client.get_object(Bucket=BUCKET, Key=f"{prefix}/big", Range=range_header)["Body"].read()

    return _measure(put_small, put_big, get_small, get_big, ranged)


def _store(store: BlobStore, payloads: list[bytes], big: bytes, ranges: list[int], range_len: int) -> dict[str, float]:
    rng = random.Random(1)
    big_digest = store.put_bytes(big).sha256
    small_digests = [store.put_bytes(data).sha256 for data in payloads]

    def fresh(data: bytes) -> bytes:  # new bytes each round, so put-if-absent really writes
        return rng.randbytes(8) + data[8:]

    def put_small() -> None:
        for data in payloads:
            store.put_bytes(fresh(data))

    def put_big() -> None:
        altered = fresh(big)
        store.put_stream(iter(altered[at : at + MiB] for at in range(0, len(altered), MiB)))

    def get_small() -> None:
        for digest in small_digests:
            store.read(digest)

    def get_big() -> None:
        store.read(big_digest)

    def ranged() -> None:
        for offset in ranges:
            store.read(big_digest, offset, range_len)

    return _measure(put_small, put_big, get_small, get_big, ranged)


_REPEAT = 3
_SHAPE: dict[str, int] = {}


def _measure(*fns: Callable[[], None]) -> dict[str, float]:
    put_small, put_big, get_small, get_big, ranged = fns
    small_n, big_bytes, range_n = _SHAPE["small_n"], _SHAPE["big_bytes"], _SHAPE["range_n"]
    return {
        "put_small_ops_s": small_n / _rate(put_small, _REPEAT),
        "put_big_mib_s": big_bytes / MiB / _rate(put_big, _REPEAT),
        "get_small_ops_s": small_n / _rate(get_small, _REPEAT),
        "get_big_mib_s": big_bytes / MiB / _rate(get_big, _REPEAT),
        "range_read_ops_s": range_n / _rate(ranged, _REPEAT),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", help="an S3 endpoint URL (default: start moto_server on 127.0.0.1)")
    parser.add_argument("--small", type=int, default=50, help="small blobs per round")
    parser.add_argument("--small-kib", type=int, default=4, help="size of a small blob, KiB")
    parser.add_argument("--big-mib", type=int, default=32, help="size of the big blob, MiB (multipart over 8)")
    parser.add_argument("--ranges", type=int, default=50, help="range reads per round")
    parser.add_argument("--range-kib", type=int, default=64, help="bytes per range read, KiB")
    args = parser.parse_args()
    rng = random.Random(0)
    payloads = [rng.randbytes(args.small_kib * 1024) for _ in range(args.small)]
    big = rng.randbytes(args.big_mib * MiB)
    range_len = args.range_kib * 1024
    ranges = [rng.randrange(0, len(big) - range_len) for _ in range(args.ranges)]
    _SHAPE.update(small_n=args.small, big_bytes=len(big), range_n=args.ranges)
    work = Path(tempfile.mkdtemp(prefix="bench-blobs-"))
    moto_dir = work / "moto"
    try:
        endpoint = args.endpoint or start(moto_dir)
        if args.endpoint:
            try:
                create_bucket(endpoint, BUCKET)
            except Exception as exc:
                if "BucketAlready" not in str(exc):
                    raise
        os.environ.update(client_env(endpoint))
        prefix = f"bench-{os.getpid()}-{int(time.time())}"
        s3 = S3BlobStore(BUCKET, f"{prefix}/store", work / "cache")
        rows = {
            "file_floor": _file_floor(work, payloads, big, ranges, range_len),
            "local_store": _store(LocalBlobStore(work / "blobs"), payloads, big, ranges, range_len),
            "s3_raw_floor": _raw_s3_floor(s3._client, f"{prefix}/raw", payloads, big, ranges, range_len),
            "s3_store": _store(s3, payloads, big, ranges, range_len),
        }
    finally:
        if not args.endpoint:
            stop(moto_dir)
        shutil.rmtree(work, ignore_errors=True)
    metrics = list(rows["file_floor"])
    table = []
    for metric in metrics:
        floor, raw = rows["file_floor"][metric], rows["s3_raw_floor"][metric]
        local, bucket = rows["local_store"][metric], rows["s3_store"][metric]
        table.append([
            metric, f"{floor:.1f}", f"{local:.1f}", f"{local / floor:.2f}", f"{raw:.1f}", f"{bucket:.1f}",
            f"{bucket / floor:.3f}", f"{bucket / raw:.2f}",
        ])  # fmt: skip
    print_table(
        f"blob throughput (higher is better; small={args.small_kib} KiB x {args.small}, big={args.big_mib} MiB, "
        f"ranges={args.range_kib} KiB x {args.ranges}; best of {_REPEAT})",
        ["metric", "file floor", "local", "local x_file", "s3 raw", "s3 store", "s3 x_file", "s3 x_raw"],
        table,
    )
    results = {
        "machine": machine(),
        "shape": vars(args) | {"endpoint": args.endpoint or "moto_server on 127.0.0.1"},
        "rates": {name: {k: round(v, 2) for k, v in row.items()} for name, row in rows.items()},
        "ratios": {
            metric: {
                "local_x_file": round(rows["local_store"][metric] / rows["file_floor"][metric], 3),
                "s3_x_file": round(rows["s3_store"][metric] / rows["file_floor"][metric], 4),
                "s3_x_raw": round(rows["s3_store"][metric] / rows["s3_raw_floor"][metric], 3),
            }
            for metric in metrics
        },
    }
    path = write_results("blobs", results)
    print(json.dumps(results, indent=2))
    print(f"\nwritten to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
