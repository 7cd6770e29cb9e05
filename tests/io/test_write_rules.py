"""The rules every output follows (issue 17): inputs untouched, outputs that do not collide,
one overwrite rule, writable places checked first, NPY pairs that never mix, leftovers of
killed writes cleaned or named, umask permissions."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from focuskit import StackFileError
from focuskit.io import (
    FocalStack,
    _atomic,
    atomic_output,
    check_output_folder,
    check_outputs,
    check_target,
    read_stack,
    record_writes,
    write_stack,
)


def stack(seed: int = 0, planes: int = 3) -> FocalStack:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 4000, size=(planes, 16, 24), dtype=np.uint16)
    return FocalStack(data, np.arange(planes, dtype=float), 0.5, metadata={"seed": seed})


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    """A folder nothing can be created in: mode 0555, or immutable when running as root."""
    folder = tmp_path / "locked"
    folder.mkdir()
    root = os.geteuid() == 0
    if root:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no folder is unwritable")
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
        if done.returncode != 0:
            pytest.skip("chattr +i is not supported here")
    else:
        folder.chmod(0o555)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            pytest.skip("the folder stayed writable")
        yield folder
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        else:
            folder.chmod(0o755)


# --- inputs ---------------------------------------------------------------------------------


def test_inputs_are_never_written_written_into_or_replaced(tmp_path: Path) -> None:
    tif = write_stack(stack(), tmp_path / "in.ome.tif")
    zarr_in = write_stack(stack(), tmp_path / "in.ome.zarr")
    npy = write_stack(stack(), tmp_path / "in.npy")
    cases = [
        (tif, "overwrite an input"),
        (zarr_in / "x.ome.tif", "inside"),  # a target inside an input dataset
        (zarr_in / "0" / "x.png", "inside"),
        (tmp_path / "in.npy.json", "overwrite an input"),  # the sidecar read with in.npy
    ]
    for target, why in cases:
        with pytest.raises(StackFileError, match=why):
            check_outputs({"-o": target}, overwrite=True, inputs=[tif, zarr_in, npy])
    # a folder output that would replace a folder holding an input
    sub = tmp_path / "sub.ome.zarr"
    sub.mkdir()
    (sub / "z.csv").write_text("0\n1\n")
    with pytest.raises(StackFileError, match="holds"):
        check_outputs({"-o": sub}, overwrite=True, inputs=[sub / "z.csv"])


def test_an_existing_stem_sidecar_counts_as_an_input(tmp_path: Path) -> None:
    """``x.json`` beside ``x.ome.tif`` is read with it: a calibration -o x.json would replace
    the stack's metadata."""
    tif = write_stack(stack(), tmp_path / "x.ome.tif")
    sidecar = tmp_path / "x.json"
    assert check_outputs({"-o": sidecar}, overwrite=False, inputs=[tif]) == []  # not read yet
    sidecar.write_text(json.dumps({"pixel_size_um": 0.5}))
    with pytest.raises(StackFileError, match="overwrite an input"):
        check_outputs({"-o": sidecar}, overwrite=True, inputs=[tif])


# --- collisions and the overwrite rule ------------------------------------------------------


def test_two_outputs_of_one_command_may_not_collide(tmp_path: Path) -> None:
    x = tmp_path / "x.ome.tif"
    with pytest.raises(StackFileError, match="-o and --defocus-map would both write here"):
        check_outputs(
            {"-o": x, "--defocus-map": tmp_path / "sub" / ".." / "x.ome.tif"}, overwrite=True
        )
    with pytest.raises(StackFileError, match="both write"):
        check_outputs(
            {"-o": tmp_path / "a.ome.zarr", "--plot": tmp_path / "a.ome.zarr" / "p.png"},
            overwrite=True,
        )
    assert check_outputs({"-o": x, "--defocus-map": tmp_path / "d.ome.tif"}, overwrite=False) == []


