"""The losses as pure functions, the queue, split BatchNorm."""

import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from viewclr.methods.distributed import SplitBatchNorm, frozen_statistics, sequential_momenta, split_batchnorm
from viewclr.methods.losses import (
    accuracy,
    adversarial_distance,
    infonce,
    instance_accuracy,
    mixed_accuracy,
    mixed_infonce,
    nearest_neighbour,
    reconstruction_loss,
    world_3d_loss,
)
from viewclr.methods.queue import FeatureQueue


def unit(*shape, seed=0):
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_infonce_is_cross_entropy_with_the_positive_first():
    q, k, queue = unit(4, 8), unit(4, 8, seed=1), unit(16, 8, seed=2)
    loss, logits = infonce(q, k, queue, tau=0.1)
    assert logits.shape == (4, 17)
    expected = -torch.log_softmax(torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T], 1) / 0.1, 1)[:, 0].mean()
    torch.testing.assert_close(loss, expected)
    perfect, _ = infonce(q[:1], q[:1], -q[:1].repeat(16, 1), tau=0.07)  # positive identical, negatives opposite
    assert perfect.item() == pytest.approx(math.log1p(16 * math.exp(-2 / 0.07)), abs=1e-7)
    assert infonce(q, k, unit(2047, 8), tau=1e6)[0].item() == pytest.approx(math.log(2048), rel=1e-4)  # chance


def test_instance_accuracy_sees_through_the_drift_shortcut_of_the_pretext_accuracy():
    """An embedding with no instance information, only a direction shared by the current step's queries and keys
    (the momentum encoder drifting) and absent from the older queued keys: eq. 5 finds every positive, while the
    logged instance accuracy (among the step's own keys) is near chance; with instance information it is 1."""
    batch, drift = 16, torch.zeros(32)
    drift[0] = 3.0
    query, key = (
        F.normalize(drift + unit(batch, 32, seed=3), dim=1),
        F.normalize(drift + unit(batch, 32, seed=4), dim=1),
    )
    old = unit(64, 32, seed=5)
    old[:, 0] = 0
    plain, plain_logits = infonce(query, key, F.normalize(old, dim=1), tau=0.07)
    assert accuracy(plain_logits, torch.zeros(batch, dtype=torch.long)) == 1.0 and plain.item() < 0.1
    assert instance_accuracy(query, key, torch.arange(batch)) <= 0.25
    assert instance_accuracy(query, query, torch.arange(batch)) == 1.0


def test_mixed_infonce_soft_targets():
    q, keys, queue = unit(3, 8), unit(3, 8, seed=1), unit(5, 8, seed=2)
    own, partner = torch.arange(3), torch.tensor([2, 0, 1])
    one, logits = mixed_infonce(q, keys, queue, own, partner, torch.ones(3), tau=0.2)
    assert logits.shape == (3, 3 + 5)
    torch.testing.assert_close(one, F.cross_entropy(logits, own))
    half, _ = mixed_infonce(q, keys, queue, own, partner, torch.full((3,), 0.5), tau=0.2)
    torch.testing.assert_close(half, 0.5 * F.cross_entropy(logits, own) + 0.5 * F.cross_entropy(logits, partner))
    lam = torch.tensor([0.2, 0.9, 0.6])
    per_sample, _ = mixed_infonce(q, keys, queue, own, partner, lam, tau=0.2)
    manual = lam * F.cross_entropy(logits, own, reduction="none") + (1 - lam) * F.cross_entropy(
        logits, partner, reduction="none"
    )
    torch.testing.assert_close(per_sample, manual.mean())


def test_nearest_neighbour_and_3d_loss():
    queue = unit(10, 4)
    picks = torch.tensor([7, 2, 2])
    noisy = F.normalize(queue[picks] + 0.01 * unit(3, 4, seed=5), dim=1)
    assert nearest_neighbour(noisy, queue).tolist() == [7, 2, 2]
    codes = unit(10, 6, seed=3)
    code = codes[[7, 2, 2]].clone().requires_grad_(True)
    assert world_3d_loss(code, codes, picks).item() == pytest.approx(0.0, abs=1e-6)
    other = unit(3, 6, seed=9).requires_grad_(True)
    loss = world_3d_loss(other, codes, picks)
    torch.testing.assert_close(loss, (other - codes[picks]).norm(dim=1).mean())
    loss.backward()
    assert other.grad.abs().sum() > 0


