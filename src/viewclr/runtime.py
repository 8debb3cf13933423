"""Where a run runs: the device, mixed precision, the processes of a distributed run, and randomness.

Every step-indexed random draw (a step's mixing coefficients and shuffles, its augmentation, an epoch's order)
is seeded by one formula, `derived_seed(seed, index)`, so that a resumed run draws what an uninterrupted one
would. This module sits at the bottom: it imports nothing of the library but the errors.
"""

from __future__ import annotations

import functools
import inspect
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from viewclr.errors import ConfigError, ViewCLRError

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


# ---------------------------------------------------------------------------------------------- precision

# Clip lengths (frames at the convolution) on which the low-precision check runs a 3×1×1 convolution: a temporal
# kernel longer than the clip (1, 2 frames — S3D's Mixed_4/5 on clips of 8 frames or fewer) is where oneDNN's bf16
# weight-gradient kernel for AVX-512-BF16 CPUs returns wrong gradients; 4 frames is the ordinary case beside it.
CHECK_FRAMES = (1, 2, 4)
# Relative error of a weight gradient (largest deviation / largest float32 value) above which the kernel is wrong:
# bf16's rounding gives under 1 %; the defect's errors are random and reach 1e34.
CHECK_TOLERANCE = 0.05


def conv3d_gradient_error(dtype: torch.dtype, device: torch.device) -> tuple[float, int]:
    """The worst relative error of conv3d's weight gradient under autocast(`dtype`) on `device` against float32 on
    the same low-precision-rounded inputs, over the clip lengths of CHECK_FRAMES in both memory formats that
    training uses; returns (error, the clip length it was worst at). A few milliseconds once the kernels are
    loaded; the global RNG is untouched."""
    generator = torch.Generator().manual_seed(0)
    worst, worst_frames = 0.0, CHECK_FRAMES[0]
    for frames in CHECK_FRAMES:
        x = torch.randn(4, 6, frames, 2, 2, generator=generator).to(dtype).float()
        w = torch.randn(8, 6, 3, 1, 1, generator=generator).to(dtype).float()
        upstream = torch.randn(4, 8, frames, 2, 2, generator=generator).to(dtype).float()
        for memory_format in (torch.contiguous_format, torch.channels_last_3d):
            grads = []
            for low in (True, False):
                inp = x.to(device).clone(memory_format=memory_format)
                weight = w.to(device).clone(memory_format=memory_format).requires_grad_()
                with torch.autocast(device.type, dtype=dtype, enabled=low):
                    out = torch.nn.functional.conv3d(inp, weight, padding=(1, 0, 0))
                out.backward(upstream.to(device, out.dtype))
                grads.append(weight.grad.float())
            error = float((grads[0] - grads[1]).abs().max() / grads[1].abs().max().clamp_min(1e-12))
            if not error <= worst:  # a NaN is the worst
                worst, worst_frames = error, frames
    return worst, worst_frames


CHECK_REPEATS = 3  # oneDNN's wrong bf16 gradients do not come on every call: the worst of several probes counts


@functools.cache
def _checked_error(dtype: torch.dtype, device: torch.device, onednn: bool) -> tuple[float, int]:
    results = [conv3d_gradient_error(dtype, device) for _ in range(CHECK_REPEATS)]
    return max(results, key=lambda r: float("inf") if r[0] != r[0] else r[0])  # a NaN is the worst


def check_precision(train, device: torch.device) -> None:
    """Stop before any work when train.amp asks for a low precision whose convolution gradients are wrong on this
    machine (oneDNN's bf16 kernel on some AVX-512-BF16 CPUs: huge finite weight gradients that Adam turns into
    ordinary-looking steps). Checked once per process, device, precision and oneDNN setting."""
    dtype = amp_dtype(train.amp, device)
    if dtype is None:
        return
    error, frames = _checked_error(
        dtype, device, torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
    )
    if error <= CHECK_TOLERANCE:
        return
    name = {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
    cpu = device.type == "cpu"
    where = "oneDNN on this CPU" if cpu else f"this {device.type} device"
    instead = " (the CPU default), or keep it and set ONEDNN_MAX_CPU_ISA=AVX2 in the environment" if cpu else ""
    raise ConfigError(
        "train.amp",
        f"{where} computes wrong {name} weight gradients for 3-D convolutions (a 3×1×1 convolution on a {frames}-frame "
        f"clip: its error is {error:.2g} times the largest float32 gradient), so {name} training would diverge "
        f"silently; set train.amp=fp32{instead}",
    )
