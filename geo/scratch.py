"""Scratch files under MEDIA_ROOT/tmp: one folder per process, removed once that process is gone.

Uploads are streamed here (`ScratchFileUploadHandler`, Django's FILE_UPLOAD_HANDLERS), and the normalised copy of a
raster is written here before its final rename (one file system). Each request removes its own files on every path
(refusal, exception, success). What a process cannot remove because it was killed (SIGKILL, out of memory, a
gunicorn worker timeout) is removed by the next process that starts or first needs a scratch folder:

- each process holds an exclusive lock (flock) on its folder (``scratch-<host>-<pid>-<random>``) for as long as it
  lives; the kernel releases it when the process dies, however it dies;
- `scratch_sweep` removes every other such folder whose lock it can take, so never the folder of a live process;
- anything else in MEDIA_ROOT/tmp (a loose file, another folder), and a scratch folder on a file system that cannot
  lock (some NFS mounts), is removed once nothing in it has changed for SCRATCH_STALE_S.

Called at start-up by `geo.apps.GeoConfig.ready`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, TemporaryFileUploadHandler

__all__ = ["SCRATCH_STALE_S", "ScratchFileUploadHandler", "scratch_dir", "scratch_root", "scratch_sweep"]

logger = logging.getLogger(__name__)

SCRATCH_FOLDER = "tmp"
SCRATCH_PREFIX = "scratch-"
# Where locks do not work: a scratch folder unchanged this long belongs to no running request (the longest
# ingest of a county-sized raster takes minutes).
SCRATCH_STALE_S = 6 * 3600

_lock = threading.Lock()
_owned: dict[str, tuple[int, Path, int | None]] = {}  # "folder" -> (pid, folder, fd holding the lock)


def scratch_root() -> Path:
    """MEDIA_ROOT/tmp: every process's scratch folder is in here."""
    return Path(settings.MEDIA_ROOT) / SCRATCH_FOLDER


def scratch_dir() -> Path:
    """This process's scratch folder (created, locked and the others swept on first use; again after a fork)."""
    root = scratch_root()
    with _lock:
        owned = _owned.get("folder")
        if owned is not None and owned[0] == os.getpid() and owned[1].parent == root and owned[1].is_dir():
            return owned[1]
        if owned is not None and owned[0] == os.getpid():
            _release(owned)  # MEDIA_ROOT changed (tests do), or the folder was removed by hand
        root.mkdir(parents=True, exist_ok=True)
        folder, fd = _create_locked(root)
        _owned["folder"] = (os.getpid(), folder, fd)
    scratch_sweep(root)
    return folder


def _create_locked(root: Path) -> tuple[Path, int | None]:
    prefix = f"{SCRATCH_PREFIX}{socket.gethostname()}-{os.getpid()}-"
    while True:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a sweep locked it between mkdtemp and here, and is removing it
            os.close(fd)
            continue
        except OSError:  # this file system cannot lock: the age rule applies to this folder
            os.close(fd)
            return folder, None
        # A sweep may have removed the folder between mkdtemp and the lock: it must still be the one we created.
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(folder)):
                return folder, fd
        os.close(fd)


def _release(owned: tuple[int, Path, int | None]) -> None:
    _, folder, fd = owned
    if fd is not None:
        os.close(fd)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only if empty: a file in it is still some request's


def _newest_change(path: Path) -> float:
    newest = path.lstat().st_mtime
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            with contextlib.suppress(FileNotFoundError):
                newest = max(newest, child.lstat().st_mtime)
    return newest


def _is_stale(path: Path, now: float) -> bool:
    try:
        return now - _newest_change(path) > SCRATCH_STALE_S
    except FileNotFoundError:
        return False


def scratch_sweep(root: Path | None = None) -> list[Path]:
    """Remove what dead processes left in `root` (default MEDIA_ROOT/tmp) and return what was removed.

    A scratch folder is removed when its lock can be taken (its process is gone), or, on a file system without
    locks, when it is stale (SCRATCH_STALE_S); this process's own folder and the folders of live processes are
    kept. Anything else goes by the age rule alone.
    """
    root = scratch_root() if root is None else Path(root)
    owned = _owned.get("folder")
    mine = owned[1] if owned is not None and owned[0] == os.getpid() else None
    removed: list[Path] = []
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return removed
    now = time.time()
    for entry in entries:
        if entry == mine:
            continue
        try:
            if entry.name.startswith(SCRATCH_PREFIX) and entry.is_dir() and not entry.is_symlink():
                if _take_dead_folder(entry, now):
                    removed.append(entry)
            elif _is_stale(entry, now):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink()
                removed.append(entry)
        except OSError as exc:  # removed by another sweep meanwhile, or not ours to remove
            if exc.errno not in (errno.ENOENT, errno.EACCES, errno.EPERM):
                raise
    if removed:
        logger.info("removed %s scratch folder(s) or file(s) left in %s by processes that are gone", len(removed),
                    root)
    return removed


def _take_dead_folder(folder: Path, now: float) -> bool:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its process is alive
        except OSError:
            if not _is_stale(folder, now):
                return False
        shutil.rmtree(folder, ignore_errors=True)  # holding its lock, so no process takes it meanwhile
        return not folder.exists()
    finally:
        os.close(fd)


# --- Django's uploads -----------------------------------------------------------------------------------------


class ScratchUploadedFile(TemporaryUploadedFile):
    """An upload streamed to disk in this process's scratch folder, not FILE_UPLOAD_TEMP_DIR: a killed process's
    half-received upload is swept like its other scratch files."""

    def __init__(self, name, content_type, size, charset, content_type_extra=None):
        _, ext = os.path.splitext(name)
        file = tempfile.NamedTemporaryFile(suffix=".upload" + ext[:16], dir=scratch_dir())  # noqa: SIM115 (closed by Django)
        UploadedFile.__init__(self, file, name, content_type, size, charset, content_type_extra)


class ScratchFileUploadHandler(TemporaryFileUploadHandler):
    """Django's TemporaryFileUploadHandler, writing into the scratch folder (FILE_UPLOAD_HANDLERS)."""

    def new_file(self, *args, **kwargs):
        FileUploadHandler.new_file(self, *args, **kwargs)
        self.file = ScratchUploadedFile(self.file_name, self.content_type, 0, self.charset, self.content_type_extra)
