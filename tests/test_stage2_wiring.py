"""Stage 2's wiring: which parameters each loss term reaches and with which sign, the mixed tensor, the Table 1
flags, Queue2's alignment with Queue1 through the real stage-1 → stage-2 path, BatchNorm statistics, and the
auto-encoder collapse that L3D must not be able to use.

Sizes are chosen so that nothing divides evenly: batch 6 in 2 BatchNorm sub-batches of 3, a queue of 20 slots
(stage 2 starts with Queue1's pointer at 18 after 3 steps of 6), partners drawn inside sub-batches of 3.

The mutations of the source these tests are known to catch are listed, and checked by running them, in
scripts/wiring_mutations.py.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from helpers import load_script, tiny_training

from viewclr.config import load_config
from viewclr.engine.plan import pretrain
from viewclr.logger import read_metrics
from viewclr.methods import build_method
from viewclr.methods import viewclr as viewclr_module
from viewclr.methods.losses import reconstruction_loss, world_3d_loss
from viewclr.models.s3d import SPLIT
from viewclr.models.viewpoint import ViewpointGenerator
from viewclr.runtime import step_generator
from viewclr.synth import SynthSettings, generate

BATCH, QUEUE = 6, 20
TINY = [
    "data.frames=8", "augment.size=32", f"data.batch_size={BATCH}", "model.width=0.125", "model.npl_hidden=8",
    "model.low_dim=8", "model.proj_dim=16", f"method.queue_size={QUEUE}", "method.bn_splits=2",
]  # fmt: skip

# Which parameter groups each loss term reaches: "+" a gradient that descends the term, "−" one that ascends it
# (the gradient reversal layer: G maximises L_adv's d), "0" none. The key encoder and the queues never learn.
GROUPS = ("f1", "f2", "head", "fg1", "G lift/pose", "G camera", "auto-encoder", "fg2", "key encoder")
WIRING = {
    #        f1   f2   head fg1  G-lift G-cam  AE   fg2  key
    "mix": ("+", "+", "+", "+", "+", "+", "0", "0", "0"),  # eq. 7–8: the mixed query reaches both streams
    "l3d": ("0", "0", "0", "+", "+", "0", "0", "0", "0"),  # eq. 10: shapes F_W (G, fg1 through it), not the AE
    "adv": ("0", "0", "0", "0", "−", "−", "0", "+", "0"),  # eq. 11: fg2 descends d, θ_g ascends it, fg1 nothing
    "rec": ("0", "0", "0", "0", "0", "0", "+", "0", "0"),  # L_R: the auto-encoder is a memory device
}
# The Table 1 rows: which terms exist and which groups are built ("·": the group does not exist).
ABLATIONS = {
    "viewclr": ([], {"mix", "l3d", "adv", "rec"}, set()),
    # eq. 1 read literally: F_W a voxel grid (the channel reduction is part of G's lifting)
    "viewclr_voxels": (
        ["model.world=voxels", "model.voxel_size=3", "model.voxel_channels=5"],
        {"mix", "l3d", "adv", "rec"},
        set(),
    ),
    "viewclr_no_l3d": (["method.use_l3d=false"], {"mix", "adv"}, {"auto-encoder"}),
    "viewclr_no_adv": (["method.use_adv=false"], {"mix", "l3d", "rec"}, {"fg2"}),
    # the paper's "ViewCLR − L_adv − L3D": no viewpoint generator; fg1's features feed the mixup directly
    "viewclr_no_adv_l3d": (
        ["method.use_adv=false", "method.use_l3d=false", "method.use_generator=false"],
        {"mix"},
        {"G lift/pose", "G camera", "auto-encoder", "fg2"},
    ),
}


def group_parameters(method) -> dict[str, list[torch.nn.Parameter]]:
    backbone = method.encoder.backbone
    groups = {
        "f1": list(backbone.f1_layers().parameters()),
        "f2": list(backbone.f2_layers().parameters()),
        "head": list(method.encoder.head.parameters()),
        "fg1": list(method.fg1.parameters()),
        "key encoder": list(method.momentum_encoder.parameters()),
    }
    if method.generator is not None:
        projection = method.generator.projection
        camera = [projection.camera_rotation, projection.log_scale, projection.offset]
        groups["G camera"] = camera
        groups["G lift/pose"] = [p for p in projection.parameters() if all(p is not c for c in camera)]
        if method.generator.autoencoder is not None:
            groups["auto-encoder"] = list(method.generator.autoencoder.parameters())
    if method.fg2 is not None:
        groups["fg2"] = list(method.fg2.parameters())
    named = {id(p) for ps in groups.values() for p in ps}
    assert all(id(p) in named for p in method.parameters()), "a parameter belongs to no group of the table"
    return groups


def make_method(*overrides: str, seed: int = 0):
    cfg = load_config(None, [*TINY, *overrides])
    torch.manual_seed(seed)
    method = build_method(cfg, "viewclr")
    if method.generator is not None:  # leave the identity, so that every path of G carries gradient
        projection = method.generator.projection
        with torch.no_grad():
            projection.coordinates[-1].weight.normal_(0, 0.05)
            projection.pose.weight.normal_(0, 0.05)
            projection.camera_rotation.add_(torch.randn(6) * 0.1)
            projection.offset.add_(torch.randn(2) * 0.2)
    return cfg, method


def batch(step: int, size: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + step)
    clips = torch.randn(size, 3, 3, 8, 32, 32, generator=generator)
    ids = torch.arange(size) + size * step  # every step new videos: no slot is excluded as the query's own
    return clips, ids


def warm_up(method, steps: int = 4) -> int:
    """A few steps without optimiser, so that Queue1 and Queue2 hold real keys and codes."""
    for step in range(steps):
        clips, ids = batch(step)
        method(clips, step, ids)
    return steps


def forward_with_references(method, clips, step, ids) -> tuple[dict, dict[str, torch.Tensor]]:
    """One forward of `method`, and beside its terms each term written out again from the paper's equations on the
    tensors the forward computed (the mixed query, the clean embedding, the keys, G's output) and the queues as
    they were before the step — without the loss functions under test — so that a term's gradient can be checked
    against its definition, not only for being there. L_adv's reference is `adversary_signs`'."""
    seen: dict = {"heads": []}
    queue1 = method.queue.features.clone()
    queue2 = method.codes.features.clone() if method.codes is not None else None
    written = method.codes.filled.clone() if method.codes is not None else None

    def head(module, args, out) -> None:
        seen["heads"].append(out)

    def generator(module, args, out) -> None:
        seen["G"] = out

    def keys(x, step_generator):
        seen["keys"] = method_keys(x, step_generator)
        return seen["keys"]

    hooks = [method.encoder.head.register_forward_hook(head)]
    if method.generator is not None:
        hooks.append(method.generator.register_forward_hook(generator))
    method_keys, method.keys = method.keys, keys
    try:
        output = method(clips, step, ids)
    finally:
        method.keys = method_keys
        for hook in hooks:
            hook.remove()
    clean, query = seen["heads"]  # the clean embedding f(x) (no gradient), then the mixed query
    lam, partner = method.mixing(len(clips), step_generator(method.seed, step), clips.device)
    own = torch.arange(len(clips))
    # eq. 6–7: Y = λ·y_own + (1 − λ)·y_partner over [the batch's keys; Queue1], cross-entropy of softmax(q·k / τ)
    logits = torch.cat([query @ seen["keys"].T, query @ queue1.T], dim=1) / method.cfg.tau
    target = torch.zeros_like(logits)
    target[own, own] += lam
    target[own, partner] += 1 - lam
    references = {"mix": -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()}
    if method.codes is not None:
        out = seen["G"]
        # eq. 9: f(x)'s nearest entry of Queue1 (Euclidean) among slots with a code; eq. 10: ‖code − its code‖
        distance = ((clean[:, None, :] - queue1[None]) ** 2).sum(-1).masked_fill(~written[None], float("inf"))
        nearest = distance.argmin(dim=1)
        references["l3d"] = (out.code - queue2[nearest]).norm(dim=1).mean()
        # L_R: the auto-encoder reconstructs F_inter, which it does not move
        references["rec"] = ((out.reconstruction - out.inter.detach()) ** 2).mean()
    return output, references


def gradients(method, term: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Each group's gradients (flattened, zeros where none arrived) of `term`."""
    method.zero_grad(set_to_none=True)
    term.backward(retain_graph=True)
    return {
        group: [torch.zeros(p.numel()) if p.grad is None else p.grad.flatten().clone() for p in params]
        for group, params in group_parameters(method).items()
    }


def signs(method, output, references) -> dict[str, list[str]]:
    """For each loss term: per group of GROUPS, '0' (no gradient), '+' (a gradient, and where the term has a
    reference, the reference's: cosine > 0.999), '−' (the reference's reversed), '?c' (another direction, cosine c),
    '·' (the group does not exist)."""
    table = {}
    for name, term in output["terms"].items():
        grads = gradients(method, term)
        expected = gradients(method, references[name]) if name in references else None
        row = []
        for group in GROUPS:
            if group not in grads:
                row.append("·")
                continue
            got = torch.cat(grads[group])
            if got.abs().sum() == 0:
                row.append("0")
            elif expected is None:
                row.append("+")
            else:
                cosine = float(torch.nn.functional.cosine_similarity(got, torch.cat(expected[group]), dim=0))
                row.append("+" if cosine > 0.999 else "−" if cosine < -0.999 else f"?{cosine:.3f}")
        table[name] = row
    return table


def adversary_signs(method, before, clips, step, ids, monkeypatch) -> dict[str, str]:
    """`method` holds the gradients L_adv gave it (from the state `before`). Per group that L_adv reaches: '+' if
    its gradient is d's own gradient (the group descends d), '−' if it is the reverse (it ascends d). d's own
    gradient comes from a twin without the gradient reversal layer (the identity in its place), so that a layer
    whose sign is wrong cannot be its own reference."""
    twin = copy.deepcopy(before)
    with monkeypatch.context() as patch:
        patch.setattr(viewclr_module, "reverse_gradient", lambda x, coefficient: x)
        twin(clips, step, ids)["terms"]["adv"].backward()
    found = {}
    for group, params in group_parameters(method).items():
        pairs = [(p.grad, q.grad) for p, q in zip(params, group_parameters(twin)[group], strict=True)]
        pairs = [(a.flatten(), b.flatten()) for a, b in pairs if a is not None and b is not None]
        if not pairs or all(a.abs().sum() == 0 for a, _ in pairs):
            continue
        model_grad, true_grad = torch.cat([a for a, _ in pairs]), torch.cat([b for _, b in pairs])
        cosine = float(torch.nn.functional.cosine_similarity(model_grad, true_grad, dim=0))
        found[group] = "+" if cosine > 0.999 else "−" if cosine < -0.999 else f"?{cosine:.3f}"
    return found


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_loss_term_reaches_exactly_the_parameters_the_paper_says(name, monkeypatch):
    overrides, terms, absent = ABLATIONS[name]
    _, method = make_method(*overrides)
    step = warm_up(method)
    clips, ids = batch(step)
    before = copy.deepcopy(method)
    output, references = forward_with_references(method, clips, step, ids)
    assert set(output["terms"]) == terms
    for term, reference in references.items():  # each term is its definition (its value, to float rounding)
        torch.testing.assert_close(output["terms"][term], reference, rtol=1e-5, atol=1e-6, msg=term)
    table = signs(method, output, references)
    if "adv" in table:  # its sign: fg2 descends d, θ_g ascends it (the gradient reversal layer)
        method.zero_grad(set_to_none=True)
        output["terms"]["adv"].backward(retain_graph=True)
        for group, sign in adversary_signs(method, before, clips, step, ids, monkeypatch).items():
            table["adv"][GROUPS.index(group)] = sign
    expected = {term: ["·" if g in absent else WIRING[term][i] for i, g in enumerate(GROUPS)] for term in terms}
    assert table == expected, "\n".join(
        f"{term:>4}: " + " ".join(f"{g}={table[term][i]}" for i, g in enumerate(GROUPS)) for term in sorted(table)
    )
    assert all(not b.requires_grad for b in method.buffers())  # queues, pointers, statistics: never trained


def test_the_mixed_tensor_is_lambda_f1_plus_the_partners_generated_view_exactly():
    cfg, method = make_method()
    step = warm_up(method, 3)
    clips, ids = batch(step)
    twin = copy.deepcopy(method)
    seen = []
    hook = method.encoder.backbone.features[SPLIT].register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    method(clips, step, ids)
    hook.remove()
    lam, partner = twin.mixing(BATCH, step_generator(cfg.seed, step), clips.device)
    assert sorted(partner[:3].tolist()) == [0, 1, 2] and sorted(partner[3:].tolist()) == [3, 4, 5]
    h = twin.encoder.backbone.f1(clips[:, 0])
    view = twin.generator(twin.fg1(clips[:, 2])).view
    shape = (BATCH, 1, 1, 1, 1)
    expected = lam.view(shape) * h + (1 - lam.view(shape)) * view[partner]
    mixed = [x for x in seen if not torch.equal(x, h)]  # f2 sees the clean f1(x) once and the mixed tensor once
    assert len(seen) == 2 and len(mixed) == 1
    assert torch.equal(mixed[0], expected)


def test_batchnorm_statistics_of_every_module_move_once_a_step_f2s_from_the_clean_stream():
    _, method = make_method()
    step = warm_up(method, 2)
    clips, ids = batch(step)
    twin = copy.deepcopy(method)
    counts = {name: int(b) for name, b in method.named_buffers() if name.endswith("num_batches_tracked")}
    method(clips, step, ids)
    after = {name: int(b) for name, b in method.named_buffers() if name.endswith("num_batches_tracked")}
    moved = {name: after[name] - counts[name] for name in counts}
    assert set(moved.values()) == {1}, {n: m for n, m in moved.items() if m != 1}
    # f2's running statistics are those of one update from the clean stream f2(f1(x)), which evaluation sees
    twin.encoder.backbone.f2(twin.encoder.backbone.f1(clips[:, 0]))
    state, expected = method.encoder.backbone.f2_layers().state_dict(), twin.encoder.backbone.f2_layers().state_dict()
    for key in expected:
        if "running" in key:
            torch.testing.assert_close(state[key], expected[key], rtol=0, atol=1e-6, msg=key)


def test_l3d_never_looks_up_a_queue2_slot_that_holds_no_code():
    """Queue2 is aligned with Queue1 at stage 2's start (Queue1's pointer carried from stage 1), its slots hold
    no code until written, and eq. 9's nearest neighbour is searched only among slots with a code."""
    _, method = make_method()
    with torch.no_grad():
        method.queue.pointer.fill_(13)  # as if stage 1 had ended mid-queue
        method.queue.ids.copy_(torch.arange(QUEUE) + 1000)
        method.queue.filled.fill_(True)
    method.align_queues()
    assert int(method.codes.pointer) == 13 and not method.codes.filled.any()
    looked_up = []
    original = viewclr_module.world_3d_loss

    def spy(code, queued, index, valid=None):
        looked_up.append((index.clone(), None if valid is None else valid.clone()))
        return original(code, queued, index, valid)

    viewclr_module.world_3d_loss = spy
    try:
        first = method(batch(0)[0], 0, batch(0)[1])
        second = method(batch(1)[0], 1, batch(1)[1])
    finally:
        viewclr_module.world_3d_loss = original
    assert float(first["terms"]["l3d"].detach()) == 0.0  # no code yet: no target
    assert looked_up[0][1] is not None and not looked_up[0][1].any()
    index, valid = looked_up[1]
    written = [(13 + j) % QUEUE for j in range(BATCH)]  # the slots step 0 wrote: 13 … 18
    assert valid.all() and set(index.tolist()) <= set(written)
    assert float(second["terms"]["l3d"].detach()) > 0
    assert int(method.queue.pointer) == int(method.codes.pointer) == (13 + 2 * BATCH) % QUEUE


def test_slot_j_of_both_queues_holds_the_key_and_the_code_of_one_video_across_a_wrap_around():
    """Content, not only pointers and ids: from a pointer mid-queue (13 of 20), 5 steps of 6 videos wrap around
    the queue; afterwards every slot of Queue1 holds the key, and the same slot of Queue2 the auto-encoder's code,
    that the method computed for the video the slot's id names (a code shifted by one place inside a batch fails)."""
    _, method = make_method()
    with torch.no_grad():
        method.queue.pointer.fill_(13)
    method.align_queues()
    keys, codes = {}, {}

    def record_code(module, args, out) -> None:
        codes["now"] = out.code.detach()

    hook = method.generator.register_forward_hook(record_code)
    original_keys = method.keys

    def spy(x, generator):
        keys["now"] = original_keys(x, generator).detach()
        return keys["now"]

    method.keys = spy
    for step in range(5):
        clips, ids = batch(step)
        method(clips, step, ids)
        for j, video in enumerate(ids.tolist()):
            keys[video], codes[video] = keys["now"][j], codes["now"][j]
    hook.remove()
    assert int(method.queue.pointer) == int(method.codes.pointer) == (13 + 5 * BATCH) % QUEUE
    assert torch.equal(method.queue.ids, method.codes.ids) and method.codes.filled.all()
    for slot, video in enumerate(method.queue.ids.tolist()):
        assert torch.equal(method.queue.features[slot], keys[video]), slot
        assert torch.equal(method.codes.features[slot], codes[video]), slot


def test_queue2_stays_slot_aligned_with_queue1_from_a_real_stage_one(tmp_path):
    """Stage 1 of 1 epoch × 4 steps × 4 keys into a queue of 10 ends with the pointer at 6; stage 2 (7 steps,
    28 keys: the queue wraps around) must keep slot j of Queue2 the video of slot j of Queue1."""
    root = tmp_path / "synth"
    generate(SynthSettings(subjects=4, classes=3, size=32, frames=12), root, workers=1, progress=False)
    overrides = [
        "method.queue_size=10",
        "train.stage2_epochs=2",
        "train.max_steps_per_epoch=4",
        "method.grl_schedule=dann",
    ]
    cfg = load_config(None, tiny_training(root, tmp_path / "run", *overrides))
    pretrain(cfg, stage="1", progress=False)
    stage1 = torch.load(tmp_path / "run" / "stage1" / "final.pt", weights_only=False)["method"]
    assert int(stage1["queue.pointer"]) == 6
    pretrain(cfg, stage="2", progress=False)
    stage2 = torch.load(tmp_path / "run" / "stage2" / "final.pt", weights_only=False)["method"]
    assert int(stage2["queue.pointer"]) == int(stage2["codes.pointer"]) == (6 + 8 * 4) % 10
    assert stage2["codes.filled"].all()  # 32 codes written into 10 slots
    assert torch.equal(stage2["codes.ids"], stage2["queue.ids"]) and (stage2["queue.ids"] >= 0).all()
    # method.grl_schedule=dann: the reversal coefficient ramps from 0 over the stage's 8 steps (step / 8)
    grl = [m["train/grl"] for m in read_metrics(tmp_path / "run" / "stage2") if "train/grl" in m]
    assert grl == pytest.approx([2 / (1 + math.exp(-10 * s / 8)) - 1 for s in range(8)], abs=1e-6)


@pytest.mark.parametrize("with_reconstruction", [False, True])
def test_the_auto_encoder_cannot_meet_l3d_by_collapsing_its_codes(with_reconstruction):
    """Training only the auto-encoder, on L3D (and L_R), with each video's "neighbour" an unrelated video: L3D has
    no gradient into the compressor, so it cannot fall by making every code the same; and L_R, which does train
    it, keeps unrelated videos' codes apart although their features share a large mean."""
    torch.manual_seed(0)
    generator = ViewpointGenerator(channels=16, height=4, width=4, hidden=8, low_dim=8)
    features = torch.randn(24, 16, 2, 4, 4).relu() + 2.0  # 24 unrelated videos; ReLU features share a large mean
    neighbour = torch.roll(torch.arange(24), 1)
    optimizer = torch.optim.Adam(generator.autoencoder.parameters(), lr=1e-3)

    def codes_and_l3d():
        out = generator(features)
        return out, world_3d_loss(out.code, out.code.detach(), neighbour)

    first = float(codes_and_l3d()[1].detach())
    for _ in range(300):
        out, l3d = codes_and_l3d()
        loss = l3d + reconstruction_loss(out.reconstruction, out.inter.detach()) if with_reconstruction else l3d
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    out, l3d = codes_and_l3d()
    last = float(l3d.detach())
    unrelated = float((out.code @ out.code.T)[~torch.eye(24, dtype=torch.bool)].mean().detach())
    assert last > 0.9 * first > 1.0, (first, last)  # unrelated codes stay about orthogonal: ≈ √2
    assert abs(unrelated) < 0.2, unrelated
    if not with_reconstruction:  # L3D alone moves nothing in the auto-encoder
        assert all(p.grad is None or p.grad.abs().sum() == 0 for p in generator.autoencoder.parameters())


def test_l3d_alone_on_g_and_fg1_cannot_bring_the_codes_of_different_videos_together():
    """The second way L3D could collapse: with the auto-encoder frozen for L3D, G and fg1 could still make every
    video's code the same. 30 Adam steps of L3D alone on G and fg1, over 24 unrelated videos (6 a step, so Queue2
    holds codes of 20 of them written at different steps): the codes of different videos stay apart (mean cosine
    about 0; without the standardisation over each sub-batch it rose to 0.89 while L3D fell 1.41 → 0.36)."""
    _, method = make_method()
    videos = torch.randn(24, 3, 3, 8, 32, 32, generator=torch.Generator().manual_seed(7))
    optimizer = torch.optim.Adam([*method.fg1.parameters(), *method.generator.projection.parameters()], lr=1e-3)

    def apart() -> float:
        codes, ids = method.codes.features, method.codes.ids
        return float((codes @ codes.T)[ids[:, None] != ids[None, :]].mean())

    for step in range(30):
        which = torch.arange(step * BATCH, (step + 1) * BATCH) % len(videos)
        l3d = method(videos[which], step, which)["terms"]["l3d"]
        optimizer.zero_grad()
        l3d.backward()
        optimizer.step()
        if step == 4:
            early = (float(l3d.detach()), apart())
    assert abs(early[1]) < 0.2 and abs(apart()) < 0.2, (early, apart())
    assert float(l3d.detach()) > 0.6 * early[0], (early, float(l3d.detach()))
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in method.generator.autoencoder.parameters())


