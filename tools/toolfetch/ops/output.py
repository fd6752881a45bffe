"""``fetch --output DIR``: a cached tree materialised where a build system wants real files."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from toolfetch.core.errors import LocalIOError
from toolfetch.core.tempnames import temp_name


def materialize(tree: Path, output: Path) -> None:
    """Copy a cached tree to ``output`` by hardlinks (falling back to copies).

    Used by the build-system shims so sandboxed actions see real files. ``output`` must be
    absent or empty; files keep their read-only modes, directories are writable so build
    systems can clean them. The copy is built in a hidden directory beside ``output`` (a
    temp name of :mod:`toolfetch.core.tempnames`), then renamed into place: a failure
    removes it, leaving ``output`` as it was, and names the file under ``output`` that could
    not be written. An empty mount point
    (rename: EBUSY) is filled in place instead, and emptied again on a failure.
    """
    import contextlib

    from toolfetch.core.fs import remove_tree

    temp: Path | None = None
    try:
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise LocalIOError(f"--output {output}: exists and is not an empty directory; "
                               "toolfetch writes only into an absent or empty one")
        real = Path(os.path.realpath(output)) if output.is_symlink() else output
        real.parent.mkdir(parents=True, exist_ok=True)
        temp = real.with_name(temp_name(real.name, ".tree"))
        temp.mkdir()
        _copy_tree(tree, temp, output)
        with contextlib.suppress(FileNotFoundError):  # an empty directory's mode is kept
            os.chmod(temp, real.stat().st_mode & 0o7777)
        try:
            os.rename(temp, real)  # POSIX rename(2) replaces an empty directory atomically
        except OSError as e:
            if not real.is_dir() or any(real.iterdir()):
                raise
            if e.errno in (errno.EBUSY, errno.EXDEV):  # a mount point: it cannot be replaced
                _fill(tree, real, output)
                remove_tree(temp)
            else:
                real.rmdir()  # Windows: not onto a directory
                os.rename(temp, real)
    except BaseException as e:
        with contextlib.suppress(OSError):
            if temp is not None:
                remove_tree(temp)
        if isinstance(e, OSError):
            raise LocalIOError.of(e, f"--output {output}: cannot write the tree") from e
        raise


def _fill(tree: Path, real: Path, output: Path) -> None:
    """Copy ``tree`` into the empty directory ``real`` itself (a mount point, say, which no
    rename can replace); a failure empties it again."""
    from toolfetch.core.fs import remove_tree

    try:
        _copy_tree(tree, real, output)
    except BaseException:
        for child in real.iterdir():
            if child.is_dir() and not child.is_symlink():
                remove_tree(child)
            else:
                child.unlink()
        raise


def _copy_tree(tree: Path, dest: Path, output: Path) -> None:
    """Hardlink or copy ``tree`` into ``dest``; an OSError names the file under ``output``."""
    for dirpath, dirnames, filenames in os.walk(tree):
        rel = Path(dirpath).relative_to(tree)
        for name in dirnames + filenames:
            src, dst = Path(dirpath) / name, dest / rel / name
            try:
                if src.is_symlink():
                    os.symlink(os.readlink(src), dst)
                elif name in dirnames:
                    dst.mkdir()
                else:
                    try:
                        os.link(src, dst)
                    except OSError:  # another file system (EXDEV), or links refused
                        shutil.copy2(src, dst)
            except OSError as e:
                raise OSError(e.errno, e.strerror or str(e), str(output / rel / name)) from None
