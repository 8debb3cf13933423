"""ViewCLR's losses as pure functions of tensors (no modules, no state): each is tested on its own.

Embeddings are L2-normalised [B, D]; queues are [K, D]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _negatives(query: torch.Tensor, queue: torch.Tensor, exclude: torch.Tensor | None) -> torch.Tensor:
    """[B, K] similarities to the queue; slots in `exclude` ([B, K] bool: keys of the query's own video) are −inf,
    so they are neither negatives nor candidates."""
    similarity = query @ queue.T
    return similarity if exclude is None else similarity.masked_fill(exclude, float("-inf"))


def infonce_logits(
    query: torch.Tensor, positive: torch.Tensor, queue: torch.Tensor, tau: float, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """[B, 1 + K] similarities / τ: the positive key first, then every queued negative (eq. 5)."""
    positive_logit = (query * positive).sum(1, keepdim=True)
    return torch.cat([positive_logit, _negatives(query, queue, exclude)], dim=1) / tau


def infonce(
    query: torch.Tensor,
    positive: torch.Tensor,
    queue: torch.Tensor,
    tau: float = 0.07,
    exclude: torch.Tensor | None = None,
):
    """MoCo's InfoNCE (eq. 5): cross-entropy of picking the positive among 1 + K (minus the `exclude`d slots).
    Returns (loss, logits)."""
    logits = infonce_logits(query, positive, queue, tau, exclude)
    target = torch.zeros(len(query), dtype=torch.long, device=query.device)
    return F.cross_entropy(logits, target), logits


def mixed_infonce(
    query: torch.Tensor,
    keys: torch.Tensor,
    queue: torch.Tensor,
    own: torch.Tensor,
    partner: torch.Tensor,
    lam: torch.Tensor,
    tau: float = 0.07,
    exclude: torch.Tensor | None = None,
):
    """i-Mix's contrastive loss of a mixed query (eq. 6–7): logits over [all batch keys; queue], soft target
    λ on the query's own key and 1 − λ on its mixing partner's. `own`, `partner` index columns of `keys`
    [N, D] (N ≥ B: in multi-GPU runs every GPU's keys); λ is per sample [B]; `exclude` [B, K] masks queue slots
    that hold the query's or its partner's video. Returns (loss, logits)."""
    logits = torch.cat([query @ keys.T, _negatives(query, queue, exclude)], dim=1) / tau
    log_p = F.log_softmax(logits, dim=1)
    own_term = -log_p.gather(1, own[:, None])[:, 0]
    partner_term = -log_p.gather(1, partner[:, None])[:, 0]
    return (lam * own_term + (1 - lam) * partner_term).mean(), logits


def nearest_neighbour(
    embedding: torch.Tensor, queue: torch.Tensor, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 9: index of the queue entry nearest to each embedding (Euclidean; = highest cosine for unit vectors),
    other than the slots in `exclude` ([B, K] bool: the embedding's own video)."""
    distance = torch.cdist(embedding.float(), queue.float())
    if exclude is not None:
        distance = distance.masked_fill(exclude, float("inf"))
    return distance.argmin(dim=1)


def world_3d_loss(
    code: torch.Tensor, queued_codes: torch.Tensor, index: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 10: ‖F_W,inter(x) − Queue2[idx]‖ (per sample, averaged), idx from eq. 9. `valid` [B] bool: the samples
    that have a neighbour (at stage 2's start Queue2 holds no code yet); the others add nothing, and with none
    the loss is 0 (still a function of `code`, so every process's graph has the same parameters)."""
    distance = (code - queued_codes[index].detach()).norm(dim=1)
    if valid is None:
        return distance.mean()
    return (distance * valid).sum() / valid.sum().clamp_min(1)


def adversarial_distance(generated: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Eq. 11's d = ‖fg2(G(fg1(x″))) − f(x)‖ on L2-normalised pooled features, f(x) fixed. The encoder fg2
    minimises it; the generator, behind the gradient reversal layer, maximises it."""
    return (F.normalize(generated, dim=1) - F.normalize(clean, dim=1).detach()).norm(dim=1).mean()


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_R of the world auto-encoder: mean squared error to F_inter."""
    return F.mse_loss(reconstruction, target)


@torch.no_grad()
def instance_accuracy(query: torch.Tensor, keys: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """How often a query's own key is the most similar of the batch's keys (chance 1/N). The keys of one step are
    equally fresh, so unlike the pretext accuracy against an older queue this cannot be won by telling new keys from
    old ones: it measures instance discrimination itself."""
    return accuracy(query.detach() @ keys.T, own)


@torch.no_grad()
def mixed_accuracy(logits: torch.Tensor, own: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
    """The λ-aware pretext accuracy of mixed queries: how often the most similar key is the query's own or its
    mixing partner's (both are targets of eq. 7's Y). Counting the own key alone, a perfect model would score
    only about half, since with λ ~ U(0, 1) half of the queries are mostly their partner."""
    top = logits.argmax(dim=1)
    return ((top == own) | (top == partner)).float().mean()


def accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Top-1 accuracy of the pretext task (the (N+1)-way choice of Fig. 5)."""
    return (logits.argmax(dim=1) == target).float().mean()
