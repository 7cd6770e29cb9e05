"""Issue 17, item 16: a training killed with SIGKILL at a checkpoint and resumed ends
bit-identical to one never interrupted — for all three systems.

The interrupted run is a real process: it trains until its second evaluation (the first
checkpoint is on disk, the steps since are lost), says so, and is killed with ``kill -9``.
This process then resumes from the checkpoint and trains the same run uninterrupted; the
weights must be equal bit for bit and the loss history value for value. The FCFNN's input
dropout draws from torch's generator, which resumed runs used to reseed (and so diverge).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import focuskit

EVAL_EVERY = 4
MAX_STEPS = 12
KILL_AT = 2 * EVAL_EVERY  # killed while reporting step 8: the checkpoint on disk is step 4
SRC = str(Path(focuskit.__file__).resolve().parents[1])

# Runs in the child: import this file and make the run that gets killed.
CHILD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("resume_case", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.interrupted_run(sys.argv[2], sys.argv[3])
"""


def _data(system: str) -> tuple[Any, Any]:
    """Tiny, seeded training and validation sets of ``system``."""
    if system == "singleshot":
        from focuskit.singleshot import simulate_examples, split_by_field

        ex = simulate_examples(
            4, size=128, tile=128, z_um=np.arange(-10.0, 10.1, 5.0), seed=3, incoherent_every=0
        )
        return split_by_field(ex, 0.25, seed=0)
    if system == "fewshot":
        from focuskit.fewshot import BlurDataConfig, simulate_blur_patches, split_patches_by_field

        patches = simulate_blur_patches(
            BlurDataConfig(n_fields=4, waves_per_field=2, field_size=256, seed=3)
        )
        return split_patches_by_field(patches, 0.25, seed=0)
    from focuskit.refocus import simulate_refocus_tiles, split_tiles_by_field

    tiles = simulate_refocus_tiles(
        "deepr-40x-fluor", 3, size=64, tile=64, z_range_um=1.0, z_step_um=0.5
    )
    return split_tiles_by_field(tiles, 0.34)


def _fit(
    system: str,
    data: tuple[Any, Any],
    checkpoint: str | None = None,
    resume: bool = False,
    progress: Any = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train ``system``'s network for MAX_STEPS steps: (its weights, its history)."""
    if system == "singleshot":
        from focuskit.singleshot import TrainConfig, fit_fcfnn

        # input_dropout > 0: the torch generator matters; the σ head switches on at step 4.
        config = TrainConfig(
            width=16,
            depth=2,
            input_dropout=0.2,
            max_steps=MAX_STEPS,
            eval_every=EVAL_EVERY,
            z_scale_um=10.0,
            batch_size=8,
        )
        net, history = fit_fcfnn(
            *data, config, checkpoint_dir=checkpoint, resume=resume, progress=progress
        )
    elif system == "fewshot":
        from focuskit.fewshot import BlurTrainConfig, fit_blur_cnn

        config = BlurTrainConfig(
            channels=(4, 8),
            max_steps=MAX_STEPS,
            eval_every=EVAL_EVERY,
            batch_size=4,
            num_threads=1,
        )
        net, history = fit_blur_cnn(
            *data, config, checkpoint_dir=checkpoint, resume=resume, progress=progress
        )
    else:
        from focuskit.refocus import RefocusTrainConfig, fit_deepr

        config = RefocusTrainConfig(
            generator_channels=(4, 4, 4, 4, 4, 4),
            discriminator_channels=(4, 4),
            crop=32,
            batch_size=2,
            max_steps=MAX_STEPS,
            warmup_steps=6,  # the loss weights are balanced after the checkpoint at step 4
            eval_every=EVAL_EVERY,
            z_range_um=1.0,
            validation_pairs=4,
            num_threads=1,
        )
        net, _, history = fit_deepr(
            *data, config, checkpoint_dir=checkpoint, resume=resume, progress=progress
        )
    weights = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    record = history.to_dict()
    record.pop("seconds")  # wall time is the one thing allowed to differ
    return weights, record


def interrupted_run(system: str, checkpoint: str) -> None:
    """In the child: train with checkpoints; at step KILL_AT say so and wait to be killed."""

    def progress(step: int, total: int, values: dict[str, float]) -> None:
        if step == KILL_AT:
            print("killing time", flush=True)
            time.sleep(300)

    _fit(system, _data(system), checkpoint, progress=progress)
    print("finished", flush=True)  # never reached when the kill lands


def _kill_at_checkpoint(system: str, checkpoint: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, __file__, system, str(checkpoint)],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ready, _, _ = select.select([proc.stdout], [], [], 240)
        line = proc.stdout.readline() if ready else ""
        if line.strip() != "killing time":
            proc.kill()
            pytest.fail(f"the child did not reach step {KILL_AT}: {line}{proc.stderr.read()}")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("system", ["singleshot", "fewshot", "refocus"])
def test_a_run_killed_at_a_checkpoint_resumes_bit_identically(system: str, tmp_path: Path) -> None:
    checkpoint = tmp_path / "ckpt"
    _kill_at_checkpoint(system, checkpoint)
    state = json.loads((checkpoint / "checkpoint.json").read_text())
    assert state["step"] == EVAL_EVERY  # the steps after it died with the process

    data = _data(system)  # every fit trains on one torch thread, as the child did
    weights, history = _fit(system, data, str(checkpoint), resume=True)
    full_weights, full_history = _fit(system, data)
    assert history == full_history  # every loss and validation value, exactly
    assert history["steps"] == list(range(EVAL_EVERY, MAX_STEPS + 1, EVAL_EVERY))
    assert weights.keys() == full_weights.keys()
    for name, value in weights.items():
        assert np.array_equal(value, full_weights[name]), name
