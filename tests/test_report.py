"""`dropbench report`: synthetic run dirs with known numbers (aggregates checked by hand), broken
runs, figures inspected through their matplotlib objects, and a real digits sweep end to end."""

import json
import logging
import math

import pandas as pd
import pytest
import yaml

from conftest import run_cli
from dropbench import DropbenchError
from dropbench.report import plots
from dropbench.report.build import build_figures, parse_formats, write_report
from dropbench.report.callback import SweepReport
from dropbench.report.collect import assign_groups, collect, dropout_is_off, varying_settings


def make_run(run_dir, *, p=0.5, seed=0, name="standard", test_acc=0.9, val=None, status=None,
             epochs=3, done=None, extra_config=None, eval_block=None):
    """A run dir in the trainer's on-disk format, `done` of `epochs` epochs finished. Per epoch e:
    train_eval_loss = 1/e, val_loss = 1/e + val (default 0.1 + p/10: more dropout, larger val
    loss here)."""
    done = epochs if done is None else done
    val = 0.1 + p / 10 if val is None else val
    config = {"dataset": {"name": "digits"}, "model": {"name": "mlp", "hidden": [8, 8]},
              "dropout": {"name": name, "p": p, "p_input": 0.0}, "trainer": {"epochs": epochs},
              "seed": seed, "device": "auto", **(extra_config or {})}
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [{"epoch": e, "lr": 0.1, "seconds": 0.5, "train_loss": 2 / e, "train_acc": 0.5,
             "train_eval_loss": 1 / e, "train_eval_acc": 0.9 + e / 100,
             "val_loss": 1 / e + val, "val_acc": 0.8 + e / 100} for e in range(1, done + 1)]
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    summary = {"status": status or "completed", "metric": "acc", "seed": seed,
               "epochs_run": done, "wall_s": 1.5 * done, "best_epoch": done,
               "best_val_loss": rows[-1]["val_loss"], "best_val_acc": rows[-1]["val_acc"],
               "test_loss": 0.3, "test_acc": test_acc, "overrides": [f"dropout.p={p}"],
               "versions": {"dropbench": "0.1.0"}}
    if status == "running":
        for key in ("best_val_loss", "best_val_acc", "test_loss", "test_acc"):
            del summary[key]
    if eval_block is not None:
        summary["eval_compare"] = eval_block
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


@pytest.fixture
def sweep(tmp_path):
    """p in {0, 0.5} x seeds {0, 1}: test accuracies chosen for easy hand arithmetic."""
    root = tmp_path / "sweep"
    accs = {(0.0, 0): 0.90, (0.0, 1): 0.94, (0.5, 0): 0.96, (0.5, 1): 0.98}
    for i, ((p, seed), acc) in enumerate(accs.items()):
        make_run(root / str(i), p=p, seed=seed, test_acc=acc)
    return root


# --- collecting and aggregating --------------------------------------------------------------
def test_summary_aggregates_match_hand_computation(sweep):
    out = write_report([sweep])
    assert out == sweep.resolve() / "report"
    table = pd.read_csv(out / "summary.csv")
    assert list(table["dropout.p"]) == [0, 0.5]  # the only setting that varies: the grouping
    assert list(table["n"]) == [2, 2]
    assert table["test_acc_mean"].tolist() == pytest.approx([0.92, 0.97])
    # sample std of {0.90, 0.94}: |0.94 - 0.90| / sqrt(2)
    expected_std = [0.04 / math.sqrt(2), 0.02 / math.sqrt(2)]
    assert table["test_acc_std"].tolist() == pytest.approx(expected_std)
    # last epoch (3): val_loss - train_eval_loss = 0.1 + p/10 ; acc gap = (0.93) - (0.83)
    assert table["final_gap_loss_mean"].tolist() == pytest.approx([0.10, 0.15])
    assert table["final_gap_acc_mean"].tolist() == pytest.approx([0.10, 0.10])
    assert table["wall_s_mean"].tolist() == pytest.approx([4.5, 4.5])
    assert list(table["status"]) == ["completed 2", "completed 2"]
    md = (out / "summary.md").read_text()
    assert "| p=0.5 | 2 |" in md and "97.00 ± 1.41" in md  # percent in the markdown table


