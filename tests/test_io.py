"""Atomic artifact writes and JSON lines (bmxlib.io)."""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import tempfile
import time

import numpy as np
import pytest

from bmxlib import io
from bmxlib.io import (
    append_jsonl,
    atomic_savez,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    check_can_write,
    check_folder_writable,
    make_folder,
    read_json,
    read_jsonl,
    read_npz,
    remove_temporaries,
    to_jsonable,
    uninterrupted,
)


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": np.float32(1.5), "y": [np.int64(2)]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1.5, "y": [2]}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert len(list(tmp_path.iterdir())) == 1


def test_jsonl_append_and_read(tmp_path):
    path = tmp_path / "m.jsonl"
    for epoch in (1, 2, 3):
        append_jsonl(path, {"epoch": epoch, "mAP": math.nan if epoch == 2 else 0.5})
    assert [r["epoch"] for r in read_jsonl(path)] == [1, 2, 3]
    assert read_jsonl(path)[1]["mAP"] is None  # NaN becomes null, valid JSON


def test_readers_give_an_empty_result_for_a_missing_file(tmp_path):
    assert read_json(tmp_path / "a.json") == {} and read_npz(tmp_path / "a.npz") == {}
    assert read_jsonl(tmp_path / "a.jsonl") == []


def test_readers_return_what_was_written(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"x": [1, 2]})
    atomic_savez(tmp_path / "a.npz", clean=np.eye(2, dtype=np.uint8))
    assert read_json(tmp_path / "a.json") == {"x": [1, 2]}
    np.testing.assert_array_equal(read_npz(tmp_path / "a.npz")["clean"], np.eye(2))


@pytest.mark.parametrize(
    ("name", "content", "reader", "message"),
    [
        ("s.json", b"{", read_json, r"s\.json is not valid JSON \(line 1\)"),
        ("s.json", b"\xa1{}", read_json, r"s\.json is not UTF-8 text \(byte 0\)"),
        ("m.jsonl", b'{"epoch": 1}\n\xff', read_jsonl, r"m\.jsonl is not UTF-8 text \(byte 13\)"),
        ("l.npz", b"PK\x03\x04 cut", read_npz, r"l\.npz is not a readable \.npz file"),
        ("l.npz", b"", read_npz, r"l\.npz is not a readable \.npz file"),
    ],
    ids=["json-cut", "json-binary", "jsonl-binary", "npz-cut", "npz-empty"],
)
def test_a_corrupt_file_is_one_line_naming_it(tmp_path, name, content, reader, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message) as info:
        reader(tmp_path / name)
    assert "\n" not in str(info.value)


def test_read_npz_refuses_pickled_objects(tmp_path):
    np.savez(tmp_path / "o.npz", names=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"o\.npz is not a readable \.npz file"):
        read_npz(tmp_path / "o.npz")


def test_to_jsonable_handles_numpy_and_inf():
    assert to_jsonable({"a": np.array([1.0, np.inf]), "b": np.bool_(True)}) == {
        "a": [1.0, None], "b": True}


def test_files_get_the_umask_permissions_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        import importlib

        import bmxlib.io

        importlib.reload(bmxlib.io)  # FILE_MODE is read from the umask at import
        bmxlib.io.atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
        importlib.reload(bmxlib.io)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_stray_temporaries_are_removed_and_nothing_else(tmp_path):
    atomic_write_text(tmp_path / "keep.txt", "x")
    (tmp_path / "sub").mkdir()
    stray = tmp_path / "sub" / ".last.pt.tmp-abc123"
    stray.write_bytes(b"half")
    mine = tmp_path / ".hidden-user-file"
    mine.write_text("user")
    assert remove_temporaries(tmp_path) == [stray]
    assert not stray.exists() and mine.exists() and (tmp_path / "keep.txt").exists()


class Stopped(BaseException):
    """What the test's SIGTERM handler raises (as bmx's does: cli.Terminated)."""


class SignalsWhilePickled:
    """Sends SIGTERM to this process while a serializer pickles it: the stop lands inside
    the writer, as a `kill` can in a real run (CI once caught one inside savez's zip)."""

    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGTERM)
        return (dict, ())


@pytest.fixture
def sigterm_raises_stopped():
    def stop(signum, frame):
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("save", [
    lambda path: atomic_savez(path, held=np.array([SignalsWhilePickled()], dtype=object)),
    lambda path: atomic_torch_save(path, {"held": SignalsWhilePickled()}),
], ids=["savez", "torch_save"])
def test_a_stop_inside_a_serializer_waits_for_the_file_then_arrives(
        tmp_path, sigterm_raises_stopped, save):
    path = tmp_path / "state.bin"
    with pytest.raises(Stopped):  # the stop itself, not the zip writer's clean-up error
        save(path)
    assert path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]  # whole, no temporary


