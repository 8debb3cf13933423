"""Where a run runs: the device, mixed precision, the processes of a distributed run, and randomness.

Every step-indexed random draw (a step's mixing coefficients and shuffles, its augmentation, an epoch's order)
is seeded by one formula, `derived_seed(seed, index)`, so that a resumed run draws what an uninterrupted one
would. This module sits at the bottom: it imports nothing of the library but the errors.
"""

from __future__ import annotations

import inspect
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from viewclr.errors import ViewCLRError

SEED_STRIDE = 1_000_003  # a prime: (seed, index) pairs of a run never collide for index < SEED_STRIDE
MAX_RANKS = 64


def derived_seed(seed: int, index: int, process: int | None = None) -> int:
    """The seed of draw `index` (a step, an epoch) of a run seeded `seed`: the same on every process, or, given
    `process` (a rank), that process's own."""
    base = seed * SEED_STRIDE + index
    return base if process is None else base * MAX_RANKS + process


def step_generator(seed: int, step: int) -> torch.Generator:
    """Randomness of one training step (mixing coefficients, partners, shuffles) from (seed, step) alone: the same
    on every rank, and again after a resume."""
    return torch.Generator().manual_seed(derived_seed(seed, step))


def rng_state() -> dict:
    """Every generator's state. Steps reseed from (seed, step) anyway; this keeps anything outside them exact too."""
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------------------- processes


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def setup_distributed() -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); NCCL on GPUs, gloo on CPUs."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not is_distributed():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def barrier() -> None:
    if is_distributed():
        dist.barrier()


# ---------------------------------------------------------------------------------------------- device


def choose_device(wanted: str = "auto") -> torch.device:
    """train.device: auto (this process's GPU when there is one) | cpu | cuda."""
    if wanted == "cuda" and not torch.cuda.is_available():
        raise ViewCLRError("train.device=cuda but no CUDA device is available")
    if wanted == "cuda" or (wanted == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


@dataclass(frozen=True)
class Switches:
    """What a training run does on its device: autocast dtype, memory format, cuDNN autotuning, fused Adam."""

    amp: torch.dtype | None
    channels_last: bool
    cudnn_benchmark: bool
    fused_adam: bool


def adam_has_fused() -> bool:
    return "fused" in inspect.signature(torch.optim.Adam).parameters


def switches(train, device: torch.device) -> Switches:
    """The train config's switches resolved for `device`: None (the default) means the faster on it — on for CUDA
    (bf16 autocast, channels_last_3d, cuDNN's autotuner unless train.deterministic, fused Adam where torch has it);
    on CPU channels_last_3d only (its max-pooling and convolutions are faster in it: docs/performance.md)."""
    cuda = device.type == "cuda"
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return Switches(
        amp=amp_dtype(train.amp, device),
        channels_last=pick(train.channels_last, True),
        cudnn_benchmark=pick(train.cudnn_benchmark, cuda) and not train.deterministic,
        fused_adam=pick(train.fused_adam, cuda) and adam_has_fused(),
    )


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """train.amp: auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp16 | fp32 → the autocast dtype, or None."""
    if amp == "auto":
        return torch.bfloat16 if device.type == "cuda" else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[amp]