def test_an_npy_sidecar_follows_the_overwrite_rule(tmp_path: Path) -> None:
    """``x.npy.json`` is an output of writing x.npy: an existing one is not replaced unasked."""
    sidecar = tmp_path / "x.npy.json"
    sidecar.write_text('{"keep": "me"}')
    with pytest.raises(StackFileError, match=r"x\.npy\.json: already exists — pass --overwrite"):
        write_stack(stack(), tmp_path / "x.npy")
    assert sidecar.read_text() == '{"keep": "me"}'
    assert not (tmp_path / "x.npy").exists()
    write_stack(stack(), tmp_path / "x.npy", overwrite=True)
    assert read_stack(tmp_path / "x.npy").metadata["seed"] == 0


def test_an_existing_plot_needs_overwrite_and_the_right_kind(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    png.write_bytes(b"old")
    with pytest.raises(StackFileError, match="pass --overwrite or choose another --plot"):
        check_outputs({"--plot": png}, overwrite=False)
    assert check_outputs({"--plot": png}, overwrite=True) == []
    (tmp_path / "d.png").mkdir()
    with pytest.raises(StackFileError, match="is a folder"):
        check_outputs({"--plot": tmp_path / "d.png"}, overwrite=True)


# --- writable places ------------------------------------------------------------------------


def test_an_unwritable_folder_is_refused_before_any_work(locked: Path) -> None:
    for name in ["s.ome.tif", "s.ome.zarr", "s.npy", "p.png"]:
        with pytest.raises(StackFileError, match="cannot write in"):
            check_outputs({"-o": locked / name}, overwrite=False)
    with pytest.raises(StackFileError, match="cannot write in"):
        write_stack(stack(), locked / "s.ome.tif")
    with pytest.raises(StackFileError, match="cannot write in"):
        check_output_folder(locked / "new" / "deeper")  # created later: its ancestor counts
    assert list(locked.iterdir()) == []


def test_an_output_folder_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(StackFileError, match="is a file, not a folder"):
        check_output_folder(tmp_path / "f.txt" / "out")
    with pytest.raises(StackFileError, match="does not exist"):
        check_target(tmp_path / "missing" / "p.png", overwrite=False)
    check_output_folder(tmp_path / "new" / "deeper")  # creatable: fine
    assert not (tmp_path / "new").exists() and hidden(tmp_path) == []


def test_an_immutable_target_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "p.png"
    png.write_bytes(b"old")
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("needs root and chattr")
    if subprocess.run(["chattr", "+i", str(png)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not supported here")
    try:
        with pytest.raises(StackFileError, match="immutable"):
            check_outputs({"--plot": png}, overwrite=True)
    finally:
        subprocess.run(["chattr", "-i", str(png)], check=False)


def test_a_failing_place_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    refused = pytest.raises(StackFileError, match=r"cannot write it \(Permission denied\)")
    with refused, atomic_output(tmp_path / "x.png", overwrite=False):
        raise PermissionError(13, "Permission denied")
    assert hidden(tmp_path) == []


# --- NPY pairs ------------------------------------------------------------------------------


def test_npy_array_and_sidecar_are_renamed_together_array_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt arriving between the two renames waits until both are done."""
    path = write_stack(stack(1), tmp_path / "s.npy")
    order: list[str] = []
    real = os.replace

    def replace(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        real(src, dst)
        order.append(Path(dst).name)
        if len(order) == 1:
            signal.raise_signal(signal.SIGINT)  # Ctrl-C right after the first rename

    monkeypatch.setattr(_atomic.os, "replace", replace)
    # Ctrl-C must raise even if the test runner was started with SIGINT ignored (a job
    # started in the background by a shell without job control).
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            write_stack(stack(2), path, overwrite=True)
    finally:
        signal.signal(signal.SIGINT, before)
    monkeypatch.undo()
    assert order == ["s.npy", "s.npy.json"]
    new = read_stack(path)
    assert new.metadata["seed"] == 2 and np.array_equal(new.data, stack(2).data)
    assert hidden(tmp_path) == []


def test_a_split_npy_pair_is_refused_on_reading(tmp_path: Path) -> None:
    """A crash between the renames (new pixels, old sidecar) is named, never read as one."""
    path = write_stack(stack(1), tmp_path / "s.npy")
    other = write_stack(stack(2), tmp_path / "o.npy")
    shutil.copyfile(other, path)  # the array renamed, the sidecar not
    with pytest.raises(StackFileError, match=r"sidecar s\.npy\.json was written for another array"):
        read_stack(path)
    # a sidecar written by hand (no fingerprint) is still read
    block = json.loads((tmp_path / "s.npy.json").read_text())
    del block["npy_array"]
    (tmp_path / "s.npy.json").write_text(json.dumps(block))
    assert np.array_equal(read_stack(path).data, stack(2).data)


# --- leftovers of killed writes -------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_a_dead_writer_are_cleaned_and_of_a_live_one_named(tmp_path: Path) -> None:
    target = tmp_path / "s.ome.tif"
    dead = tmp_path / f".s.ome.tif.tmp-{_atomic._HOST}-{_dead_pid()}-0123abcd"
    dead.write_bytes(b"half a file")
    live = tmp_path / f".s.ome.tif.tmp-{_atomic._HOST}-{os.getpid()}-89abcdef"
    live.write_bytes(b"maybe being written")
    legacy = tmp_path / ".s.ome.tif.tmp-deadbeef"  # focuskit < 0.3: no writer recorded
    legacy.mkdir()
    unrelated = tmp_path / ".s.ome.tif.notes"
    unrelated.write_text("mine")
    notes = check_outputs({"-o": target}, overwrite=False)
    assert not dead.exists() and live.exists() and legacy.exists() and unrelated.exists()
    text = "\n".join(notes)
    assert f"removed {dead.name}" in text
    assert str(live) in text and str(legacy) in text and "maybe running" in text


def test_an_old_folder_moved_aside_by_a_killed_overwrite_is_put_back(tmp_path: Path) -> None:
    """Killed between the two renames of a folder swap: the old complete output returns."""
    old = write_stack(stack(1), tmp_path / "s.ome.zarr")
    aside = tmp_path / f".s.ome.zarr.old-{_atomic._HOST}-{_dead_pid()}-0123abcd"
    os.replace(old, aside)
    new_tmp = tmp_path / f".s.ome.zarr.tmp-{_atomic._HOST}-{_dead_pid()}-89abcdef"
    new_tmp.mkdir()
    notes = check_outputs({"-o": old}, overwrite=True)
    assert any("put back" in n for n in notes)
    assert read_stack(old).metadata["seed"] == 1 and hidden(tmp_path) == []


# --- what was written, and with which permissions -------------------------------------------


def test_record_writes_lists_completed_outputs_only(tmp_path: Path) -> None:
    with record_writes() as written:
        write_stack(stack(), tmp_path / "a.npy")
        with pytest.raises(OSError), atomic_output(tmp_path / "b.png", overwrite=False) as tmp:
            tmp.write_bytes(b"half")
            raise OSError("disk on fire (simulated)")
    assert written == [tmp_path / "a.npy", tmp_path / "a.npy.json"]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_get_umask_permissions_whatever_the_writer_chose(
    tmp_path: Path, umask: int
) -> None:
    old = os.umask(umask)
    try:
        with atomic_output(tmp_path / "private.png", overwrite=False) as tmp:
            os.close(os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600))  # like mkstemp
        for name in ["s.ome.tif", "s.npy", "s.ome.zarr"]:
            write_stack(stack(), tmp_path / name)
    finally:
        os.umask(old)
    assert (tmp_path / "private.png").stat().st_mode & 0o777 == 0o666 & ~umask
    for name in ["s.ome.tif", "s.npy", "s.npy.json"]:
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert (tmp_path / "s.ome.zarr").stat().st_mode & 0o777 == 0o777 & ~umask
