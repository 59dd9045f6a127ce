"""What a training task supplies to the loop: batches, a loss, and evaluation on a split.

A task keeps its data on the device. `step` returns the mean loss to back-propagate plus
on-device sums (loss_sum, metric_sum, count) that the loop adds up without syncing per step.
`train_step` is the training step under the run's objective (engine/objectives.py): its sums
carry one more entry per objective column (e.g. the KL of R-Drop), times the count, and its
loss_sum and metric_sum are the means over the objective's passes.
"""

import torch
import torch.nn.functional as F

import dropbench.engine.mc as mc
from dropbench.engine.batches import ExampleBatches
from dropbench.engine.lm import LanguageModelTask
from dropbench.engine.objectives import (
    CrossEntropy,
    build_objective,
    repeated_forward,
    rows_independent,
)
from dropbench.engine.regress import RegressionTask


class ClassificationTask(ExampleBatches):
    metric = "acc"
    supports_mc = True  # eval.mode=mc and eval.compare work (engine/mc.py)

    def __init__(self, data, batch_size: int, train_eval_size: int, mc_samples: int = 0,
                 objective=None):
        self.data = data
        self.objective = objective if objective is not None else CrossEntropy()
        self.together = None  # several passes as one forward: decided on the first batch
        self.batch_size = batch_size
        self.mc_samples = mc_samples  # > 0: score by the mean of this many stochastic passes
        # A fixed training subset scored in eval mode: the honest "train" side of the gap.
        self.train_eval = data.train.head(train_eval_size)

    def step(self, model, batch):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        n = y.new_tensor(len(y), dtype=torch.float32)
        correct = (logits.argmax(1) == y).sum().float()
        return loss, torch.stack([loss.detach() * n, correct, n])

    @staticmethod
    def score_outputs(logits: torch.Tensor, y: torch.Tensor):
        """`step`'s (loss, sums) from logits (..., B, C) and labels (..., B) or (B,), written
        for leading member dims: a stack of K models passes (K, B, C) logits and gets each
        member's own (K,) losses and (K, 3) sums without running the step under vmap. The
        same quantities as `step`, the loss as the mean of the examples' cross-entropies."""
        y = y.expand(logits.shape[:-1])
        losses = F.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none")
        loss = losses.view(y.shape).mean(-1)
        n = torch.full_like(loss, y.shape[-1])
        correct = (logits.argmax(-1) == y).sum(-1).float()
        return loss, torch.stack([loss.detach() * n, correct, n], dim=-1)

    def train_step(self, model, batch):
        """The objective's loss over its passes of the batch (one pass: `step` exactly)."""
        x, y = batch
        passes = self.objective.passes
        if passes > 1 and self.together is None:
            self.together = rows_independent(model)
        logits = repeated_forward(model, x, passes, bool(self.together))
        loss, ce, extra = self.objective.loss(logits, y)
        n = y.new_tensor(len(y), dtype=torch.float32)
        correct = sum((out.argmax(1) == y).sum().float() for out in logits) / passes
        return loss, torch.stack([ce * n, correct, n, *(v * n for v in extra)])

    def finish(self, sums: torch.Tensor) -> dict:
        loss_sum, correct, n, *extra = sums.tolist()  # extra: training's objective columns
        columns = self.objective.columns if extra else ()
        scores = {"loss": loss_sum / n, self.metric: correct / n}
        return scores | {col: v / n for col, v in zip(columns, extra, strict=True)}

    def compare(self, model, eval_cfg) -> dict:
        """Weight scaling vs. MC on the test split, plus the error-vs-T curve."""
        return mc.compare(model, self.data.test, eval_cfg)

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict:
        """Loss and accuracy on 'train_eval', 'val' or 'test', model in eval mode."""
        data = self.train_eval if split == "train_eval" else getattr(self.data, split)
        if self.mc_samples:
            return mc.classification_curve(model, data, [self.mc_samples])[self.mc_samples]
        was_training = model.training
        model.eval()
        sums = torch.zeros(3, device=data.x.device)
        for i in range(0, len(data), mc.CHUNK):
            sums += self.step(model, (data.x[i : i + mc.CHUNK], data.y[i : i + mc.CHUNK]))[1]
        model.train(was_training)
        return self.finish(sums)


# data.task -> factory(cfg, data) for the task that trains on it
TASKS = {
    "classify": lambda cfg, data: ClassificationTask(
        data, cfg.trainer.batch_size, cfg.trainer.train_eval_size,
        mc_samples=cfg.eval.mc_samples if cfg.eval.mode == "mc" else 0,
        objective=build_objective(cfg.get("objective")),
    ),
    "lm": lambda cfg, data: LanguageModelTask(
        data, cfg.trainer.batch_size, cfg.model.bptt, cfg.trainer.train_eval_size,
        mc_samples=cfg.eval.mc_samples if cfg.eval.mode == "mc" else 0,
        variable_bptt=cfg.model.get("variable_bptt", False),
        objective=build_objective(cfg.get("objective")),
    ),
    "regress": lambda cfg, data: RegressionTask(
        data, cfg.trainer.batch_size, cfg.trainer.train_eval_size,
        mc_samples=cfg.eval.mc_samples if cfg.eval.mode == "mc" else 0,
    ),
}
