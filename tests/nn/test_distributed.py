"""Training on 2 processes (torchrun, gloo on CPU) follows training on 1.

One ``torchrun --standalone --nproc_per_node 2`` start trains every system's network on tiny
synthetic data (tests/nn/_ddp_worker.py); the 1-process references run in this process.
Subprocesses get ``OMP_NUM_THREADS=1``.

Tolerances: both runs see the same global batch, the same dropout masks and BatchNorm over
the same examples, so they differ only in float32 rounding (sums split over two processes
and added in another order, gradients averaged as (g₀ + g₁)/2). Over 5 Adam steps that stays
near float32's 1e-7 (measured ≤ 3e-7 relative on every curve); 1e-5 leaves room for other
CPUs' kernels while any real mismatch — a batch not sharded as one process's, gradients
summed instead of averaged, per-process BatchNorm statistics or dropout masks — moves the
curves by 1e-3 or more (BatchNorm and dropout per process: 2e-2 on the training loss,
3e-3 on validation). The networks are tiny and the runs short on purpose: rounding
differences grow as training goes on — the default blur CNN's loss differs by 1 % after 6
steps between 1 and 2 torch threads of one process — so long runs agree only as closely
as one process agrees with itself.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import one_line_error, run_cli

import focuskit
from focuskit._errors import ConfigError
from focuskit.nn import Distributed, current_distributed, distributed

pytestmark = pytest.mark.distributed

WORKER = Path(__file__).with_name("_ddp_worker.py")
SRC = Path(focuskit.__file__).resolve().parents[1]
RTOL = 1e-5
SYSTEMS = ["singleshot", "fewshot", "refocus", "dpm"]
DIST_ENV = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK")


def _worker() -> Any:
    spec = importlib.util.spec_from_file_location("_ddp_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    return env


def torchrun(*args: object, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node 2 ARGS…`` (a free port)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    with subprocess.Popen(
        [*cmd, *map(str, args)],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # on a timeout the workers go too, not only torchrun
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _curves(history: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        k: np.asarray(v, dtype=float)
        for k, v in history.items()
        if isinstance(v, list) and v and k != "steps"
    }


def _same_curves(one: dict[str, Any], two: dict[str, Any]) -> None:
    assert one["steps"] == two["steps"]
    a, b = _curves(one), _curves(two)
    assert a.keys() == b.keys() and a
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=RTOL, atol=1e-9, err_msg=key)
    assert one["best_step"] == two["best_step"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(1-process folder, 2-process folder), each with every system trained for 5 steps."""
    two = tmp_path_factory.mktemp("two")
    done = torchrun(WORKER, two, *SYSTEMS, "--checkpoint")
    assert done.returncode == 0, done.stderr[-3000:]
    one = tmp_path_factory.mktemp("one")
    worker = _worker()
    for system in SYSTEMS:
        worker.train(one, system, checkpoint=True)
    return one, two


@pytest.mark.parametrize("system", SYSTEMS)
def test_two_processes_follow_one(runs: tuple[Path, Path], system: str) -> None:
    one, two = (r / system for r in runs)
    h1 = json.loads((one / "history-0.json").read_text())
    h2 = json.loads((two / "history-0.json").read_text())
    _same_curves(h1, h2)
    assert len(h1["steps"]) == 5
    # Rank 1 ends with the same record (validation values sent by rank 0, terms averaged).
    h2b = json.loads((two / "history-1.json").read_text())
    _same_curves(h2, h2b)
    # The training moved the network: equal curves are not two untrained copies.
    train_key = next(k for k in _curves(h1) if not k.startswith(("val", "best")))
    assert np.ptp(_curves(h1)[train_key]) > 1e-3
    s1, s2 = np.load(one / "state.npz"), np.load(two / "state.npz")
    assert sorted(s1.files) == sorted(s2.files)
    for key in s1.files:
        np.testing.assert_allclose(
            s2[key].astype(float), s1[key].astype(float), rtol=1e-4, atol=1e-5, err_msg=key
        )


@pytest.mark.parametrize("system", ["singleshot", "fewshot", "refocus"])
def test_ddp_checkpoint_resumes_in_one_process(
    runs: tuple[Path, Path], system: str, tmp_path: Path
) -> None:
    """A checkpoint written on 2 processes holds plain names and resumes on 1 as a 1-process
    checkpoint does."""
    from safetensors.numpy import load_file

    worker = _worker()
    histories = []
    for source in runs:
        tensors = load_file(str(source / system / "checkpoint" / "checkpoint.safetensors"))
        assert not [k for k in tensors if ".module." in k or k.startswith("module.")]
        copy = tmp_path / source.name
        _copy_checkpoint(source, copy, system)
        _, history = worker.train(copy, system, steps=8, checkpoint=True, resume=True)
        assert history["steps"][-1] == 8
        histories.append(history)
    _same_curves(*histories)


def _copy_checkpoint(source: Path, target: Path, system: str) -> None:
    (target / system / "checkpoint").mkdir(parents=True)
    for f in (source / system / "checkpoint").iterdir():
        (target / system / "checkpoint" / f.name).write_bytes(f.read_bytes())


