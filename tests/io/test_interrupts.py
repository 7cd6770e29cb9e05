"""Real signals on a real `focuskit simulate` (issue 17, items 5 and 6).

SIGINT or SIGTERM at seeded random points of writing a 2048² stack over an existing one
leaves either the old complete output or the new complete output, no temporary file, and
never a claim that nothing was written when the new output is there. SIGKILL leaves a temporary
output that the next write of that target cleans.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

import focuskit
from focuskit.io import FocalStack, check_outputs, read_stack, write_stack

SRC = str(Path(focuskit.__file__).resolve().parent.parent)
# Two 2048² planes of beads: about 2 s of rendering, then 16 MB to write.
SIMULATE = [
    "simulate",
    "--preset",
    "deepr-40x-fluor",
    "--sample",
    "beads",
    "--size",
    "2048",
    "--z-range",
    "-5",
    "5",
    "--z-step",
    "10",
    "--seed",
    "2",
]
# Seconds a write takes here, roughly: the signal lands somewhere inside it (or just after).
WRITE_S = {".ome.tif": 0.3, ".ome.zarr": 1.5, ".npy": 0.01}
# SIGINT stays deliverable even if the test runner was started with it ignored.
CLI = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from focuskit.cli import main; main()"
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> FocalStack:
    """What an uninterrupted run writes."""
    path = tmp_path_factory.mktemp("ref") / "ref.npy"
    code, _, err = run_cli(*SIMULATE, "-o", path, "--json")
    assert code == 0, err
    return read_stack(path)


def old_stack() -> FocalStack:
    data = np.random.default_rng(7).integers(0, 1000, size=(3, 64, 64), dtype=np.uint16)
    return FocalStack(data, [0.0, 1.0, 2.0], 0.1, metadata={"old": True})


def _start(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_temp(folder: Path, name: str, child: subprocess.Popen[str]) -> bool:
    """Poll until the writer's temporary sibling appears (True) or the child ends (False)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(p.name.startswith(f".{name}.tmp-") for p in folder.iterdir()):
            return True
        if child.poll() is not None:
            return False
        time.sleep(0.002)
    child.kill()
    raise AssertionError("the write never started")


@pytest.mark.parametrize(
    ("suffix", "sig", "seed"),
    [
        (".ome.tif", signal.SIGINT, 1),
        (".ome.tif", signal.SIGTERM, 3),
        (".ome.zarr", signal.SIGINT, 4),
        (".ome.zarr", signal.SIGTERM, 2),
        (".npy", signal.SIGINT, 5),
        (".npy", signal.SIGTERM, 1),
    ],
)
def test_an_interrupted_overwrite_leaves_old_or_new_and_no_temp(
    tmp_path: Path, reference: FocalStack, suffix: str, sig: signal.Signals, seed: int
) -> None:
    out = tmp_path / f"s{suffix}"
    old = old_stack()
    write_stack(old, out)
    child = _start([*SIMULATE, "-o", str(out), "--overwrite"])
    if _wait_for_temp(tmp_path, out.name, child):
        time.sleep(random.Random(seed).uniform(0.0, WRITE_S[suffix]))
        child.send_signal(sig)
    _, err = child.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    found = read_stack(out)  # an NPY pair that does not match is refused here
    if found.metadata.get("old"):
        assert np.array_equal(found.data, old.data)
        assert child.returncode == 2 and "interrupted; nothing was written" in err, err
    else:
        assert np.array_equal(found.data, reference.data)
        assert found.metadata == reference.metadata
        assert list(found.z_um) == list(reference.z_um)
        # finished, or stopped after the rename: it must not claim to have written nothing
        # (a signal after the command's end may still end the process, with the output whole)
        assert "nothing was written" not in err, err


def test_sigterm_cleans_up_a_library_write_then_terminates(tmp_path: Path) -> None:
    """Outside the CLI SIGTERM keeps its meaning (the process ends by it), after the
    temporary output is removed."""
    out = tmp_path / "big.ome.tif"
    code = (
        "import numpy as np; from focuskit.io import FocalStack, write_stack; "
        "data = np.random.default_rng(0).random((4, 2048, 2048), dtype=np.float32); "
        f"write_stack(FocalStack(data, [0.0, 1.0, 2.0, 3.0], 0.1), {str(out)!r})"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": SRC},
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _wait_for_temp(tmp_path, out.name, child)
    time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == []


def test_a_temp_left_by_sigkill_is_cleaned_by_the_next_write(tmp_path: Path) -> None:
    out = tmp_path / "big.ome.zarr"
    code = (
        "import numpy as np; from focuskit.io import FocalStack, write_stack; "
        "data = np.random.default_rng(0).random((8, 1024, 1024), dtype=np.float32); "
        f"write_stack(FocalStack(data, list(map(float, range(8))), 0.1), {str(out)!r})"
    )
    child = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC})
    assert _wait_for_temp(tmp_path, out.name, child)
    time.sleep(0.1)
    child.kill()
    child.wait(timeout=60)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert left, "SIGKILL left nothing: the test did not exercise a leftover"
    notes = check_outputs({"-o": out}, overwrite=False)
    assert list(tmp_path.iterdir()) == []
    assert any(f"removed {left[0].name}" in note for note in notes)
