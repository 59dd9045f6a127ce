"""TensorBoard sink: a scalar per metrics.csv column per epoch (step = epoch), and at the end
the HParams plugin entry (the flattened config and the final metrics), so TensorBoard's HParams
tab compares the runs of a sweep: `tensorboard --logdir SWEEP_DIR`."""

from pathlib import Path

from dropbench.loggers import RunInfo, final_metrics, numeric_items

HPARAM_PREFIX = "hparams/"  # the final metrics' scalar tags, apart from the per-epoch curves


class Sink:
    def __init__(self, cfg):
        self.cfg = cfg
        self.writer = None
        self.params: dict = {}

    def start(self, info: RunInfo) -> dict:
        from torch.utils.tensorboard import SummaryWriter

        log_dir = Path(self.cfg.dir) if self.cfg.dir else info.run_dir / "tensorboard"
        log_dir = Path(info.state.get("log_dir", log_dir))  # a resume keeps its dir
        resumed = bool(info.state)
        # Steps after the checkpoint may have been written by the session that died: purge
        # them, so the curves continue from the checkpoint like metrics.csv does.
        self.writer = SummaryWriter(str(log_dir),
                                    purge_step=last_epoch(info.rows) + 1 if resumed else None)
        self.params = info.params
        if not resumed:
            for row in info.rows:  # a logger turned on for a resumed run: its epochs so far
                self.epoch(row)
        return {"log_dir": str(log_dir)}

    def epoch(self, row: dict) -> None:
        for tag, value in numeric_items(row).items():
            self.writer.add_scalar(tag, value, global_step=int(row["epoch"]))
        self.writer.flush()

    def finish(self, summary: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {HPARAM_PREFIX + k: v for k, v in final_metrics(summary).items()}
        values = {k: v if isinstance(v, (int, float, str, bool)) else str(v)
                  for k, v in self.params.items()}
        values["status"] = summary.get("status", "unknown")
        for proto in hparams(values, metrics):
            self.writer.file_writer.add_summary(proto)
        step = int(summary.get("epochs_run") or 0)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, global_step=step)
        self.writer.close()


def last_epoch(rows: list[dict]) -> int:
    """The epoch of the last recorded row (rows are every trainer.eval_every-th epoch)."""
    return int(rows[-1]["epoch"]) if rows else 0