def test_one_process_checkpoint_resumes_on_two(runs: tuple[Path, Path], tmp_path: Path) -> None:
    """The other way round: a 1-process checkpoint continued by 2 processes ends as when one
    process continues it."""
    resumable = ["singleshot", "fewshot", "refocus"]
    for system in resumable:
        _copy_checkpoint(runs[0], tmp_path / "two", system)
        _copy_checkpoint(runs[0], tmp_path / "one", system)
    done = torchrun(WORKER, tmp_path / "two", *resumable, "--checkpoint", "--resume", "--steps", 8)
    assert done.returncode == 0, done.stderr[-3000:]
    worker = _worker()
    for system in resumable:
        _, one = worker.train(tmp_path / "one", system, steps=8, checkpoint=True, resume=True)
        two = json.loads((tmp_path / "two" / system / "history-0.json").read_text())
        assert two["steps"] == list(range(1, 9))
        _same_curves(one, two)


def test_cli_torchrun_singleshot(tmp_path: Path) -> None:
    """`torchrun -m focuskit singleshot train` writes one model folder that loads in one process
    and predicts as the model trained by one process does."""
    from focuskit.singleshot import DefocusModel

    flags = [
        "--simulate", 4, "--tile", 128, "--z-range", -10, 10, "--z-step", 2, "--steps", 8,
        "--eval-every", 2, "--width", 16, "--depth", 2, "--batch-size", 8, "--json",
    ]  # fmt: skip
    done = torchrun("-m", "focuskit", "singleshot", "train", "-o", tmp_path / "two", *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)  # one JSON document: rank 1 printed nothing
    assert summary["output"] == str(tmp_path / "two")
    code, _, err = run_cli("singleshot", "train", "-o", tmp_path / "one", *flags)
    assert code == 0, err
    one = DefocusModel.load(tmp_path / "one")
    two = DefocusModel.load(tmp_path / "two")
    _same_curves(one.metadata["training"]["history"], two.metadata["training"]["history"])
    features = np.random.default_rng(0).lognormal(size=(16, one.region.n_features))
    z1, s1, _ = one.predict_features(features)
    z2, s2, _ = two.predict_features(features)
    np.testing.assert_allclose(z2, z1, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s2, s1, rtol=1e-4, atol=1e-4)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir()
    )


def test_cli_torchrun_refuses_an_indivisible_batch(tmp_path: Path) -> None:
    done = torchrun(
        "-m", "focuskit", "singleshot", "train", "-o", tmp_path / "m", "--simulate", 4,
        "--batch-size", 7, timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2, done.stderr[-3000:]  # one line from each process
    assert "--batch-size 7 does not split over 2 processes" in errors[0]
    assert "e.g. 6 or 8" in errors[0]
    # No traceback from focuskit's code (torchrun adds its own report of the failed workers).
    assert str(SRC / "focuskit") not in done.stderr
    assert not (tmp_path / "m").exists()


def test_batch_must_split_evenly() -> None:
    dist = Distributed(world_size=4, rank=2)
    assert dist.shard(16) == slice(8, 12)
    with pytest.raises(ConfigError, match=r"^batch size 18 does not split over 4 processes"):
        dist.shard(18)
    with pytest.raises(ConfigError, match=r"e\.g\. 4$"):
        dist.check_batch(2)
    Distributed().check_batch(7)  # one process takes any batch


@pytest.fixture
def two_process_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in DIST_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("FOCUSKIT_DDP_BACKEND", raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    return monkeypatch


def test_backend_that_cannot_start_is_one_line(two_process_env: pytest.MonkeyPatch) -> None:
    import torch
    import torch.distributed as td

    # gloo without a rendezvous address: env:// cannot start.
    with pytest.raises(ConfigError) as info, distributed(backend="gloo"):
        pass
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("cannot start distributed training (backend gloo, rank 0 of 2): ")
    assert "MASTER_ADDR" in text
    if not torch.cuda.is_available():
        with (
            pytest.raises(ConfigError, match=r"backend nccl.*NCCL needs CUDA GPUs"),
            distributed(backend="nccl"),
        ):
            pass
    assert not td.is_initialized()
    assert current_distributed() == Distributed()  # nothing left behind


def test_cli_backend_error_and_missing_rank(
    two_process_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    two_process_env.setenv("FOCUSKIT_DDP_BACKEND", "gloo")
    code, _, err = run_cli("singleshot", "train", "-o", tmp_path / "m", "--simulate", 4)
    one_line_error(code, err, "cannot start distributed training (backend gloo", "MASTER_ADDR")
    two_process_env.delenv("RANK")
    code, _, err = run_cli("singleshot", "train", "-o", tmp_path / "m", "--simulate", 4)
    one_line_error(code, err, "WORLD_SIZE is 2 but RANK is not set", "torchrun")
    assert not (tmp_path / "m").exists()


def test_one_process_is_untouched() -> None:
    """Without torchrun nothing is wrapped, split or started."""
    import torch
    import torch.distributed as td

    with distributed() as dist:
        assert dist == Distributed() and not dist.enabled and dist.is_main
        net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
        assert dist.wrap(net) is net
        assert type(net[1]) is torch.nn.BatchNorm1d
        assert dist.shard(5) == slice(0, 5)
        assert dist.mean({"a": 2.0}) == {"a": 2.0}
        assert dist.broadcast([1]) == [1]
    assert not td.is_initialized()


def test_processes_share_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    dist = Distributed(world_size=8, rank=5, local_rank=1)
    assert dist.threads(4) == 2  # 8 cores, 4 processes on this node
    assert dist.threads(1) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert dist.threads(4) == 1  # never 0
    assert Distributed().threads(4) == 4  # one process keeps what it asked for