def test_adversarial_distance_is_bounded_and_fixes_the_clean_side():
    a = torch.randn(5, 16, requires_grad=True)
    b = torch.randn(5, 16, requires_grad=True)
    d = adversarial_distance(a, b)
    assert 0 <= d.item() <= 2
    assert adversarial_distance(b, b).item() == pytest.approx(0.0, abs=1e-6)
    d.backward()
    assert a.grad.abs().sum() > 0 and b.grad is None  # f(x) is detached
    assert reconstruction_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == 1.0
    assert accuracy(torch.tensor([[0.1, 0.9], [2.0, 1.0]]), torch.tensor([1, 1])).item() == 0.5


def test_queue_wraps_around_and_keeps_order():
    queue = FeatureQueue(size=5, dim=2)
    batches = [torch.full((2, 2), float(i)) for i in range(4)]
    for batch in batches:
        queue.push(batch)
    # 8 rows pushed into 5 slots: slots hold rows 5, 6, 7, 3, 4 (0-based pushes), pointer after row 7 → 3
    assert queue.features[:, 0].tolist() == [2.0, 3.0, 3.0, 1.0, 2.0]
    assert int(queue.pointer) == 3
    with pytest.raises(ValueError, match="queue_size"):
        queue.push(torch.zeros(6, 2))
    assert set(queue.state_dict()) == {"features", "pointer", "ids", "filled"}  # all travel in checkpoints


def test_queue_slots_remember_their_video():
    queue = FeatureQueue(size=5, dim=2)
    queue.push(torch.zeros(2, 2), ids=torch.tensor([10, 11]))
    queue.push(torch.zeros(2, 2))  # no ids: unknown videos
    queue.push(torch.zeros(2, 2), ids=torch.tensor([12, 10]))  # wraps: slots 4 and 0
    assert queue.ids.tolist() == [10, 11, -1, -1, 12]
    same = queue.same_video(torch.tensor([10, 13, -1]))
    assert same.tolist() == [[True, False, False, False, False], [False] * 5, [False] * 5]


def test_excluded_queue_slots_are_neither_negatives_nor_neighbours():
    q, k, queue = unit(3, 8), unit(3, 8, seed=1), unit(6, 8, seed=2)
    exclude = torch.zeros(3, 6, dtype=torch.bool)
    exclude[0, [1, 4]] = True
    exclude[2, 0] = True
    loss, logits = infonce(q, k, queue, tau=0.1, exclude=exclude)
    assert torch.isinf(logits[0, 2]) and torch.isinf(logits[0, 5]) and torch.isfinite(logits[1]).all()
    per_query = [infonce(q[i : i + 1], k[i : i + 1], queue[~exclude[i]], tau=0.1)[0] for i in range(3)]
    torch.testing.assert_close(loss, torch.stack(per_query).mean())  # = dropping those slots from the queue
    keys, own, partner, lam = unit(3, 8, seed=3), torch.arange(3), torch.tensor([1, 2, 0]), torch.rand(3)
    mixed, _ = mixed_infonce(q, keys, queue, own, partner, lam, tau=0.2, exclude=exclude)
    for i in range(3):
        alone, _ = mixed_infonce(q[i : i + 1], keys, queue[~exclude[i]], own[i : i + 1], partner[i : i + 1],
                                 lam[i : i + 1], tau=0.2)  # fmt: skip
        per_query[i] = alone
    torch.testing.assert_close(mixed, torch.stack(per_query).mean())
    near = F.normalize(queue[[1, 3, 0]] + 0.01 * unit(3, 8, seed=5), dim=1)
    assert nearest_neighbour(near, queue).tolist() == [1, 3, 0]
    second = nearest_neighbour(near, queue, exclude)  # the nearest slot is the query's own video: the next one
    assert second[1].item() == 3 and second[0].item() not in (1, 4) and second[2].item() != 0
    assert second[0].item() == torch.cdist(near[:1], queue).masked_fill(exclude[:1], float("inf")).argmin().item()


