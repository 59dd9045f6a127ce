"""MLflow sink: one MLflow run per dropbench run, a sweep = one experiment. Params are the
flattened config, metrics are logged per epoch with step = epoch, tags give the status and the
run dir, artifacts are summary.json and metrics.csv. Default store: a SQLite file next to the
runs, `sqlite:///<sweep dir, or run dir>/mlflow.db` (`mlflow ui --backend-store-uri ...`)."""

import os
import time
from pathlib import Path

from dropbench.loggers import RunInfo, final_metrics, numeric_items

STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}  # everything else: FAILED
BATCH = 100  # MLflow's limit of params per log_batch call


class Sink:
    def __init__(self, cfg):
        self.cfg = cfg
        self.client = None
        self.run_id = None
        self.run_dir: Path | None = None

    def start(self, info: RunInfo) -> dict:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no calls home from a run
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        home = info.sweep_dir or info.run_dir
        uri = self.cfg.tracking_uri or f"sqlite:///{home.resolve() / 'mlflow.db'}"
        self.client = MlflowClient(tracking_uri=uri)
        self.run_dir = info.run_dir
        if info.state.get("run_id") and info.state.get("tracking_uri") == uri:
            self.run_id = info.state["run_id"]  # a resume continues its MLflow run
            self.client.update_run(self.run_id, status="RUNNING")
            return info.state
        name = self.cfg.experiment or (str(info.sweep_dir.resolve()) if info.sweep_dir
                                       else "dropbench")
        artifacts = None if self.cfg.tracking_uri else (home.resolve() / "mlartifacts").as_uri()
        experiment_id = self.experiment(name, artifacts)
        run_name = (os.path.relpath(info.run_dir, info.sweep_dir) if info.sweep_dir
                    else info.run_dir.name)
        run = self.client.create_run(experiment_id, run_name=run_name, tags={
            "dropbench.run_dir": str(info.run_dir.resolve()), "status": "running"})
        self.run_id = run.info.run_id
        params = [Param(k, str(v)) for k, v in info.params.items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.run_id, params=params[i:i + BATCH])
        for row in info.rows:  # a logger turned on for a resumed run: its epochs so far
            self.epoch(row)
        return {"tracking_uri": uri, "experiment_id": experiment_id, "run_id": self.run_id}

    def experiment(self, name: str, artifact_location: str | None) -> str:
        """The experiment's id, created when new (a parallel job may create it first)."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except Exception:
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def epoch(self, row: dict) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = int(row["epoch"])
        metrics = [Metric(k, v, now, step) for k, v in numeric_items(row).items()]
        self.client.log_batch(self.run_id, metrics=metrics)

    def finish(self, summary: dict) -> None:
        from mlflow.entities import Metric

        status = summary.get("status", "unknown")
        now = int(time.time() * 1000)
        step = int(summary.get("epochs_run") or 0)
        self.client.log_batch(self.run_id, metrics=[
            Metric(k, v, now, step) for k, v in final_metrics(summary).items()])
        self.client.set_tag(self.run_id, "status", status)
        for name in ("summary.json", "metrics.csv"):
            if (self.run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(self.run_dir / name))
        figures = sorted((self.run_dir / "report").glob("*.png"))
        for figure in figures:
            self.client.log_artifact(self.run_id, str(figure), artifact_path="figures")
        self.client.set_terminated(self.run_id, STATUS.get(status, "FAILED"))
