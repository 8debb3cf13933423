"""Two processes (gloo, CPU) with DistributedDataParallel agree with one process on the same global batch:
losses, queues and weights — MoCo and ViewCLR. The single process emulates the two GPUs with split BatchNorm.

In float64: at initialisation every clip's embedding is nearly the same vector, so InfoNCE's gradient is a small
difference of large terms and float32 rounding (different summation orders across processes) would grow by
~10⁴ within two steps; in float64 the two runs agree to ~1e-10 and a real mistake (a wrong shuffle, partner or
gather order) shows at once."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from viewclr.config import MethodConfig, ModelConfig
from viewclr.methods import MoCo, ViewCLR
from viewclr.models import build_backbone, split_shape

STEPS, BATCH, FRAMES, SIZE = 3, 8, 8, 64


def method_config(**overrides):
    values = dict(
        queue_size=16,
        momentum=0.9,
        tau=0.2,
        alpha=1.0,
        use_generator=True,
        use_l3d=True,
        use_adv=True,
        w_3d=1.0,
        w_adv=1.0,
        w_rec=1.0,
        grl=1.0,
        bn_splits=2,
    )
    return replace(MethodConfig(), **{**values, **overrides})  # the real config: every field a method reads


def build(name: str):
    torch.manual_seed(0)  # every process builds the same initial weights
    backbone = build_backbone("s3d", width=0.125)
    if name == "moco":
        return MoCo(backbone, method_config(), proj_dim=16)
    model_cfg = ModelConfig(width=0.125, proj_dim=16, npl_hidden=8, low_dim=8)
    return ViewCLR(backbone, method_config(), model_cfg, split_shape(backbone, FRAMES, SIZE))


def global_batches(views: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(123)
    return torch.randn(STEPS, BATCH, views, 3, FRAMES, SIZE, SIZE, generator=generator)


def run(rank: int, world: int, name: str, init_file: str | None, out: str, steps: int = STEPS) -> None:
    """`steps` steps of `name` on this process's share of the global batches; rank 0 saves losses and state.
    `init_file` None: the process group comes from torchrun's environment (its rendezvous)."""
    if world > 1:
        if init_file is None:
            dist.init_process_group("gloo")
        else:
            dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    method = build(name).double()
    model = torch.nn.parallel.DistributedDataParallel(method) if world > 1 else method
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=1e-3)
    batches = global_batches(method.num_views).double()
    share = BATCH // world
    losses = []
    for step in range(steps):
        clips = batches[step, rank * share : (rank + 1) * share]
        loss = model(clips, step)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.detach().clone()
        if world > 1:
            dist.all_reduce(value)
            value /= world
        losses.append(value.item())
    if rank == 0:
        torch.save({"losses": losses, "state": method.state_dict()}, out)
    if world > 1:
        dist.destroy_process_group()


@pytest.mark.parametrize("name", ["moco", "viewclr"])
def test_two_processes_match_one_process(name, tmp_path):
    run(0, 1, name, "", str(tmp_path / "single.pt"))
    mp.spawn(run, args=(2, name, str(tmp_path / "init"), str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    single, ddp = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "ddp.pt")
    torch.testing.assert_close(torch.tensor(ddp["losses"]), torch.tensor(single["losses"]), rtol=1e-8, atol=1e-9)
    a, b = single["state"], ddp["state"]
    for key in a:
        if "running_" in key or "num_batches_tracked" in key:
            continue  # DDP keeps rank 0's BatchNorm statistics; one process averages the sub-batches'
        torch.testing.assert_close(b[key], a[key], rtol=1e-7, atol=1e-9, msg=key)
    assert int(a["queue.pointer"]) == int(b["queue.pointer"]) == (STEPS * BATCH) % 16
    assert not torch.equal(a["queue.features"], build(name).double().state_dict()["queue.features"])  # enqueued
    assert single["losses"][0] != single["losses"][-1]


def test_torchrun_with_a_rendezvous_matches_one_process(tmp_path):
    """The real `torchrun` with the arguments of a multi-node launch (--nnodes, a c10d rendezvous at an endpoint),
    here one node of 2 CPU processes: the same result as one process of the same global batch."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run(0, 1, "viewclr", None, str(tmp_path / "single.pt"))
    worker = Path(__file__).parent / "distributed_worker.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "viewclr-test",
               str(worker), "viewclr", str(tmp_path / "torchrun.pt")]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    single, launched = torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "torchrun.pt")
    torch.testing.assert_close(torch.tensor(launched["losses"]), torch.tensor(single["losses"]), rtol=1e-8, atol=1e-9)
    for key, value in single["state"].items():
        if "running_" not in key and "num_batches_tracked" not in key:
            torch.testing.assert_close(launched["state"][key], value, rtol=1e-7, atol=1e-9, msg=key)
