"""Each member's own data in a stack: members whose tasks hold different data bundles of the
same shapes (the UCI regressions: every split and tau is its own bundle, standardised with
its own training rows) train and are scored on their own tensors, stacked (K, n, ...) once.
Members that share one bundle (a sweep over seeds and rates) share its tensors, uncopied."""

import torch

from dropbench.data.tensors import Split

SCORED = ("train", "train_eval", "val")  # what the stack trains on and scores per epoch


def split_of(task, name: str) -> Split:
    return task.train_eval if name == "train_eval" else getattr(task.data, name)


def why_not_same_shapes(tasks: list) -> str | None:
    """Why the members' data cannot stack (different shapes), or None."""
    for name in SCORED:
        shapes = {(tuple(split_of(t, name).x.shape), tuple(split_of(t, name).y.shape))
                  for t in tasks}
        if len(shapes) > 1:
            return (f"the members' {name} data have different shapes "
                    f"({', '.join(str(s[0]) for s in sorted(shapes))})")
    return None


class MemberData:
    """The members' splits: `shared` when every task holds the same bundle, else each split's
    x and y stacked along a new first dimension, member k's at k."""

    def __init__(self, tasks: list):
        self.tasks = list(tasks)
        self.shared = all(t.data is self.tasks[0].data for t in self.tasks)
        self.stacked: dict[str, Split] = {}

    def split(self, name: str) -> Split:
        """Member-stacked (K, n, ...) tensors of a split (built on first use)."""
        if name not in self.stacked:
            parts = [split_of(t, name) for t in self.tasks]
            self.stacked[name] = Split(torch.stack([p.x for p in parts]),
                                       torch.stack([p.y for p in parts]))
        return self.stacked[name]

    def gather(self, name: str, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Member k's examples idx[k] of split `name`: x (K, B, ...), y (K, B)."""
        if self.shared:
            data = split_of(self.tasks[0], name)
            return data.x[idx], data.y[idx]
        data = self.split(name)
        members = torch.arange(len(self.tasks), device=idx.device)[:, None]
        return data.x[members, idx], data.y[members, idx]
