"""Loggers as sinks: the fan-out thread (a failing sink warns once, a blocked one never holds
the run up, a missing package names its pip line), then real runs read back with the real
libraries: TensorBoard's event reader, MlflowClient on the SQLite store, W&B's offline file."""

import json
import logging
import threading
from pathlib import Path

import pandas as pd
import pytest

from dropbench import loggers
from dropbench.engine import train
from dropbench.loggers import RunInfo, Sinks

TINY = ["trainer.epochs=2", "dataset.train_subset=100", "trainer.progress=false",
        "trainer.threads=1", "model.hidden=[16]"]


class Recorder:
    """A sink that records calls; `gate` (an Event) holds its start until the test opens it."""

    def __init__(self, fail_on=None, gate=None):
        self.calls, self.fail_on, self.gate = [], fail_on, gate

    def start(self, info):
        if self.gate is not None:
            self.gate.wait()
        self.calls.append(("start", len(info.rows)))
        return {"seen": True}

    def epoch(self, row):
        if self.fail_on == "epoch":
            raise ConnectionError("server unreachable\nsecond line")
        self.calls.append(("epoch", row["epoch"]))

    def finish(self, summary):
        self.calls.append(("finish", summary["status"]))


def start_sinks(tmp_path, sinks):
    opened = Sinks(sinks, tmp_path, timeout_s=30)
    opened._put("start", RunInfo(tmp_path, {"seed": 0}, None, [{"epoch": 1}]))
    return opened


def test_a_failing_sink_warns_once_and_the_others_go_on(tmp_path, caplog):
    good, bad = Recorder(), Recorder(fail_on="epoch")
    sinks = start_sinks(tmp_path, {"good": good, "bad": bad})
    with caplog.at_level(logging.WARNING, logger="dropbench"):
        for epoch in (2, 3):
            sinks.epoch({"epoch": epoch, "val_loss": 0.5})
        sinks.close({"status": "running"})  # ended by an unexpected error
    assert good.calls == [("start", 1), ("epoch", 2), ("epoch", 3), ("finish", "failed")]
    assert bad.calls == [("start", 1)]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["logger bad failed and is off for the rest of this run "
                        "(ConnectionError: server unreachable); the run dir has every result"]
    assert json.loads((tmp_path / "loggers.json").read_text()) == {"good": {"seen": True},
                                                                   "bad": {"seen": True}}


def test_a_blocked_sink_does_not_hold_the_run_up(tmp_path):
    gate = threading.Event()
    slow = Recorder(gate=gate)
    sinks = start_sinks(tmp_path, {"slow": slow})
    for epoch in (2, 3, 4):  # returns at once although the sink has not even started
        sinks.epoch({"epoch": epoch})
    assert slow.calls == []
    gate.set()
    sinks.close({"status": "completed"})
    assert slow.calls == [("start", 1), ("epoch", 2), ("epoch", 3), ("epoch", 4),
                          ("finish", "completed")]


def test_a_missing_package_names_its_pip_line(compose, tmp_path, caplog, monkeypatch):
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec",
                        lambda name: None if name == "mlflow" else real(name))
    cfg = compose(["logger=[csv,mlflow]"])
    with caplog.at_level(logging.WARNING, logger="dropbench"):
        sinks = Sinks.open(cfg, tmp_path)
    assert sinks.sinks == {}
    assert caplog.records[0].getMessage() == (
        "logger mlflow is off: the mlflow package is missing; install it with "
        '`pip install mlflow` (or all loggers: `pip install "dropbench[tracking]"`)')


def test_no_logger_means_no_thread(compose, tmp_path):
    sinks = Sinks.open(compose(), tmp_path)
    assert sinks.thread is None and not (tmp_path / "loggers.json").exists()


# --- real libraries -----------------------------------------------------------------------------
def tb_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)]
            for tag in events.Tags()["scalars"]}, events


def test_tensorboard_scalars_and_hparams_entry(compose, tmp_path, one_torch_thread):
    pytest.importorskip("tensorboard")
    from tensorboard.plugins.hparams import metadata

    run_dir = tmp_path / "run"
    cfg = compose(["logger=[csv,tensorboard]", "dropout.p=0.25", *TINY])
    summary = train(cfg, run_dir)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    scalars, events = tb_scalars(run_dir / "tensorboard")
    for column in metrics.columns.drop("epoch"):  # every metrics.csv column, step = epoch
        assert [s for s, _ in scalars[column]] == [1, 2]
        assert [v for _, v in scalars[column]] == pytest.approx(metrics[column].tolist(),
                                                                rel=1e-6)
    assert scalars["hparams/test_acc"] == [(2, pytest.approx(summary["test_acc"], rel=1e-6))]
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(
        content[metadata.SESSION_START_INFO_TAG])
    assert start.hparams["dropout.p"].number_value == 0.25
    assert start.hparams["status"].string_value == "completed"
    experiment = metadata.parse_experiment_plugin_data(content[metadata.EXPERIMENT_TAG])
    assert "hparams/best_val_acc" in [m.name.tag for m in experiment.metric_infos]