def test_runs_csv_has_one_row_per_run_and_epochs_csv_one_per_epoch(sweep):
    out = write_report([sweep])
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["run"].astype(str)) == ["0", "1", "2", "3"]
    assert {"run", "group", "dropout.p", "seed", "best_val_loss", "test_acc"} <= set(runs)
    epochs = pd.read_csv(out / "epochs.csv")
    assert {"run", "group", "dropout.p", "seed", "epoch", "val_loss"} <= set(epochs)
    assert epochs.groupby("run")["epoch"].apply(list).tolist() == [[1, 2, 3]] * 4


def test_varying_settings_ignore_seed_and_bookkeeping(tmp_path):
    make_run(tmp_path / "a", p=0.5, seed=0, extra_config={"device": "cpu"})
    make_run(tmp_path / "b", p=0.5, seed=1, extra_config={"device": "cuda"})
    col = collect([tmp_path])
    assert varying_settings(col.runs, col.config_columns) == []
    assert assign_groups(col, []) == ["all runs"]


def test_zero_and_float_zero_are_one_configuration(tmp_path):
    make_run(tmp_path / "a", p=0)  # dropout.p=0 from the command line is an int in the yaml
    make_run(tmp_path / "b", p=0.0, seed=1)
    col = collect([tmp_path])
    assert varying_settings(col.runs, col.config_columns) == []


def test_dropout_off_means_scheme_none_or_all_rates_zero():
    assert dropout_is_off({"dropout": {"name": "none", "p": 0.5}})
    assert dropout_is_off({"dropout": {"name": "standard", "p": [0, 0.0], "p_input": 0}})
    assert not dropout_is_off({"dropout": {"name": "standard", "p": 0, "p_input": 0.2}})
    assert not dropout_is_off({"dropout": {"name": "standard", "p": [0, 0.3]}})


def test_no_dropout_groups_are_labelled_and_ordered_numerically(tmp_path):
    for i, p in enumerate([0.5, 0.0, 0.25, 0.1]):
        make_run(tmp_path / str(i), p=p)
    col = collect([tmp_path])
    groups = assign_groups(col, ["dropout.p"])
    assert groups == ["dropout.p=0 (no dropout)", "dropout.p=0.1", "dropout.p=0.25",
                      "dropout.p=0.5"]


def test_by_overrides_the_grouping_and_unknown_keys_are_named(sweep):
    out = write_report([sweep], by=["seed"])
    assert list(pd.read_csv(out / "summary.csv")["seed"]) == [0, 1]
    with pytest.raises(DropbenchError, match="--by dropout.q"):
        write_report([sweep], by=["dropout.q"])


def test_running_sweep_reports_what_is_there(tmp_path):
    make_run(tmp_path / "0", p=0.0, test_acc=0.9)
    make_run(tmp_path / "1", p=0.0, seed=1, status="running", done=2)
    out = write_report([tmp_path])
    table = pd.read_csv(out / "summary.csv")
    assert table.loc[0, "status"] == "completed 1, running 1"
    assert table.loc[0, "test_acc_mean"] == pytest.approx(0.9)
    # the running run's best val comes from its metrics.csv: epoch 2, 1/2 + 0.1
    assert table.loc[0, "best_val_loss_mean"] == pytest.approx((1 / 3 + 0.1 + 1 / 2 + 0.1) / 2)
    md = (out / "summary.md").read_text()
    assert "90.00 (1 of 2)" in md and "| 1 | running |" in md


# --- broken runs and bad input ---------------------------------------------------------------
def test_broken_runs_are_skipped_with_a_warning_naming_them(sweep, caplog):
    (sweep / "1" / "summary.json").write_text("{not json")
    (sweep / "2" / "metrics.csv").unlink()
    (sweep / "3" / "metrics.csv").write_text('epoch,val_loss\n"1,\n')
    with caplog.at_level(logging.WARNING, logger="dropbench"):
        out = write_report([sweep])
    warnings = "\n".join(r.getMessage() for r in caplog.records)
    assert "skipped run 1: summary.json is unreadable" in warnings
    assert "skipped run 2: no metrics.csv" in warnings
    assert "skipped run 3: metrics.csv" in warnings
    assert pd.read_csv(out / "summary.csv")["n"].sum() == 1
    page = (out / "report.html").read_text()
    assert all(f"<td>{run}</td>" in page for run in ("1", "2", "3"))


