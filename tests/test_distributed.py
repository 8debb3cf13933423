"""Two processes (gloo, CPU) with DistributedDataParallel agree with one process on the same global batch:
losses, queues and weights — MoCo and ViewCLR. The single process emulates the two GPUs with split BatchNorm.

In float64: at initialisation every clip's embedding is nearly the same vector, so InfoNCE's gradient is a small
difference of large terms and float32 rounding (different summation orders across processes) would grow by
~10⁴ within two steps; in float64 the two runs agree to ~1e-10 and a real mistake (a wrong shuffle, partner or
gather order) shows at once."""

from dataclasses import replace

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
        queue_size=16, momentum=0.9, tau=0.2, alpha=1.0, mix_partner="random", use_generator=True, use_l3d=True,
        use_adv=True, w_3d=1.0, w_adv=1.0, w_rec=1.0, w_clean=0.0, grl=1.0, bn_splits=2, batch_negatives=False,
    )  # fmt: skip
    return replace(MethodConfig(), **{**values, **overrides})  # the real config: every field a method reads


def build(name: str):
    torch.manual_seed(0)  # every process builds the same initial weights
    backbone = build_backbone("s3d", width=0.125)
    if name.startswith("moco"):  # moco_batch: the batch's keys (gathered from every GPU) are negatives too
        return MoCo(backbone, method_config(batch_negatives=name == "moco_batch"), proj_dim=16)
    model_cfg = ModelConfig(width=0.125, proj_dim=16, npl_hidden=8, low_dim=8)
    return ViewCLR(backbone, method_config(), model_cfg, split_shape(backbone, FRAMES, SIZE))


def global_batches(views: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(123)
    return torch.randn(STEPS, BATCH, views, 3, FRAMES, SIZE, SIZE, generator=generator)


def run(rank: int, world: int, name: str, init_file: str, out: str, steps: int = STEPS) -> None:
    if world > 1:
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


@pytest.mark.parametrize("name", ["moco", "moco_batch", "viewclr"])
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
