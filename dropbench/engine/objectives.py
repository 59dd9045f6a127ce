"""Training objectives: how the logits of a batch's training pass(es) become the loss.

An objective object (built from the `objective` config by the builder its registration names,
dropbench/objectives.py) has
    passes   how many training passes of each batch it needs, each with its own dropout masks
    columns  the extra per-epoch training columns it records in metrics.csv (e.g. train_kl)
    loss(logits, target) -> (loss to back-propagate, mean cross-entropy over the passes,
                             one value per column), the last two detached
where `logits` holds one (N, C) tensor per pass and `target` the (N,) labels; N counts
examples (classifiers) or tokens (language models). The task runs the passes (tasks.py,
lm.py); evaluation never uses an objective.

R-Drop (Liang et al. 2021, "R-Drop: Regularized Dropout for Neural Networks", NeurIPS), eq. 3:
per example i, L_i = NLL1_i + NLL2_i + alpha * KL_i with KL_i = (KL(P1||P2) + KL(P2||P1)) / 2,
P1 and P2 the predictive distributions of two passes with independent dropout masks. The loss
here is half of that, averaged over the batch's examples (tokens):

    loss = mean_i [ (NLL1_i + NLL2_i) / 2 + (alpha / 2) * KL_i ]

so alpha is the paper's alpha (the KL's weight relative to the NLL is the same), alpha=0 is
exactly the mean cross-entropy of the two passes, and the loss sits on the scale of one
cross-entropy like every other run's (the gradient is half of eq. 3's: with the same learning
rate it is eq. 3 at half the step). metrics.csv's `train_kl` is mean_i KL_i, the paper's
symmetric L_KL; `train_loss` stays the cross-entropy, averaged over both passes.

Both KL directions are computed from log-softmax outputs, so logits whose probabilities
underflow to 0 in float32 still give a finite, exact KL.
"""

import torch
import torch.nn.functional as F
from torch import nn

from dropbench import registry

KL_COLUMN = "train_kl"


class CrossEntropy:
    """The cross-entropy of one training pass."""

    passes = 1
    columns: tuple[str, ...] = ()

    def __init__(self, cfg=None):
        pass

    def loss(self, logits: list[torch.Tensor], target: torch.Tensor):
        ce = F.cross_entropy(logits[0], target)
        return ce, ce.detach(), []


def symmetric_kl(logits_a: torch.Tensor, logits_b: torch.Tensor) -> torch.Tensor:
    """(KL(P_a||P_b) + KL(P_b||P_a)) / 2 per row, (N,), for softmax distributions over the last
    dim. KL(P||Q) + KL(Q||P) = sum_c (p_c - q_c)(log p_c - log q_c): one pass over the classes,
    in log space, in float32 (bf16/fp16 logits from autocast are upcast first)."""
    log_p = F.log_softmax(logits_a.float(), dim=-1)
    log_q = F.log_softmax(logits_b.float(), dim=-1)
    return 0.5 * ((log_p.exp() - log_q.exp()) * (log_p - log_q)).sum(-1)


class RDrop:
    """R-Drop: two passes, half the paper's eq. 3 per example (see the module docstring)."""

    passes = 2
    columns = (KL_COLUMN,)

    def __init__(self, cfg):
        self.alpha = float(cfg.alpha)

    def loss(self, logits: list[torch.Tensor], target: torch.Tensor):
        first, second = logits
        ce = 0.5 * (F.cross_entropy(first, target) + F.cross_entropy(second, target))
        kl = symmetric_kl(first, second).mean()
        return ce + 0.5 * self.alpha * kl, ce.detach(), [kl.detach()]


def build_objective(cfg):
    """The objective the `objective` config names; the cross-entropy when there is none (a
    config written before objectives existed)."""
    if cfg is None:
        return CrossEntropy()
    return registry.OBJECTIVES.get(cfg.name, "objective.name").load()(cfg)


# --- running several passes -----------------------------------------------------------------
def rows_independent(model: nn.Module) -> bool:
    """Whether the rows of a training batch go through `model` independently: every dropout
    module draws its masks per example (describe.py's `mask_examples`) and normalises per
    example, and no layer pools statistics over the batch (BatchNorm). Then one forward of the
    batch stacked on itself is exactly two passes with independent masks."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            return False  # batch statistics over both copies, not per pass
        if getattr(module, "dropout_place", None) is None:
            continue
        if getattr(module, "mask_examples", "per example") != "per example":
            return False  # one mask for the batch: both copies would share it
        if getattr(module, "couples_examples", False):
            return False  # e.g. DropBlock's rescaling counts kept units over the whole batch
    return True


def repeated_forward(model, x: torch.Tensor, passes: int, together: bool) -> list[torch.Tensor]:
    """`passes` training-mode outputs of `model` on the batch x (examples along dim 0), each
    with its own dropout masks: one forward of x repeated `passes` times along the batch when
    `together` (exact only where rows_independent(model)), else one forward per pass."""
    if passes == 1:
        return [model(x)]
    if together:
        return list(model(x.repeat(passes, *[1] * (x.dim() - 1))).chunk(passes))
    return [model(x) for _ in range(passes)]