def test_no_runs_is_a_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("report", tmp_path / "empty", cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "no runs found under" in result.stderr and "Traceback" not in result.stderr
    missing = run_cli("report", tmp_path / "nope", cwd=tmp_path)
    assert missing.returncode != 0 and "does not exist" in missing.stderr


def test_formats_are_checked_and_all_written(sweep):
    assert parse_formats("png, SVG,pdf") == ["png", "svg", "pdf"]
    with pytest.raises(DropbenchError, match="--format"):
        parse_formats("png,jpeg")
    out = write_report([sweep], out=sweep / "elsewhere", formats=["png", "svg", "pdf"])
    for name in ("overfitting_curves", "rate_sweep", "gap_vs_rate", "curves_grid"):
        for fmt in ("png", "svg", "pdf"):
            assert (out / f"{name}.{fmt}").stat().st_size > 1000


# --- figures, checked on the matplotlib objects ----------------------------------------------
def figures_for(root, by=None):
    col = collect([root])
    by = by if by is not None else varying_settings(col.runs, col.config_columns)
    groups = assign_groups(col, by)
    figures, notes, _ = build_figures(col, groups, by, "acc")
    return figures, notes


def legend_texts(fig) -> list[str]:
    """The texts of the figure's legend (legends sit outside the panels)."""
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_overfitting_curves_have_two_lines_per_group(sweep):
    figures, _ = figures_for(sweep)
    fig = figures["overfitting_curves"]
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == len(acc_ax.lines) == 2 * 2  # 2 groups x (train-eval, val)
    assert loss_ax.get_xlabel() == "epoch" and "nats" in loss_ax.get_ylabel()
    assert acc_ax.get_ylabel() == "accuracy (%)"
    assert legend_texts(fig) == ["p=0 (no dropout)", "p=0.5", "train-eval", "validation"]
    # greyscale: the two splits differ in line style, the two groups in marker
    assert {line.get_linestyle() for line in loss_ax.lines} == {"--", "-"}
    assert len({line.get_marker() for line in loss_ax.lines}) == 2
    val_p0 = loss_ax.lines[1]  # group p=0, validation: mean over seeds of 1/e + 0.1
    assert val_p0.get_ydata().tolist() == pytest.approx([1.1, 0.6, 1 / 3 + 0.1])


def test_rate_sweep_points_are_seed_means_with_std_bars(sweep):
    figures, notes = figures_for(sweep)
    val_ax, test_ax = figures["rate_sweep"].axes
    assert "dropout rate" in test_ax.get_xlabel() and test_ax.get_ylabel().endswith("(%)")
    (bars,) = test_ax.containers  # one line: no setting other than the rate varies
    x, y = bars.lines[0].get_data()
    assert list(x) == [0.0, 0.5] and list(y) == pytest.approx([92.0, 97.0])
    gap_loss_ax, _ = figures["gap_vs_rate"].axes
    assert gap_loss_ax.containers[0].lines[0].get_ydata().tolist() == pytest.approx([0.1, 0.15])
    assert not any("Rate sweep" in n for n in notes)


def test_rate_sweep_draws_one_line_per_other_setting(tmp_path):
    for i, (name, p) in enumerate([("standard", 0.2), ("standard", 0.5), ("gaussian", 0.2),
                                   ("gaussian", 0.5)]):
        make_run(tmp_path / str(i), name=name, p=p)
    figures, _ = figures_for(tmp_path)
    ax = figures["rate_sweep"].axes[0]
    assert len(ax.containers) == 2
    assert legend_texts(figures["rate_sweep"]) == ["gaussian", "standard"]
    grid = figures["curves_grid"]
    panels = [a for a in grid.axes if a.get_visible()]
    assert len(panels) == 4 and all(len(a.lines) == 3 for a in panels)
    assert legend_texts(grid) == ["train (training mode)", "train-eval", "validation"]
    assert [a.get_title() for a in panels] == ["gaussian p=0.2", "gaussian p=0.5",
                                               "standard p=0.2", "standard p=0.5"]
    # losses 1/3 to 1.15: under a decade, so a linear axis
    assert panels[0].get_yscale() == "linear" and "nats" in grid.get_supylabel()


def test_no_rate_axis_when_the_rate_does_not_vary(tmp_path):
    make_run(tmp_path / "a", name="standard")
    make_run(tmp_path / "b", name="gaussian")
    figures, notes = figures_for(tmp_path)
    assert "rate_sweep" not in figures and any("Rate sweep" in n for n in notes)
    assert "curves_grid" in figures and "overfitting_curves" in figures
    # the schemes side by side on a categorical axis instead, the first one on top
    ax = figures["by_configuration"].axes[0]
    ticks = sorted(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels()),
                       strict=True))
    assert [name for _, name in ticks] == ["standard", "gaussian"]  # bottom to top


