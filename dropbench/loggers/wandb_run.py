"""Weights & Biases sink, offline unless `logger.wandb.mode=online`: the run's files go to
`<run dir>/wandb/` and `wandb sync` uploads them later. Config = the flattened config, history
= one entry per epoch (step = epoch), summary = the final metrics and status, summary.json
saved with the run."""

import os
import shutil
import uuid

from dropbench.loggers import RunInfo, final_metrics, numeric_items


class Sink:
    def __init__(self, cfg):
        self.cfg = cfg
        self.run = None
        self.run_dir = ""

    def start(self, info: RunInfo) -> dict:
        import wandb

        self.run_dir = str(info.run_dir)
        run_id = info.state.get("id") or uuid.uuid4().hex[:12]
        group = self.cfg.group or (str(info.sweep_dir.resolve()) if info.sweep_dir else None)
        name = (os.path.relpath(info.run_dir, info.sweep_dir) if info.sweep_dir
                else info.run_dir.name)
        self.run = wandb.init(
            project=self.cfg.project, entity=self.cfg.entity, mode=self.cfg.mode,
            dir=str(info.run_dir), id=run_id, resume="allow", name=name, group=group,
            config=info.params, reinit="create_new",
            settings=wandb.Settings(silent=True, console="off", x_disable_stats=True))
        if not info.state:
            for row in info.rows:  # a logger turned on for a resumed run: its epochs so far
                self.epoch(row)
        return {"id": run_id, "project": self.cfg.project}

    def epoch(self, row: dict) -> None:
        self.run.log({**numeric_items(row), "epoch": int(row["epoch"])}, step=int(row["epoch"]))

    def finish(self, summary: dict) -> None:
        saved = os.path.join(self.run_dir, "summary.json")
        if os.path.isfile(saved):  # the run's files dir is uploaded with the run
            shutil.copy(saved, os.path.join(self.run.dir, "summary.json"))
        self.run.summary.update({**final_metrics(summary),
                                 "status": summary.get("status", "unknown")})
        self.run.finish(exit_code=0 if summary.get("status") == "completed" else 1)
