"""Contrastive alignment loss shared by the aligners.

``delta_loss(v, w)`` is the one-directional InfoNCE loss that CAMA-BC calls δ: the cosine-similarity
matrix between the rows of ``v`` and ``w`` (one row per sample), a log-softmax along each row, and
the negative mean of the diagonal. Sample i of ``v`` is pulled towards sample i of ``w`` and pushed
away from every other sample of ``w`` in the batch.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

#: Added to vector norms so that a zero vector has similarity 0 with everything instead of NaN.
NORM_EPS = 1e-8

#: A batch of one has no negatives; the warning is logged on the first skip and then every this many.
SINGLE_SAMPLE_WARNING_EVERY = 1000

_single_sample_skips = 0


def delta_loss(v: torch.Tensor, w: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Compute δ(v, w) for embeddings ``v`` and ``w`` of shape (B, D); returns a float32 scalar.

    Rows are L2-normalised (with ``NORM_EPS``), the (B, B) similarity matrix ``v̂ ŵᵀ / temperature``
    goes through a row-wise log-softmax, and the loss is minus the mean of its diagonal. The loss is
    not symmetric: δ(v, w) ranks the samples of ``w`` for each sample of ``v``.

    With B = 1 there are no negatives, so the term is skipped: the result is a zero that stays
    connected to the inputs (``backward`` works and gives zero gradients) and a warning is logged,
    rate-limited to once per ``SINGLE_SAMPLE_WARNING_EVERY`` skips.
    """
    if v.shape != w.shape or v.dim() != 2:
        raise ValueError(f"delta_loss expects two (B, D) tensors of the same shape, got {tuple(v.shape)} "
                         f"and {tuple(w.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    # Computed in float32 so bf16 autocast does not round similarities that differ by less than 1e-2.
    v = v.float()
    w = w.float()
    if v.shape[0] < 2:
        _warn_single_sample()
        return (v.sum() + w.sum()) * 0.0

    v_unit = F.normalize(v, dim=-1, eps=NORM_EPS)
    w_unit = F.normalize(w, dim=-1, eps=NORM_EPS)
    similarity = v_unit @ w_unit.T / temperature  # (B, B)
    log_probabilities = F.log_softmax(similarity, dim=-1)
    return -log_probabilities.diagonal().mean()


def _warn_single_sample() -> None:
    global _single_sample_skips
    _single_sample_skips += 1
    if _single_sample_skips == 1 or _single_sample_skips % SINGLE_SAMPLE_WARNING_EVERY == 0:
        logger.warning(
            "Skipped a contrastive term because the batch has 1 sample and so no negatives "
            "(%d such terms skipped so far). Use a batch size of at least 2, or drop the last "
            "incomplete batch, to train the alignment loss.",
            _single_sample_skips,
        )