def test_uninterrupted_delivers_a_held_stop_once_at_the_end(sigterm_raises_stopped):
    # whatever the runner set (a background job starts with SIGINT ignored)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    reached = []
    with pytest.raises(Stopped):
        with uninterrupted():
            with uninterrupted():  # nested: the outer block holds
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
                reached.append("inner end")
            reached.append("outer end")
    assert reached == ["inner end", "outer end"]
    with uninterrupted():  # nothing left held for the next block
        reached.append("quiet")
    assert {number: signal.getsignal(number) for number in handlers} == handlers  # restored


def _sleep_once_ready(ready, seconds: float, *, ignores_sigterm: bool) -> None:
    import faulthandler
    import sys

    if ignores_sigterm:  # a worker stuck while it unwinds, registered as sweep's workers are
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    ready.set()
    time.sleep(seconds)


@pytest.mark.parametrize("ignores_sigterm", [True, False], ids=["stuck", "stops"])
def test_kill_if_stuck_kills_only_a_process_that_outlives_the_grace(ignores_sigterm, capfd):
    """A Ctrl-C'd sweep once waited past two minutes on a worker that did not unwind."""
    import multiprocessing

    from bmxlib.io import kill_if_stuck

    context = multiprocessing.get_context("fork")
    ready = context.Event()
    process = context.Process(target=_sleep_once_ready, args=(ready, 60),
                              kwargs={"ignores_sigterm": ignores_sigterm})
    process.start()
    assert ready.wait(timeout=30)  # its handlers are set before the stop
    process.terminate()
    timer = kill_if_stuck([process], after_s=0.5)
    process.join(timeout=20)
    timer.join(timeout=20)
    err = capfd.readouterr().err
    if ignores_sigterm:
        assert process.exitcode == -signal.SIGKILL
        assert "in _sleep_once_ready" in err  # its stacks, before the kill
        assert f"process {process.pid} did not stop within 0.5 s; killed it" in err
    else:
        assert process.exitcode == -signal.SIGTERM
        assert "did not stop" not in err


def test_make_folder_names_the_folder_and_the_reason_and_keeps_the_error_type(tmp_path):
    make_folder(tmp_path / "a" / "b", "run directory")
    make_folder(tmp_path / "a" / "b", "run directory")  # an existing folder is fine
    assert (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OSError) as caught:
        make_folder(tmp_path / "file" / "sweep", "sweep directory")
    assert isinstance(caught.value, (NotADirectoryError, FileExistsError))  # as mkdir's
    message = str(caught.value)
    assert message.startswith(f"cannot create the sweep directory {tmp_path}/file/sweep: ")
    assert "Errno" not in message and len(message.splitlines()) == 1


def test_make_folder_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "file").write_text("kept")
    with pytest.raises(NotADirectoryError, match="^the report folder .*file is a file, not a"):
        make_folder(tmp_path / "file", "report folder")
    assert (tmp_path / "file").read_text() == "kept"


def test_check_can_write_writes_nothing_and_names_what_cannot_be_written(tmp_path):
    check_can_write(tmp_path / "b.json", "bench output")
    assert list(tmp_path.iterdir()) == []  # the probe's temporary file is gone
    with pytest.raises(IsADirectoryError, match="^the bench output .* is a folder"):
        check_can_write(tmp_path, "bench output")
    with pytest.raises(FileNotFoundError, match="its folder .*new does not exist"):
        check_can_write(tmp_path / "new" / "b.json", "bench output")  # a typo, not made
    (tmp_path / "file").write_text("kept")
    with pytest.raises(FileNotFoundError, match="its folder .*file is a file, not a folder"):
        check_can_write(tmp_path / "file" / "b.json", "bench output")


def test_check_folder_writable_probes_the_nearest_existing_folder(tmp_path, monkeypatch):
    check_folder_writable(tmp_path / "a" / "b", "run directory")
    assert list(tmp_path.iterdir()) == []  # nothing made, nothing left
    (tmp_path / "file").write_text("kept")
    with pytest.raises(NotADirectoryError, match=f"{tmp_path}/file is a file, not a folder"):
        check_folder_writable(tmp_path / "file" / "run", "run directory")
    monkeypatch.setattr(io, "refusal", lambda folder: "Read-only file system")
    with pytest.raises(OSError, match=f"^cannot write in {tmp_path} for the run directory "
                                      f"{tmp_path}/a/b: Read-only file system$"):
        check_folder_writable(tmp_path / "a" / "b", "run directory")


def test_a_write_the_folder_refuses_names_the_target_not_the_temporary(tmp_path, monkeypatch):
    """`bmx bench --out /sys/b.json` once said "Permission denied: '/sys/.b.json.tmp-p_wduo8n'"."""
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".b.json.tmp-x"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=f"^cannot write {tmp_path}/b.json: Permission"):
        atomic_write_text(tmp_path / "b.json", "{}")
    monkeypatch.setattr(tempfile, "TemporaryFile", refuse)
    assert io.refusal(tmp_path) == "Permission denied"
    with pytest.raises(OSError, match="^cannot write the bench output .*: Permission denied$"):
        check_can_write(tmp_path / "b.json", "bench output")