def test_the_test_axis_names_the_tested_epoch_and_stays_within_100_percent(tmp_path):
    """Runs tested at their best epoch, which happened to be their last, are labelled by the
    classifiers' rule; two equal accuracies (a range matplotlib widens by 5 % either way)
    still end at 100 %."""
    for name in ("standard", "gaussian"):
        run = make_run(tmp_path / name, name=name, test_acc=0.986)
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "tested_epoch": 3}))
    figures, _ = figures_for(tmp_path)
    test_axis = figures["by_configuration"].axes[1]
    assert test_axis.get_xlabel().startswith("test (at best val)")
    low, high = test_axis.get_xlim()
    assert 0 <= low < 98.6 < high <= 100
    # a protocol that tests the last epoch where the best came earlier says so
    runs = pd.DataFrame({"tested_epoch": [40, 40], "epochs_run": [40, 40], "best_epoch": [40, 32]})
    assert plots.test_label(runs) == "test (last epoch)"
    assert plots.test_label(runs.assign(best_epoch=40)) == "test (at best val)"


def test_overfitting_curves_pick_few_groups_when_many(tmp_path):
    for i, p in enumerate([0.0, 0.1, 0.2, 0.3, 0.4, 0.5]):
        make_run(tmp_path / str(i), p=p)
    col = collect([tmp_path])
    groups = assign_groups(col, ["dropout.p"])
    # val loss grows with p here: no-dropout group first, then the three lowest val losses
    assert plots.overfitting_groups(col.runs, groups) == groups[:4]


def test_runs_validated_on_their_training_data_get_no_overfitting_curve_or_gap(tmp_path):
    """A UCI refit (summary.json val_is=train) scores "validation" on its training rows: its
    train-eval and validation curves coincide, so it gets no overfitting curve and no gap, and
    a note says why, while a run with a held-out validation split keeps both."""
    for i, p in enumerate([0.0, 0.5]):
        run = make_run(tmp_path / "refit" / str(i), p=p)
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "val_is": "train"}))
    figures, notes = figures_for(tmp_path / "refit")
    assert "overfitting_curves" not in figures and "gap_vs_rate" not in figures
    assert "rate_sweep" in figures and "curves_grid" in figures
    assert any("2 of 2 configurations are validated on their own training data" in n
               for n in notes)
    out = write_report([tmp_path / "refit"])
    table = pd.read_csv(out / "summary.csv")
    assert table["final_gap_loss_mean"].isna().all() and table["final_gap_acc_mean"].isna().all()
    assert "| 83.00 | 0.3000 | 90.00 | – | – |" in (out / "summary.md").read_text()

    make_run(tmp_path / "refit" / "2", p=0.25)  # held-out validation: curves and gap again
    figures, notes = figures_for(tmp_path / "refit")
    curves = figures["overfitting_curves"]
    assert len(curves.axes[0].lines) == 2  # one configuration: train-eval and validation
    assert legend_texts(curves)[0] == "p=0.25"
    assert "gap_vs_rate" in figures
    assert any("2 of 3 configurations are validated" in n for n in notes)


def test_the_hyperparameter_view_leaves_out_runs_validated_on_their_training_data(tmp_path):
    """Its colour is the best val metric: a refit's is a training score, which would look
    best. Four held-out configurations (rate x lr) keep their lines; two refits get none."""
    for i, (p, lr) in enumerate([(0.0, 0.1), (0.5, 0.1), (0.0, 0.01), (0.5, 0.01)]):
        make_run(tmp_path / str(i), p=p, extra_config={"optim": {"lr": lr}})
    for i, p in enumerate([0.25, 0.75]):
        run = make_run(tmp_path / f"refit{i}", p=p, val=0.0,
                       extra_config={"optim": {"lr": 0.05}})
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "val_is": "train"}))
    figures, notes = figures_for(tmp_path)
    view = figures["parallel_coordinates"]
    runs = [line for line in view.axes[0].lines if line.get_marker() == "o"]  # not the axes
    assert len(runs) == 4
    assert "Hyperparameters of 4 runs" in view.texts[0].get_text()
    assert any("the hyperparameter view leave them out" in n for n in notes)