@pytest.mark.parametrize("splits", [2, 3])
@pytest.mark.parametrize("momentum", [0.1, None])  # None: BatchNorm's cumulative average
def test_split_batchnorm_normalises_each_sub_batch_alone(splits, momentum):
    """Three training steps: each sub-batch normalised as by a BatchNorm of its own; the running statistics are
    the average of those the separate BatchNorms record."""
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm3d(4, momentum=momentum).double()
    split = SplitBatchNorm(4, splits=splits, momentum=momentum).double()
    split.load_state_dict(bn.state_dict())
    separate = [torch.nn.BatchNorm3d(4, momentum=momentum).double() for _ in range(splits)]
    for step in range(3):
        x = torch.randn(6, 4, 2, 3, 3, dtype=torch.float64) * torch.tensor([1.0, 2, 3, 4]).view(1, 4, 1, 1, 1)
        x[3:] += 5 + step  # the second half is shifted: joint statistics would differ
        out = split(x)
        expected = torch.cat([layer(part) for layer, part in zip(separate, x.chunk(splits), strict=True)])
        torch.testing.assert_close(out, expected, atol=1e-12, rtol=1e-12)
    for name in ("running_mean", "running_var"):
        average = torch.stack([getattr(layer, name) for layer in separate]).mean(0)
        torch.testing.assert_close(getattr(split, name), average, atol=1e-14, rtol=1e-14)
    assert int(split.num_batches_tracked) == 3
    split.eval()
    torch.testing.assert_close(
        split(x),
        F.batch_norm(x, split.running_mean, split.running_var, split.weight, split.bias, False, 0.0, split.eps),
    )
    model = split_batchnorm(torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4)), 2)
    assert isinstance(model[1], SplitBatchNorm)


@pytest.mark.parametrize("splits", [1, 2, 3, 5])
@pytest.mark.parametrize("momentum", [0.1, 0.5, 1.0])
def test_sequential_momenta_apply_the_average_of_the_sub_batches_updates(splits, momentum):
    running, stats = torch.randn(7, dtype=torch.float64), torch.randn(splits, 7, dtype=torch.float64)
    moved = running.clone()
    for m, stat in zip(sequential_momenta(momentum, splits), stats, strict=True):
        moved = (1 - m) * moved + m * stat
    average = ((1 - momentum) * running + momentum * stats).mean(0)  # s updates from the same r, averaged
    torch.testing.assert_close(moved, average, atol=1e-15, rtol=1e-14)
    assert sequential_momenta(momentum, 1) == [momentum]


def test_shuffled_forward_returns_outputs_in_the_original_order():
    from viewclr.methods.distributed import shuffled_forward

    x = torch.arange(8.0).view(8, 1)
    out = shuffled_forward(lambda batch: batch * 2, x, torch.Generator().manual_seed(0))
    assert torch.equal(out, x * 2)
    # with per-sub-batch statistics the shuffle changes who is normalised with whom, not where outputs go
    bn = SplitBatchNorm(1, splits=2)
    plain = bn(x.view(8, 1, 1, 1, 1)).flatten()
    shuffled = shuffled_forward(lambda b: bn(b.view(-1, 1, 1, 1, 1)).flatten(), x, torch.Generator().manual_seed(0))
    assert not torch.allclose(plain, shuffled)