def wandb_records(path: Path) -> list:
    """The records of a W&B offline run file: W&B's LevelDB-style log (a 7-byte header
    ":W&B" + magic + version, then 32 KiB blocks of [crc32c:4][length:2][type:1][data], type
    1 = a whole record, 2/3/4 = its first/middle/last piece), each a wandb_internal Record."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, records, pending = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        kind = data[pos + 6] if left >= 7 else 0
        if kind == 0:  # the zero padding at a block's end
            pos += left
            continue
        length = int.from_bytes(data[pos + 4:pos + 6], "little")
        pending += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def item_key(item) -> str:
    return item.key or "/".join(item.nested_key)  # W&B writes either form


def wandb_history(run_dir: Path, run_id: str) -> tuple[dict[int, dict], dict, int]:
    """({epoch: logged values} over every offline session of the run, final summary, sessions)."""
    history, summary = {}, {}
    # W&B names a session's dir by its start second and the run id, adding "-1", "-2", ...
    # when two sessions of the run start within the same second.
    files = sorted(run_dir.glob(f"wandb/offline-run-*-{run_id}*/run-{run_id}.wandb"))
    for path in files:
        for record in wandb_records(path):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                items = {item_key(i): json.loads(i.value_json) for i in record.history.item}
                history[int(items["epoch"])] = items
            elif kind == "summary":
                summary.update({item_key(i): json.loads(i.value_json)
                                for i in record.summary.update})
    return history, summary, len(files)


@pytest.mark.slow
def test_mlflow_wandb_and_tensorboard_continue_on_resume(compose, tmp_path, one_torch_thread):
    for package in ("tensorboard", "mlflow", "wandb"):
        pytest.importorskip(package)
    from mlflow.tracking import MlflowClient

    from dropbench.rundir import flatten

    run_dir = tmp_path / "run"
    names = "logger=[csv,tensorboard,mlflow,wandb]"
    train(compose([names, *TINY]), run_dir)
    first = json.loads((run_dir / "loggers.json").read_text())
    cfg = compose([names, *TINY, "trainer.epochs=4", "trainer.resume=true"])
    summary = train(cfg, run_dir)  # extends the finished run to 4 epochs
    state = json.loads((run_dir / "loggers.json").read_text())
    assert state == first  # the same TensorBoard dir, MLflow run and W&B run
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert list(metrics["epoch"]) == [1, 2, 3, 4]

    client = MlflowClient(f"sqlite:///{run_dir / 'mlflow.db'}")
    assert state["mlflow"]["tracking_uri"] == f"sqlite:///{run_dir.resolve() / 'mlflow.db'}"
    experiment = client.get_experiment_by_name("dropbench")
    (run,) = client.search_runs([experiment.experiment_id])  # one MLflow run, resumed
    assert run.info.run_id == state["mlflow"]["run_id"] and run.info.status == "FINISHED"
    assert run.data.tags["status"] == "completed"
    assert run.data.tags["dropbench.run_dir"] == str(run_dir.resolve())
    from omegaconf import OmegaConf

    flat = flatten(OmegaConf.to_container(cfg, resolve=True), lists_as_text=True)
    expected = {k: str(v) for k, v in flat.items()}
    first_params = {k: v for k, v in run.data.params.items()}
    assert first_params.keys() == expected.keys()
    assert first_params["dropout.p"] == "0.5" and first_params["trainer.epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]
    assert [m.value for m in sorted(history, key=lambda m: m.step)] == \
        pytest.approx(metrics["val_loss"].tolist())
    assert run.data.metrics["test_acc"] == pytest.approx(summary["test_acc"])
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"summary.json",
                                                                        "metrics.csv"}

    scalars, _ = tb_scalars(run_dir / "tensorboard")
    assert [s for s, _ in scalars["val_loss"]] == [1, 2, 3, 4]  # each epoch once

    history, wandb_summary, sessions = wandb_history(run_dir, state["wandb"]["id"])
    assert sessions == 2  # one offline session per invocation, one W&B run id
    assert sorted(history) == [1, 2, 3, 4]
    assert [history[e]["val_acc"] for e in (1, 2, 3, 4)] == \
        pytest.approx(metrics["val_acc"].tolist())
    assert wandb_summary["status"] == "completed"
    assert wandb_summary["test_acc"] == pytest.approx(summary["test_acc"])


@pytest.mark.slow
def test_a_sweep_is_one_mlflow_experiment_in_its_sweep_dir(cli, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    result = cli("train", "-m", "dropout.p=0,0.5", "logger=[csv,mlflow]", *TINY,
                 "hydra.sweep.dir=sweep")
    assert result.returncode == 0, result.stderr
    # the report and status see two runs, not the copies of summary.json in mlartifacts/
    assert len(pd.read_csv(tmp_path / "sweep" / "report" / "summary.csv")) == 2
    assert "2/2 done (completed 2)" in cli("status", "sweep").stdout
    sweep = (tmp_path / "sweep").resolve()
    client = MlflowClient(f"sqlite:///{sweep / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(str(sweep))
    runs = client.search_runs([experiment.experiment_id])
    job_dirs = sorted(p.parent.name for p in sweep.glob("*/summary.json"))
    assert len(job_dirs) == 2 and sorted(r.info.run_name for r in runs) == job_dirs
    assert sorted(r.data.params["dropout.p"] for r in runs) == ["0", "0.5"]
    assert {r.data.tags["status"] for r in runs} == {"completed"}