def test_the_reference_without_dropout_is_the_plainest_one(tmp_path):
    """Among configurations without dropout, figures refer to the one that sets the fewest
    other keys: plain `none`, not `none max_norm=1`, which sorts first."""
    for seed in (0, 1):
        make_run(tmp_path / f"a{seed}", p=0.0, name="none", seed=seed,
                 extra_config={"optim": {"max_norm": 1}})
        make_run(tmp_path / f"b{seed}", p=0.0, name="none", seed=seed)
        make_run(tmp_path / f"c{seed}", p=0.5, seed=seed)
    col = collect([tmp_path])
    by = varying_settings(col.runs, col.config_columns)
    groups = assign_groups(col, by)
    figures, _, labels = build_figures(col, groups, by, "acc")
    off = plots.without_dropout(col.runs, groups, labels.names)
    assert [labels.names[g] for g in off][0] == "none" and len(off) == 2
    assert labels.names[groups[0]] != "none"  # the group order alone would pick the other
    assert legend_texts(figures["by_configuration"])[-1] == "mean of none"
    # with long names the figures number the configurations; the plainest is still the one
    for seed in (0, 1):
        make_run(tmp_path / f"d{seed}", p=0.25, seed=seed,
                 extra_config={"optim": {"lr": 0.05, "momentum": 0.95, "weight_decay": 1e-4}})
    col = collect([tmp_path])
    by = varying_settings(col.runs, col.config_columns)
    groups = assign_groups(col, by)
    figures, _, labels = build_figures(col, groups, by, "acc")
    assert labels.numbered
    reference = legend_texts(figures["by_configuration"])[-1]
    plainest = plots.without_dropout(col.runs, groups, labels.full)[0]
    assert reference == f"mean of {labels.names[plainest]} ({labels.full[plainest]})"
    assert "max_norm" not in labels.full[plainest]


def test_mc_figure_from_eval_block_against_weight_scaling(tmp_path):
    curve = [{"samples": t, "test_acc": acc} for t, acc in [(1, 0.90), (10, 0.95), (100, 0.96)]]
    make_run(tmp_path / "a", test_acc=0.955,
             eval_block={"mc_curve": curve, "scale": {"test_acc": 0.955}})
    make_run(tmp_path / "b", seed=1, test_acc=0.955, eval_block={"mc_curve": curve})
    figures, notes = figures_for(tmp_path)
    ax = figures["mc_samples"].axes[0]
    mc_line, scale_line = ax.lines
    assert mc_line.get_xdata().tolist() == [1, 10, 100]
    assert mc_line.get_ydata().tolist() == pytest.approx([10.0, 5.0, 4.0])
    assert list(scale_line.get_ydata()) == pytest.approx([4.5, 4.5])  # 100 * (1 - 0.955)
    assert ax.get_xscale() == "log" and ax.get_ylabel() == "test error (%)"
    assert legend_texts(figures["mc_samples"])[-2:] == ["MC average of T passes",
                                                        "weight scaling"]


def test_html_is_self_contained_with_every_figure(sweep):
    out = write_report([sweep])
    page = (out / "report.html").read_text()
    figures = sorted(p.stem for p in out.glob("*.png"))
    assert figures == ["curves_grid", "gap_vs_rate", "overfitting_curves", "rate_sweep"]
    assert page.count('src="data:image/png;base64,') == len(figures)
    assert all(f'id="{name}"' in page for name in figures)
    assert "src=\"http" not in page and "<link" not in page  # nothing fetched from elsewhere


# --- paper presets ---------------------------------------------------------------------------
def test_paper_vs_ours_table(tmp_path):
    paper = {"paper": {"ref": "Srivastava et al. 2014", "dataset": {"name": "digits"},
                       "model": {"name": "mlp"}, "rows": {"standard": {
                           "table": "2", "metric": "test_error", "value": 1.25}}}}
    make_run(tmp_path / "a", test_acc=0.985, extra_config=paper)
    make_run(tmp_path / "b", seed=1, test_acc=0.987, extra_config=paper)
    make_run(tmp_path / "c", seed=2, test_acc=0.5)  # no paper block: not in the table
    out = write_report([tmp_path])
    table = pd.read_csv(out / "paper_vs_ours.csv")
    assert len(table) == 1 and table.loc[0, "n"] == 2
    assert table.loc[0, "ours_mean"] == pytest.approx(1.4)  # errors 1.5 % and 1.3 %
    assert table.loc[0, "difference"] == pytest.approx(0.15)
    assert table.loc[0, "comparison"] == "comparable"
    assert "Srivastava et al. 2014" in (out / "summary.md").read_text()


def test_no_paper_table_without_presets(sweep):
    out = write_report([sweep])
    assert not (out / "paper_vs_ours.csv").exists()


