"""The public API: dropbench.load_runs / load_metrics read run dirs into pandas tables, and
`import dropbench` stays light (pandas loads on first use)."""

import subprocess
import sys

import pytest

import dropbench
from dropbench import DropbenchError
from test_report import make_run


def test_load_runs_one_row_per_run_with_config_summary_and_path(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    make_run(first / "0", p=0.0, seed=0, test_acc=0.90)
    make_run(first / "1", p=0.5, seed=0, test_acc=0.96)
    make_run(second, p=0.5, seed=1, test_acc=0.98, status="running", done=2)
    runs = dropbench.load_runs(first, str(second))
    assert len(runs) == 3
    by_path = runs.set_index("path")
    assert by_path.loc[str((first / "1").resolve()), "dropout.p"] == 0.5
    assert by_path.loc[str((first / "1").resolve()), "test_acc"] == 0.96
    assert by_path.loc[str(second.resolve()), "status"] == "running"
    assert by_path.loc[str(second.resolve()), "epochs_run"] == 2
    assert {"run", "seed", "model.hidden", "best_val_acc", "dropout_off"} <= set(runs.columns)
    assert list(runs.sort_values("run")["run"]) == ["a/0", "a/1", "b"]


def test_load_metrics_reads_one_runs_epochs(tmp_path):
    run = make_run(tmp_path / "r", epochs=4)
    metrics = dropbench.load_metrics(run)
    assert list(metrics["epoch"]) == [1, 2, 3, 4]
    assert metrics["train_eval_loss"].tolist() == pytest.approx([1, 1 / 2, 1 / 3, 1 / 4])
    assert dropbench.load_metrics(run / "metrics.csv").equals(metrics)


def test_bad_paths_are_one_line_errors(tmp_path):
    with pytest.raises(DropbenchError, match="does not exist"):
        dropbench.load_runs(tmp_path / "nowhere")
    with pytest.raises(DropbenchError, match="at least one"):
        dropbench.load_runs()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DropbenchError, match="no metrics.csv"):
        dropbench.load_metrics(tmp_path / "empty")


def test_importing_dropbench_does_not_load_pandas_or_torch():
    code = ("import sys, dropbench; assert callable(dropbench.load_runs); "
            "print(sorted(m for m in ('pandas', 'torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_logger_folders_holding_copies_of_run_files_are_not_runs(tmp_path):
    run = make_run(tmp_path / "sweep" / "0")
    for copy in (tmp_path / "sweep" / "mlartifacts" / "1" / "abc" / "artifacts",
                 run / "wandb" / "offline-run-1-abc" / "files", run / "tensorboard"):
        copy.mkdir(parents=True)
        (copy / "summary.json").write_text((run / "summary.json").read_text())
    assert list(dropbench.load_runs(tmp_path / "sweep")["run"]) == ["0"]
