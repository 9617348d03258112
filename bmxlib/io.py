"""Small, dull artifact helpers: atomic writes of text, JSON, torch and npz files, and
JSON lines.

Every write goes to a temporary file in the target's folder, is flushed to disk and then
renamed over the target, so a reader (or a resumed run after a kill) sees either the old
or the new file, never half of one. Ctrl-C and SIGTERM wait until a write is done
(:func:`uninterrupted`). Files get the permissions the user's umask gives
(``tempfile.mkstemp`` alone would leave them 0600).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

TEMPORARY_PREFIX = "."  # temporaries are ``.<name>.<random>`` beside their target
TEMPORARY_INFIX = ".tmp-"


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()

#: Fault injection for the kill-and-resume tests: ``kill-before-rename:<file name>:<n>``
#: SIGKILLs this process on the n-th atomic write of that file, after the temporary is
#: complete and before it replaces the target (the worst moment for a writer to die).
FAULT_ENV = "BMXLIB_FAULT"
_writes: dict[str, int] = {}


def _maybe_die(path: Path) -> None:
    spec = os.environ.get(FAULT_ENV, "")
    if not spec.startswith("kill-before-rename:"):
        return
    _, name, nth = spec.split(":")
    if path.name == name:
        _writes[name] = _writes.get(name, 0) + 1
        if _writes[name] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def uninterrupted():
    """Hold Ctrl-C and SIGTERM until the block ends, then deliver them to the handlers
    that were in place.

    A stop that lands inside a serializer unwinds it half-done, and the serializer's own
    clean-up error replaces the stop (``np.savez_compressed``'s zip file: "Can't close the
    ZIP file while there is an open writing handle"), so the command would report a
    failure instead of saying how to continue. Holding the signal for the length of one
    file write keeps both the file and the stop. A nested block hands what it held to the
    outer one's handler; outside the main thread (where Python cannot set handlers) the
    block holds nothing.
    """
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    if threading.current_thread() is not threading.main_thread() or None in previous.values():
        yield  # None: a handler set outside Python
        return
    held: list[int] = []
    for number in STOP_SIGNALS:
        signal.signal(number, lambda signum, _frame: held.append(signum))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(held):  # the restored handler runs now (raise_signal
            signal.raise_signal(number)  # checks at once), each signal once


def kill_if_stuck(processes, *, after_s: float) -> threading.Timer:
    """Start a daemon timer that, ``after_s`` seconds from now, asks each of ``processes``
    (``multiprocessing.Process``, already told to stop) still running for its stacks
    (SIGUSR1: ``faulthandler``, where the process registered it), SIGKILLs it and says so on
    stderr. Processes that have ended by then are left alone, so the timer may outlive
    them; ``cancel()`` it to be tidy.

    A stop must end: a sweep worker stuck while unwinding once held a Ctrl-C'd sweep past
    two minutes. Killing it can leak its semaphores, the lesser harm. The timer reads the
    processes' sentinels and never reaps them, so their owner still joins them.
    """
    from multiprocessing.connection import wait  # only a stopped sweep needs it

    pids = {process.sentinel: process.pid for process in processes}

    def send_each(stuck: list[int], number: int) -> None:
        for pid in stuck:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(pid, number)

    def kill_the_stuck() -> None:
        try:
            ended = set(wait(list(pids), timeout=0))
        except (OSError, ValueError):  # a sentinel closed by its owner: it has ended
            return
        stuck = [pid for sentinel, pid in pids.items() if sentinel not in ended]
        if not stuck:
            return
        send_each(stuck, signal.SIGUSR1)
        time.sleep(1.0)  # faulthandler writes the stacks
        send_each(stuck, signal.SIGKILL)
        for pid in stuck:
            print(f"bmx: process {pid} did not stop within {after_s:g} s; killed it (its "
                  "stacks, where it could write them, are above)", file=sys.stderr)

    timer = threading.Timer(after_s, kill_the_stuck)
    timer.daemon = True
    timer.start()
    return timer


def make_folder(path: Path, what: str) -> None:
    """``path.mkdir(parents=True, exist_ok=True)``; where that fails (a file in the way, a
    read-only or special file system), an error of the same OSError type naming ``what``
    (e.g. "run directory"), the folder and the reason, in one line."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # exist_ok covers a folder: what is there is not one
        raise NotADirectoryError(f"the {what} {path} is a file, not a folder") from None
    except OSError as err:
        raise type(err)(f"cannot create the {what} {path}: {err.strerror or err}") from None


def check_can_write(path: Path, what: str) -> None:
    """Make sure a file can be written at ``path`` before the work that produces it: its
    folder exists and takes a file (:func:`refusal`). Raises an OSError naming ``what``, the
    path and the reason, in one line; writes nothing."""
    if path.is_dir():
        raise IsADirectoryError(f"the {what} {path} is a folder, not a file name")
    if not path.parent.is_dir():
        state = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise FileNotFoundError(f"the {what} {path}: its folder {path.parent} {state}")
    if reason := refusal(path.parent):
        raise OSError(f"cannot write the {what} {path}: {reason}")


def check_folder_writable(folder: Path, what: str) -> None:
    """Make sure ``folder`` can be made (where missing) and written in, before any work: its
    nearest existing ancestor is a folder that takes a file (:func:`refusal`). Raises an
    OSError naming ``what``, the folder and the reason, in one line; writes nothing."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise NotADirectoryError(f"the {what} {folder}: {existing} is a file, not a folder")
    if reason := refusal(existing):
        raise OSError(f"cannot write in {existing} for the {what} {folder}: {reason}")


def refusal(folder: Path) -> str | None:
    """Why ``folder`` does not take a new file (the OS's reason), or None when it does: a
    temporary file is created there and removed. ``os.access`` is not enough: root passes
    it on read-only and special file systems."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as err:
        return err.strerror or str(err)


def _atomic_replace(path: Path, write) -> None:
    with uninterrupted():
        _replace_with_temporary(Path(path), write)


def _replace_with_temporary(path: Path, write) -> None:
    make_folder(path.parent, f"folder of {path.name}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMPORARY_PREFIX}{path.name}{TEMPORARY_INFIX}",
                                   dir=path.parent)
    except OSError as err:  # name the file asked for, not the temporary's random name
        raise type(err)(f"cannot write {path}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        _maybe_die(path)
        os.replace(tmp, path)  # atomic on POSIX: readers see the old or the new file
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries a killed writer left in ``folder`` (and below); returns them.

    Only files named like this module's temporaries (``.<name>.tmp-<random>``) are
    touched, so nothing a user put there is removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.rglob(f"{TEMPORARY_PREFIX}*{TEMPORARY_INFIX}*") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def atomic_write_text(path: str | Path, text: str) -> None:
    _atomic_replace(Path(path), lambda h: h.write(text.encode()))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    _atomic_replace(Path(path), lambda h: h.write(data))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(to_jsonable(obj), indent=2) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    _atomic_replace(Path(path), lambda handle: torch.save(obj, handle))


def atomic_savez(path: str | Path, **arrays: np.ndarray) -> None:
    _atomic_replace(Path(path), lambda handle: np.savez_compressed(handle, **arrays))


def to_jsonable(obj: Any) -> Any:
    """Numpy / torch scalars and arrays to plain JSON; NaN and inf become null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().numpy()
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line; the whole file is rewritten atomically (it stays small)."""
    path = Path(path)
    old = path.read_text() if path.exists() else ""
    atomic_write_text(path, old + json.dumps(to_jsonable(record)) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file ([] if it does not exist); ValueError names the
    first line that is not valid JSON."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(_read_utf8(path).splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path} line {number} is not valid JSON") from None
    return records


def read_json(path: str | Path) -> Any:
    """A JSON file's contents ({} if it does not exist); ValueError names a corrupt file."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        return json.loads(_read_utf8(path))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON (line {err.lineno}): the file is "
                         "corrupt") from None


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of an .npz file ({} if it does not exist; pickled objects refused);
    ValueError names a corrupt file."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path} is not a readable .npz file ({err.__class__.__name__}): "
                         "the file is corrupt") from None


def _read_utf8(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}): the file is "
                         "corrupt") from None


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace a JSON-lines file with ``records`` (atomically)."""
    atomic_write_text(path, "".join(json.dumps(to_jsonable(r)) + "\n" for r in records))


def file_digest(path: str | Path, *, length: int = 16) -> str:
    """The first ``length`` hex digits of the file's SHA-256."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]
