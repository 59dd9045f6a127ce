"""R-Drop's two passes as one stacked forward vs. one forward per pass: the time of a training
step (both passes, the loss, backward, the SGD step) on one thread, for the model a config
composes (docs/objectives.md quotes the numbers).

    python scripts/time_rdrop_passes.py                          # the default digits MLP
    python scripts/time_rdrop_passes.py dataset=mnist data_dir=DIR dataset.download=false \
        dataset.val_size=1000                                    # DIR: a carved MNIST sample

Each repetition trains one epoch each way, the two ways interleaved so that a change in the
machine's load falls on both; the median and the minimum per step are printed.
"""

import statistics
import sys
import time

import torch
from hydra import compose, initialize_config_dir

from dropbench.config import config_dir, register_schemas
from dropbench.data import load_data
from dropbench.engine.optim import build_optimizer
from dropbench.engine.tasks import TASKS
from dropbench.models import build_model

REPS = 5


def main(overrides: list[str]) -> None:
    torch.set_num_threads(1)
    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["objective=rdrop", *overrides])
    data = load_data(cfg.dataset, cfg.data_dir, torch.device("cpu"))
    task = TASKS[data.task](cfg, data)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.dropout, data).train()
    optimizer = build_optimizer(cfg.optim, model)
    batches = list(task.train_batches(torch.Generator().manual_seed(cfg.seed)))

    def epoch(together: bool) -> float:
        task.together = together  # what the task would otherwise decide from the model
        start = time.perf_counter()
        for batch in batches:
            loss, _ = task.train_step(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / len(batches)

    epoch(True), epoch(False)  # warm-up
    times = {True: [], False: []}
    for _ in range(REPS):
        for together in (True, False):
            times[together].append(epoch(together))
    print(f"{cfg.model.name} {list(cfg.model.hidden)} on {cfg.dataset.name}: {len(batches)} "
          f"batches of {cfg.trainer.batch_size}, {REPS} epochs each way")
    for together, name in ((True, "one stacked forward"), (False, "one forward per pass")):
        print(f"  {name:22s} median {statistics.median(times[together]) * 1e3:.2f} ms/step, "
              f"min {min(times[together]) * 1e3:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