def test_codes_are_standardised_over_each_sub_batch_with_the_gradient_through_it():
    from viewclr.models.viewpoint import standardise_groups

    x = (torch.randn(6, 5, dtype=torch.float64) * 3 + torch.arange(5.0)).requires_grad_()
    out = standardise_groups(x, 2)
    for part in out.view(2, 3, 5):
        torch.testing.assert_close(part.mean(0), torch.zeros(5, dtype=torch.float64), atol=1e-12, rtol=0)
        torch.testing.assert_close(part.var(0, unbiased=False), torch.ones(5, dtype=torch.float64), atol=1e-4, rtol=0)
    shared = torch.randn(1, 5, dtype=torch.float64)
    torch.testing.assert_close(standardise_groups(x + shared, 2), out)  # what every sample shares is gone
    (out * torch.randn_like(out)).sum().backward()
    torch.testing.assert_close(x.grad.view(2, 3, 5).sum(1), torch.zeros(2, 5, dtype=torch.float64), atol=1e-9, rtol=0)


def test_every_known_mutation_of_scripts_wiring_mutations_still_applies_to_the_source():
    """scripts/wiring_mutations.py lists the mutations these tests are known to catch (and checks each by running
    them, outside the suite); its text must still name code that exists, once, or the list has drifted."""
    from pathlib import Path

    import viewclr

    script = load_script("wiring_mutations")
    package = Path(viewclr.__file__).parent
    assert len(script.MUTATIONS) >= 15
    for description, relative, old, new in script.MUTATIONS:
        assert (package / relative).read_text().count(old) == 1 and old != new, description
