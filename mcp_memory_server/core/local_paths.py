"""Server-local paths: only regular files and directories under the allowed roots.

Checked after resolving symlinks, so a link inside an allowed root that points outside
it is refused like the outside path itself.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import AccessDenied, InvalidInput, NotFound

__all__ = ["resolve_allowed", "walk_regular_files"]


def _roots_text(roots: Sequence[Path]) -> str:
    return ", ".join(str(r) for r in roots)


def resolve_allowed(path: str | os.PathLike[str], roots: Sequence[Path], *, must_exist: bool = True) -> Path:
    """Resolve ``path`` (symlinks included) and check it lies under one of ``roots``.

    Raises:
        InvalidInput: the path is empty or contains NUL.
        NotFound: ``must_exist`` and nothing is there.
        AccessDenied: the resolved path is outside the roots, or is a FIFO, socket or device.
    """
    raw = os.fspath(path)
    if not raw or "\x00" in raw:
        raise InvalidInput("path must be a non-empty path without NUL characters")
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        candidate = Path.cwd() / candidate
    try:
        resolved = candidate.resolve(strict=must_exist)
    except FileNotFoundError:
        raise NotFound(f"path {raw!r} does not exist on the server") from None
    except (OSError, RuntimeError) as exc:
        raise AccessDenied(f"path {raw!r} cannot be resolved: {exc}") from None
    if not any(resolved.is_relative_to(root) for root in roots):
        raise AccessDenied(
            f"path {raw!r} resolves to {resolved}, outside the allowed roots ({_roots_text(roots)}); "
            "start the server with --allow-path to allow another root"
        )
    if must_exist:
        mode = resolved.stat().st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise AccessDenied(f"path {raw!r} is not a regular file or directory (FIFO, socket or device)")
    return resolved


def walk_regular_files(root: Path, roots: Sequence[Path]) -> Iterator[tuple[str, Path]]:
    """Yield ``(relative POSIX path, resolved file)`` for every file under ``root``, sorted.

    Raises:
        AccessDenied: an entry is special, or a symlink leads outside the roots or to a directory.
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():
                raise AccessDenied(
                    f"{base / name} is a symlink to a directory; directory links are not followed, "
                    "copy the target in instead"
                )
        for name in sorted(filenames):
            entry = base / name
            resolved = resolve_allowed(entry, roots)
            if not resolved.is_file():
                raise AccessDenied(f"{entry} is not a regular file")
            yield entry.relative_to(root).as_posix(), resolved
