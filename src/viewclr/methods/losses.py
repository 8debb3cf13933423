"""ViewCLR's losses as pure functions of tensors (no modules, no state): each is tested on its own.

Shapes throughout: B queries, N keys of the global batch (N ≥ B: every GPU's), K queue slots, D the embedding
size. Embeddings and queues are L2-normalised.
"""

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
    """MoCo's InfoNCE (eq. 5): cross-entropy of picking the positive among 1 + K.

    Args:
        query: [B, D] q = f(x).
        positive: [B, D] each query's key k⁺ = f_k(x′).
        queue: [K, D] Queue1, the negatives.
        tau: the temperature τ.
        exclude: [B, K] bool, queue slots that are no negatives of a query (an older key of its own video).

    Returns:
        (loss: scalar, logits: [B, 1 + K], the positive in column 0).
    """
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
    """i-Mix's contrastive loss of a mixed query (eq. 6–7): logits over [every key of the batch; queue], soft
    target λ on the query's own key and 1 − λ on its mixing partner's.

    Args:
        query: [B, D] the mixed queries q = head(f2(m)).
        keys: [N, D] every key of the global batch.
        queue: [K, D] Queue1.
        own, partner: [B] long, columns of `keys`: each query's own key and its partner r(i)'s.
        lam: [B] λ of each query.
        tau: the temperature τ.
        exclude: [B, K] bool, queue slots holding the query's or its partner's video.

    Returns:
        (loss: scalar, logits: [B, N + K]).
    """
    logits = torch.cat([query @ keys.T, _negatives(query, queue, exclude)], dim=1) / tau
    log_p = F.log_softmax(logits, dim=1)
    own_term = -log_p.gather(1, own[:, None])[:, 0]
    partner_term = -log_p.gather(1, partner[:, None])[:, 0]
    return (lam * own_term + (1 - lam) * partner_term).mean(), logits


def nearest_neighbour(
    embedding: torch.Tensor, queue: torch.Tensor, exclude: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 9: the queue slot nearest to each embedding (Euclidean; the highest cosine for unit vectors).

    Args:
        embedding: [B, D] f(x).
        queue: [K, D] Queue1.
        exclude: [B, K] bool, slots that may not be chosen (unwritten in Queue2, or the embedding's own video).

    Returns:
        [B] long, slot indices (a row with every slot excluded gets an arbitrary index: mask it with `valid`).
    """
    distance = torch.cdist(embedding.float(), queue.float())
    if exclude is not None:
        distance = distance.masked_fill(exclude, float("inf"))
    return distance.argmin(dim=1)


def world_3d_loss(
    code: torch.Tensor, queued_codes: torch.Tensor, index: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Eq. 10: ‖F_W,inter(x″) − Queue2[idx]‖, averaged over the samples that have a neighbour.

    Args:
        code: [B, d_low] F_W,inter of the batch (carries the gradient).
        queued_codes: [K, d_low] Queue2 (detached here).
        index: [B] long, eq. 9's slot of each sample.
        valid: [B] bool, the samples that have a neighbour (at stage 2's start Queue2 holds no code yet); with
            none the loss is 0, still a function of `code`, so every process's graph has the same parameters.

    Returns:
        scalar.
    """
    distance = (code - queued_codes[index].detach()).norm(dim=1)
    if valid is None:
        return distance.mean()
    return (distance * valid).sum() / valid.sum().clamp_min(1)


def adversarial_distance(generated: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Eq. 11's d = ‖fg2(G(fg1(x″))) − f(x)‖ on L2-normalised pooled features, f(x) fixed. fg2 minimises it;
    the generator, behind the gradient reversal layer, maximises it.

    Args:
        generated: [B, C] pooled fg2(G(fg1(x″))).
        clean: [B, C] pooled f2(f1(x)) (detached here).

    Returns:
        scalar in [0, 2].
    """
    return (F.normalize(generated, dim=1) - F.normalize(clean, dim=1).detach()).norm(dim=1).mean()


def reconstruction_loss(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L_R of the world auto-encoder: the mean squared error of reconstruction [B, world_dim] to F_inter
    (target [B, world_dim], detached by the caller). Returns a scalar."""
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
