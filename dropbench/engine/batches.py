"""Shuffled mini-batches of a task's training examples, shared by the tasks that train on
examples (classification, regression); language models read windows instead (lm.py)."""

import torch

from dropbench.data import batch_indices
from dropbench.engine.task import Task


class ExampleBatches(Task):
    """For a task with `data` (train split, `augment`) and `batch_size`."""

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
