"""A run folder's life: checked before anything is written, locked while a run owns it, tidied on start.

* ``check_out_folder`` (no writes): ``--out`` must be a folder (or a path where one can be made);
  a folder that already holds files is refused unless ``resume`` (it must then have something to
  resume) or ``overwrite`` (it must look like a distill run folder, whose files are then replaced).
* ``RunLock``: ``<run>/.lock`` holds the owner's pid under an exclusive ``flock``; a second process
  on the same folder is refused. The kernel drops the lock when its owner dies, even by ``kill -9``.
* ``tidy``: removes temporary files a killed atomic write left (``.*.tmp``), and on ``overwrite``
  the previous run's files, ONNX exports included.
* ``append_missing_records``: the epoch records kept in a checkpoint's trainer state are
  re-appended to ``metrics.jsonl`` on resume when a kill fell between the checkpoint and the line.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path

from distill.errors import ConfigError, DistillError

LOCK_NAME = ".lock"
# What a run writes at its top level; a folder holding one of them is a used run folder.
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "report.html", "export.json")
RUN_FOLDERS = ("checkpoints", "cache")


class RunFolderBusy(DistillError):
    """Another process holds the run folder's lock."""


def _is_used(path: Path) -> bool:
    return path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir())


def is_run_folder(path: Path) -> bool:
    return any((path / name).exists() for name in (*RUN_FILES, *RUN_FOLDERS))


def resumable(path: Path) -> bool:
    """A folder with at least one resume checkpoint (checkpoints/<model>-last.safetensors)."""
    return any((path / "checkpoints").glob("*-last.safetensors"))


def check_writable_folder(path: Path, option: str = "--out") -> None:
    """``path`` is a folder, or can become one: neither it nor a parent is a file."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            if not candidate.is_dir():
                what = "is" if candidate == path else f"is below {candidate}, which is"
                raise ConfigError(f"{option} {path} {what} a file, not a folder; give a folder path")
            if not os.access(candidate, os.W_OK | os.X_OK):
                raise ConfigError(f"{option} {path}: cannot write in {candidate} (permission denied); "
                                  f"choose another folder")
            return


def check_out_folder(path: Path, resume: bool = False, overwrite: bool = False, locked: bool = False) -> None:
    """Refuse a run folder that cannot be used as asked, before anything is written."""
    path = Path(path)
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it: give one of them")
    check_writable_folder(path)
    owner = None if locked else RunLock(path).holder()
    if owner is not None:
        raise RunFolderBusy(f"{path} is in use by another distill run (pid {owner}, lock file {path / LOCK_NAME}); "
                            f"wait for it to finish, or use another --out")
    if resume:
        if not resumable(path):
            state = "does not exist" if not path.exists() else "has no checkpoints/*-last.safetensors"
            raise ConfigError(f"--resume: {path} has nothing to resume (it {state}); run without --resume "
                              f"to start a new run there{' (add --overwrite)' if _is_used(path) else ''}")
        return
    if not _is_used(path):
        return
    if not overwrite:
        raise ConfigError(f"--out {path} already holds files{' of a run' if is_run_folder(path) else ''}; "
                          f"pass --resume to continue that run, --overwrite to replace it, or choose another folder")
    if not is_run_folder(path):
        raise ConfigError(f"--overwrite: {path} holds files that are not a distill run's; choose another folder")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Temporary files of atomic writes a killed process left behind (``.NAME.XXXX.tmp``)."""
    removed = []
    for folder in (path, path / "checkpoints", path / "cache"):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                    removed.append(tmp)
    return removed


def clear_run(path: Path) -> None:
    """``--overwrite``: remove the previous run's files (an export's ONNX models too)."""
    for name in RUN_FILES:
        with contextlib.suppress(FileNotFoundError):
            (path / name).unlink()
    for onnx in path.glob("*.onnx"):
        onnx.unlink()
    for name in RUN_FOLDERS:
        if (path / name).is_dir():
            shutil.rmtree(path / name)


class RunLock:
    """An exclusive lock on a run folder: ``<run>/.lock`` with the owner's pid, held with ``flock``."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        import fcntl

        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                owner = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunFolderBusy(f"{self.path.parent} is in use by another distill run (pid {owner}, lock file "
                                    f"{self.path}); wait for it to finish, or use another --out") from None
            try:  # the previous owner may have removed the file between our open and our lock
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def holder(self) -> str | None:
        """The pid written by the process that holds the lock now, or None when nobody does."""
        import fcntl

        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        finally:
            os.close(fd)  # closing drops a shared lock we may have taken
        return None

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # while still locked, so nobody else holds a lock on this file
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def open_run_folder(path: Path, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Make, lock and tidy the run folder; call once the config and the data have been checked."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path).acquire()
    try:  # again, under the lock: another run may have used the folder since the first check
        check_out_folder(path, resume, overwrite, locked=True)
    except DistillError:
        lock.release()
        raise
    if overwrite:
        clear_run(path)
    remove_stale_temporaries(path)
    return lock


def read_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; a torn last line (a kill mid-write) is left out."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def append_missing_records(path: Path | None, model: str, history: list[dict]) -> int:
    """Append the epochs of ``history`` that ``metrics.jsonl`` lacks for ``model``; returns how many."""
    if path is None:
        return 0
    text = path.read_text(errors="replace") if path.is_file() else ""
    if text and not text.endswith("\n"):  # a torn line: drop it, its epoch is re-appended from the state
        from distill.io import atomic_write_text

        text = text[: text.rfind("\n") + 1]
        atomic_write_text(path, text)
    present = {(r.get("model"), r.get("epoch")) for r in read_records(path)}
    missing = [r for r in history if (r.get("model", model), r.get("epoch")) not in present]
    if missing:
        with open(path, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in missing)
    return len(missing)
