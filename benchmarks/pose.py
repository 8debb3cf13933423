"""One training step of each pose method: SkeletonCLR (MoCo over ST-GCN, both views augmented) and the supervised
2s-AGCN joint stream (forward, cross-entropy, backward, SGD), at a config's pose settings, on random skeletons.

python -m benchmarks.pose                                  # synth_cpu's pose section (CPU)
python -m benchmarks.pose --config ntu60_cvs --device cuda # the published settings on a GPU
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from benchmarks import add_device, config_parser, interleaved_ms, report
from viewclr.config import load_config
from viewclr.eval.classify import Classifier
from viewclr.methods.skeletonclr import build_skeletonclr, two_views
from viewclr.models.gcn import AGCN
from viewclr.runtime import step_generator


def main() -> int:
    parser = config_parser(__doc__, rounds=5, example="pose.frames=64")
    add_device(parser)
    parser.add_argument("--joints", type=int, default=25)
    args = parser.parse_args()
    cfg = load_config(args.config, args.overrides)
    p, device = cfg.pose, torch.device(args.device)
    torch.manual_seed(0)
    skeletonclr = build_skeletonclr(cfg, args.joints).to(device)
    sgd = torch.optim.SGD([q for _, q in skeletonclr.trainable()], lr=p.lr, momentum=0.9)
    agcn = Classifier(AGCN(args.joints, p.bodies, width=p.agcn_width), 60, 0.0, "none", frozen=False).to(device)
    nesterov = torch.optim.SGD(agcn.parameters(), lr=p.supervised_lr, momentum=0.9, nesterov=True)
    x = torch.randn(p.batch_size, 3, p.frames, args.joints, p.bodies, device=device)
    y = torch.randint(0, 60, (p.supervised_batch_size,), device=device)
    x_agcn = torch.randn(p.supervised_batch_size, 3, p.frames, args.joints, p.bodies, device=device)
    step = [0]

    def skeletonclr_step():
        step[0] += 1
        loss = skeletonclr(two_views(x, p, step_generator(0, step[0])), step[0])["loss"]
        sgd.zero_grad(set_to_none=True)
        loss.backward()
        sgd.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    def agcn_step():
        loss = F.cross_entropy(agcn(x_agcn), y)
        nesterov.zero_grad(set_to_none=True)
        loss.backward()
        nesterov.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    ms = interleaved_ms({"SkeletonCLR step": skeletonclr_step, "AGCN step": agcn_step}, args.rounds)
    shape = f"{p.frames} frames × {args.joints} joints × {p.bodies} bodies"
    models = f"SkeletonCLR batch {p.batch_size} (ST-GCN ×{p.stgcn_width}), AGCN batch {p.supervised_batch_size}"
    setting = (
        f"{args.config}: {shape}; {models} (×{p.agcn_width}); {device}, {torch.get_num_threads()} threads; "
        f"median of {args.rounds} interleaved rounds"
    )
    rates = {
        "skeletonclr": p.batch_size / ms["SkeletonCLR step"] * 1000,
        "agcn": p.supervised_batch_size / ms["AGCN step"] * 1000,
    }
    summary = f"SkeletonCLR {rates['skeletonclr']:.0f} sequences/s, AGCN {rates['agcn']:.0f} sequences/s"
    report(setting, "step", ms, summary, {"ms": ms, "rate": rates, "setting": setting})
    return 0


if __name__ == "__main__":
    sys.exit(main())