# --- the sweep callback ------------------------------------------------------------------------
def test_callback_never_fails_the_sweep(tmp_path, caplog):
    callback = SweepReport()
    callback.sweep_dir = tmp_path  # no runs in it: the report fails, the callback must not
    with caplog.at_level(logging.WARNING, logger="dropbench"):
        callback.write()
    assert "no sweep report" in caplog.text and "no runs found" in caplog.text


def test_callback_skips_the_report_of_an_interrupted_sweep(sweep, caplog):
    callback = SweepReport(formats=["png"])
    callback.sweep_dir = sweep
    callback.running_job = str(sweep / "3")  # on_job_start without on_job_end: Ctrl-C
    with caplog.at_level(logging.WARNING, logger="dropbench"):
        callback.write()
    assert "sweep interrupted" in caplog.text and f"dropbench report {sweep}" in caplog.text
    assert not (sweep / "report").exists()


def test_language_model_runs_get_their_own_perplexity_tables(tmp_path, sweep):
    lm = make_run(tmp_path / "lm", p=0.5)
    renamed = {f"{split}_acc": f"{split}_ppl" for split in ("train", "train_eval", "val")}
    metrics = pd.read_csv(lm / "metrics.csv").rename(columns=renamed)
    metrics.to_csv(lm / "metrics.csv", index=False)
    summary = json.loads((lm / "summary.json").read_text())
    summary.update(metric="ppl", best_val_ppl=90.0, test_ppl=85.0)
    (lm / "summary.json").write_text(json.dumps(summary))
    out = write_report([tmp_path])
    ppl = pd.read_csv(out / "summary_ppl.csv")
    assert ppl["test_ppl_mean"].tolist() == [85.0]
    # lower is better for perplexity: gap = val - train-eval = (0.8 + 0.03) - (0.9 + 0.03)
    assert ppl["final_gap_ppl_mean"].tolist() == pytest.approx([-0.1])
    assert len(pd.read_csv(out / "summary_acc.csv")) == 2
    assert (out / "overfitting_curves_ppl.png").is_file()
    assert (out / "overfitting_curves_acc.png").is_file()


@pytest.fixture(scope="module")
def digits_sweep(tmp_path_factory):
    """A real 4-job sweep on digits; the jobs with dataset.val_size=1600 fail as their data
    loads (digits has 1500 training images)."""
    root = tmp_path_factory.mktemp("real")
    env = {"DROPBENCH_DATA": str(root / "data")}
    result = run_cli("train", "-m", "dropout.p=0,0.5", "dataset.val_size=300,1600",
                     "dropout.p_input=0",
                     "trainer.epochs=2", "dataset.train_subset=200", "hydra.sweep.dir=sweep",
                     cwd=root, env=env)
    return root / "sweep", result


# the failed job's dir: its overrides, sorted (dropbench/jobdir.py)
FAILED_JOB = "dataset.train_subset=200,dataset.val_size=1600,dropout.p=0,dropout.p_input=0"
FAILED_WHY = "dataset.val_size=1600 leaves no training data"


def test_real_sweep_writes_its_report_even_with_a_failed_job(digits_sweep):
    sweep, result = digits_sweep
    assert result.returncode != 0 and FAILED_WHY in result.stderr
    report = sweep / "report"
    assert (report / "report.html").is_file() and (report / "overfitting_curves.png").is_file()
    table = pd.read_csv(report / "summary.csv")
    assert list(table["configuration"]) == ["dropout.p=0 (no dropout)", "dropout.p=0.5"]
    md = (report / "summary.md").read_text()
    assert f"| {FAILED_JOB} | failed | DropbenchError: {FAILED_WHY}" in md


def test_report_command_on_a_real_sweep(digits_sweep, tmp_path):
    sweep, _ = digits_sweep
    result = run_cli("report", sweep, "--out", tmp_path / "r", "--format", "png,svg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "r" / "report.html")
    # the failed job, named, with its error (from summary.json)
    assert (f"skipped run {FAILED_JOB}: no metrics.csv: no epoch finished (status failed: "
            f"{FAILED_WHY}") in result.stderr
    runs = pd.read_csv(tmp_path / "r" / "runs.csv")
    assert len(runs) == 2 and set(runs["status"]) == {"completed"}
    assert len(pd.read_csv(tmp_path / "r" / "epochs.csv")) == 2 * 2
    assert (tmp_path / "r" / "rate_sweep.svg").is_file()