def test_mixing_permutation_deals_every_block_equally_into_every_block():
    from viewclr.methods.distributed import mixing_permutation

    for n, blocks in ((16, 2), (16, 4), (12, 3), (18, 3)):
        size = n // blocks
        for seed in range(5):
            perm = mixing_permutation(n, blocks, torch.Generator().manual_seed(seed))
            assert sorted(perm.tolist()) == list(range(n))
            # block j of the result (the samples encoded together) holds size / blocks of each input block
            counts = torch.stack(
                [(perm[j * size : (j + 1) * size] // size).bincount(minlength=blocks) for j in range(blocks)]
            )
            assert counts.max() - counts.min() <= 1 and counts.sum() == n
            if size % blocks == 0:
                assert (counts == size // blocks).all()
    # more blocks than samples per block: no result block holds two samples of one input block
    perm = mixing_permutation(16, 8, torch.Generator().manual_seed(0))
    assert all(len(set((perm[j : j + 2] // 2).tolist())) == 2 for j in range(0, 16, 2))
    assert sorted(mixing_permutation(5, 1, torch.Generator().manual_seed(0)).tolist()) == list(range(5))
    assert sorted(mixing_permutation(6, 4, torch.Generator().manual_seed(0)).tolist()) == list(range(6))


def test_shuffled_keys_are_not_normalised_with_their_querys_batch_mates():
    """The BatchNorm leak of MoCo (§3.3 of He et al.): if a key's sub-batch holds the same samples as its query's,
    both carry the same batch statistics and the pretext task can be solved from them. Here the 'statistic' is the
    sub-batch mean of x = 0 … 15: each query's is 3.5 or 11.5 with 2 sub-batches (a key's mixes 4 + 4 samples, so
    lies in 5.5 … 9.5) and 1.5, 5.5, 9.5 or 13.5 with 4 (a key's mixes one sample of each quarter: 6 … 9). Moving
    whole sub-batches (this project's earlier shuffle) gives a difference of exactly 0."""
    from viewclr.methods.distributed import shuffled_forward

    x = torch.arange(16.0)
    for blocks, least in ((2, 2.0), (4, 0.5)):

        def block_means(batch, blocks=blocks):
            return batch.view(blocks, -1).mean(1).repeat_interleave(len(batch) // blocks)

        for seed in range(10):
            keys = shuffled_forward(block_means, x, torch.Generator().manual_seed(seed), blocks)
            assert (keys - block_means(x)).abs().min() >= least


def test_mixing_partners_stay_in_their_sub_batch():
    """ViewCLR.mixing: λ in [0, 1] per clip; each clip's partner is another clip of its own BatchNorm sub-batch
    (features can only be mixed where they were normalised together)."""
    from types import SimpleNamespace

    from viewclr.config import ModelConfig
    from viewclr.methods import ViewCLR
    from viewclr.models import build_backbone, split_shape

    backbone = build_backbone("s3d", width=0.125)
    cfg = SimpleNamespace(queue_size=8, alpha=1.0, use_generator=True, use_l3d=False, use_adv=False, bn_splits=2)
    method = ViewCLR(backbone, cfg, ModelConfig(width=0.125, npl_hidden=8), split_shape(backbone, 8, 32))
    lam, mates = method.mixing(16, torch.Generator().manual_seed(3), "cpu")
    assert lam.shape == (16,) and lam.min() >= 0 and lam.max() <= 1 and lam.std() > 0.1
    assert sorted(mates.tolist()) == list(range(16)) and mates.tolist() != list(range(16))
    assert (mates[:8] < 8).all() and (mates[8:] >= 8).all()  # sub-batches of 8: partners stay inside


@pytest.mark.parametrize("splits", [1, 2])
def test_frozen_statistics_normalise_as_in_training_but_record_nothing(splits):
    torch.manual_seed(0)
    model = split_batchnorm(torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4)), splits)
    x = torch.randn(6, 3, 2, 3, 3) + 2.0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with frozen_statistics(model):
        frozen = model(x)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())  # running mean, var, count
    assert model[1].track_running_stats  # restored on the way out
    torch.testing.assert_close(frozen, model(x))  # the same batch statistics as a training pass
    assert int(model[1].num_batches_tracked) == 1 and not torch.equal(model[1].running_mean, state["1.running_mean"])


def test_mixed_accuracy_counts_the_own_or_the_partners_key():
    logits = torch.tensor([[5.0, 0, 0, 0], [0, 0, 5.0, 0], [0, 0, 0, 5.0], [0, 5.0, 0, 0]])  # argmax 0, 2, 3, 1
    own, partner = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 3, 2])
    assert float(mixed_accuracy(logits, own, partner)) == 0.75  # rows 0 (own), 1 and 2 (partner); row 3 neither
    assert float(accuracy(logits, own)) == 0.25


def test_3d_loss_counts_only_samples_with_a_neighbour():
    code, queued = unit(3, 4, seed=1), unit(5, 4, seed=2)
    index = torch.tensor([4, 0, 2])
    per_sample = (code - queued[index]).norm(dim=1)
    valid = torch.tensor([True, False, True])
    torch.testing.assert_close(world_3d_loss(code, queued, index, valid), per_sample[valid].mean())
    none = world_3d_loss(code.requires_grad_(), queued, index, torch.zeros(3, dtype=torch.bool))
    assert float(none.detach()) == 0.0 and none.requires_grad


def test_a_queue_restarted_at_a_pointer_holds_nothing_until_written():
    queue = FeatureQueue(size=7, dim=3)
    queue.push(unit(5, 3), ids=torch.arange(5))
    assert queue.filled.tolist() == [True] * 5 + [False] * 2
    queue.restart_at(12)
    assert int(queue.pointer) == 5 and not queue.filled.any() and (queue.ids == -1).all()
    queue.push(unit(4, 3, seed=3), ids=torch.arange(4) + 10)
    assert queue.filled.tolist() == [True, True, False, False, False, True, True]
    assert queue.ids.tolist() == [12, 13, -1, -1, -1, 10, 11]


class TransposedSplitBatchNorm(SplitBatchNorm):
    """The earlier implementation, kept as the reference: sub-batches folded into channels by a transposed copy."""

    def forward(self, x):
        if not self.training or self.splits == 1:
            return torch.nn.BatchNorm3d.forward(self, x)
        n, c = x.shape[:2]
        grouped = x.view(self.splits, n // self.splits, c, *x.shape[2:]).transpose(0, 1)
        grouped = grouped.reshape(n // self.splits, self.splits * c, *x.shape[2:])
        mean, var = self.running_mean.repeat(self.splits), self.running_var.repeat(self.splits)
        out = F.batch_norm(grouped, mean, var, self.weight.repeat(self.splits), self.bias.repeat(self.splits), True,
                           self.momentum, self.eps)  # fmt: skip
        with torch.no_grad():
            self.running_mean.copy_(mean.view(self.splits, c).mean(0))
            self.running_var.copy_(var.view(self.splits, c).mean(0))
            self.num_batches_tracked += 1
        out = out.view(n // self.splits, self.splits, c, *x.shape[2:]).transpose(0, 1)
        return out.reshape(x.shape)


def assert_same_step(new, old, x):
    """Forward and backward of two BatchNorm layers on the same input: output, input and parameter gradients
    bitwise equal; running statistics equal to a few units of the last place (the sub-batches' updates are summed
    in another order). Returns the output."""
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_new, out_old = new(a), old(b)
    upstream = torch.randn_like(out_new)
    (out_new * upstream).sum().backward()
    (out_old * upstream).sum().backward()
    assert torch.equal(out_new, out_old) and torch.equal(a.grad, b.grad)
    assert torch.equal(new.weight.grad, old.weight.grad) and torch.equal(new.bias.grad, old.bias.grad)
    ulps = 8 * torch.finfo(x.dtype).eps
    torch.testing.assert_close(new.running_mean, old.running_mean, rtol=ulps, atol=ulps)
    torch.testing.assert_close(new.running_var, old.running_var, rtol=ulps, atol=0)
    return out_new


@pytest.mark.parametrize("splits", [2, 3])
@pytest.mark.parametrize("positions", [(3, 4, 4), (1, 1, 1)])  # a map of one position takes the folded path
def test_split_batchnorm_equals_the_transposed_reference_bit_for_bit_in_float64(splits, positions):
    torch.manual_seed(0)
    x = torch.randn(6, 5, *positions, dtype=torch.float64) * 3 + 1
    new, old = SplitBatchNorm(5, splits).double(), TransposedSplitBatchNorm(5, splits).double()
    with torch.no_grad():
        new.weight.normal_()
        new.bias.normal_()
    old.load_state_dict(new.state_dict())
    out_new = assert_same_step(new, old, x)
    channels_last = x.contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(new(channels_last), out_new, rtol=0, atol=1e-12)  # either memory format


def test_moco_and_viewclr_losses_are_bitwise_those_of_the_transposed_split_batchnorm(monkeypatch):
    """Three training steps of MoCo and of ViewCLR in float64 give exactly the losses of the earlier
    implementation of the one-device shuffle-BN emulation."""
    import viewclr.methods.distributed as distributed
    from viewclr.config import load_config
    from viewclr.methods import build_method

    sizes = ["model.width=0.125", "model.npl_hidden=8", "model.low_dim=8", "model.proj_dim=16", "data.frames=8"]
    cfg = load_config(None, [*sizes, "augment.size=32", "data.batch_size=4", "method.queue_size=8"])

    def losses() -> list[float]:
        values = []
        for kind in ("infonce", "viewclr"):
            torch.manual_seed(0)
            method = build_method(cfg, kind).double()
            optimizer = torch.optim.SGD([p for _, p in method.trainable()], lr=0.01)
            clips = torch.randn(3, 4, method.num_views, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
            for step in range(3):
                loss = method(clips[step].double(), step)["loss"]
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                values.append(loss.item())
        return values

    new = losses()
    monkeypatch.setattr(distributed, "SplitBatchNorm", TransposedSplitBatchNorm)
    assert losses() == new


class JoinedSplitBatchNorm(SplitBatchNorm):
    """The implementation before the sub-batch kernel, kept as a reference: each sub-batch by F.batch_norm, the
    outputs joined by torch.cat."""

    def forward(self, x):
        if not self.training or self.splits == 1:
            return torch.nn.BatchNorm3d.forward(self, x)
        c, s = x.shape[1], self.splits
        mean = self.running_mean.repeat(s) if self.track_running_stats else None
        var = self.running_var.repeat(s) if self.track_running_stats else None
        weight, bias = self.weight.repeat(s), self.bias.repeat(s)
        out = torch.cat([
            F.batch_norm(part, None if mean is None else mean[j * c : (j + 1) * c],
                         None if var is None else var[j * c : (j + 1) * c], weight[j * c : (j + 1) * c],
                         bias[j * c : (j + 1) * c], True, self.momentum, self.eps)
            for j, part in enumerate(x.chunk(s))
        ])  # fmt: skip
        if mean is not None:
            with torch.no_grad():
                self.running_mean.copy_(mean.view(s, c).mean(0))
                self.running_var.copy_(var.view(s, c).mean(0))
                self.num_batches_tracked += 1
        return out


@pytest.mark.parametrize("splits", [2, 3])
def test_a_split_batchnorm_used_twice_in_a_step_gets_the_references_gradients_bit_for_bit(splits):
    """A layer applied to several inputs in one step (the generator's, in stage 2): its weight's gradient sums the
    sub-batches of each call first, then the calls, exactly as the reference does — not in the order autograd
    happens to accumulate every sub-batch's contribution."""
    torch.manual_seed(0)
    new, old = SplitBatchNorm(5, splits), TransposedSplitBatchNorm(5, splits)
    old.load_state_dict(new.state_dict())
    inputs = [torch.randn(6, 5, 3, 4, 4) * 3 + k for k in range(3)]
    upstream = [torch.randn(6, 5, 3, 4, 4) for _ in inputs]
    for layer in (new, old):
        sum((layer(x) * u).sum() for x, u in zip(inputs, upstream, strict=True)).backward()
    assert torch.equal(new.weight.grad, old.weight.grad) and torch.equal(new.bias.grad, old.bias.grad)


@pytest.mark.parametrize("splits", [2, 3])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last_3d])
def test_split_batchnorm_equals_joining_sub_batch_outputs_with_and_without_autograd(splits, memory_format):
    """float32, either memory format, with and without recording statistics, with autograd (the query encoder)
    and without (the key encoder, whose outputs are written into one tensor): output and every gradient exactly
    those of normalising each sub-batch on its own and joining the outputs; running statistics to the last
    places."""
    torch.manual_seed(0)
    x = (torch.randn(6, 5, 3, 4, 4) * 3 + 1).contiguous(memory_format=memory_format)
    new, old = SplitBatchNorm(5, splits), JoinedSplitBatchNorm(5, splits)
    with torch.no_grad():
        new.weight.normal_()
        new.bias.normal_()
    old.load_state_dict(new.state_dict())
    for frozen in (False, True):
        with frozen_statistics(new, old) if frozen else contextlib.nullcontext():
            assert assert_same_step(new, old, x).is_contiguous(memory_format=memory_format)
        assert new.num_batches_tracked.item() == old.num_batches_tracked.item() == 1  # the frozen pass adds none
    for frozen in (False, True):
        with torch.no_grad(), frozen_statistics(new, old) if frozen else contextlib.nullcontext():
            out = new(x)
            assert torch.equal(out, old(x)) and out.is_contiguous(memory_format=memory_format)
        ulps = 8 * torch.finfo(x.dtype).eps
        torch.testing.assert_close(new.running_mean, old.running_mean, rtol=ulps, atol=ulps)
        torch.testing.assert_close(new.running_var, old.running_var, rtol=ulps, atol=0)
        assert new.num_batches_tracked.item() == old.num_batches_tracked.item() == 2
    # the sub-batches' statistics differ, so a plain BatchNorm over the batch gives other numbers
    plain = torch.nn.BatchNorm3d(5)
    plain.load_state_dict(new.state_dict())
    assert not torch.allclose(plain(x), new(x), atol=1e-3)
