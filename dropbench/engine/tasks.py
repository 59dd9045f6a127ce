"""What a training task supplies to the loop: batches, a loss, and evaluation on a split.

A task keeps its data on the device. `step` returns the mean loss to back-propagate plus
on-device sums (loss_sum, metric_sum, count) that the loop adds up without syncing per step.
"""

import torch
import torch.nn.functional as F

import dropbench.engine.mc as mc
from dropbench.data import batch_indices
from dropbench.engine.lm import LanguageModelTask


class ClassificationTask:
    metric = "acc"
    supports_mc = True  # eval.mode=mc and eval.compare work (engine/mc.py)

    def __init__(self, data, batch_size: int, train_eval_size: int, mc_samples: int = 0):
        self.data = data
        self.batch_size = batch_size
        self.mc_samples = mc_samples  # > 0: score by the mean of this many stochastic passes
        # A fixed training subset scored in eval mode: the honest "train" side of the gap.
        self.train_eval = data.train.head(train_eval_size)

    def num_train_batches(self) -> int:
        return -(-len(self.data.train) // self.batch_size)

    def train_batches(self, generator: torch.Generator):
        train = self.data.train
        for idx in batch_indices(len(train), self.batch_size, generator):
            idx = idx.to(train.x.device)
            x = train.x[idx]
            if self.data.augment is not None:  # e.g. random crops and flips (data/augment.py)
                x = self.data.augment(x)
            yield x, train.y[idx]

    def step(self, model, batch):
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        n = y.new_tensor(len(y), dtype=torch.float32)
        correct = (logits.argmax(1) == y).sum().float()
        return loss, torch.stack([loss.detach() * n, correct, n])

    def finish(self, sums: torch.Tensor) -> dict:
        loss_sum, correct, n = sums.tolist()
        return {"loss": loss_sum / n, self.metric: correct / n}

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
    ),
    "lm": lambda cfg, data: LanguageModelTask(
        data, cfg.trainer.batch_size, cfg.model.bptt, cfg.trainer.train_eval_size,
        mc_samples=cfg.eval.mc_samples if cfg.eval.mode == "mc" else 0,
        variable_bptt=cfg.model.get("variable_bptt", False),
    ),
}
