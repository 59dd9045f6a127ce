"""Every report figure, for sweeps a user can run, is legible: no two texts overlap, no text
runs off the figure, no axes is squeezed, no legend covers a panel, no offset or "× 10^k" tick
text, no matplotlib warning. Measured on matplotlib's own text extents after a draw.

The sweeps are synthetic run dirs in the trainer's format (docs/run-dir.md) with seeded noisy
curves, so the whole file runs in seconds."""

import json
import warnings
import zlib
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from dropbench.dropout.catalog import declarations
from dropbench.report.build import build_figures, write_report
from dropbench.report.collect import assign_groups, collect, varying_settings
from dropbench.report.labels import configuration_labels

MIN_AXES_PX = (110, 80)  # width, height at the figure's dpi (100): smaller is squeezed
SLACK = 1.0  # pixels two texts may share (antialiased edges)


# --- synthetic runs ---------------------------------------------------------------------------
def dropout_config(scheme: str, **values) -> dict:
    """A scheme's full dropout node: every declared key with its default, then `values`."""
    params = {f.name: f.default for f in fields(declarations()[scheme].params) if f.name != "name"}
    return {"name": scheme, **params, **values}


MODELS = {
    "mlp": {"name": "mlp", "hidden": [256, 256], "activation": "relu"},
    "lenet": {"name": "lenet", "channels": [20, 50], "hidden": [500]},
    "lstm": {"name": "lstm", "hidden": [200, 200], "embed_size": 200, "tied": False},
}


def write_run(run_dir, *, dropout: dict, seed: int, model="mlp", metric="acc", epochs=20,
              quality=0.0, extra=None, mc=False, val_is=None):
    """One run dir. `quality` moves the validation curve (higher is better); seed noise on
    top. Classifiers: accuracy in [0, 1]; language models: loss about 5.3-5.7 nats;
    regressions (rmse): the standardised MSE falling over two decades, validated on the
    training rows with val_is="train" (a UCI refit)."""
    rng = np.random.default_rng([seed, zlib.crc32(json.dumps(dropout, sort_keys=True).encode())])
    dataset = {"ppl": "textdir", "rmse": "uci"}.get(metric, "digits")
    config = {"dataset": {"name": dataset},
              "model": MODELS[model], "dropout": dropout,
              "optim": {"name": "sgd", "lr": 0.01, "momentum": 0.9},
              "trainer": {"epochs": epochs, "batch_size": 32}, "seed": seed, "device": "cpu",
              **(extra or {})}
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    e = np.arange(1, epochs + 1)
    noise = lambda scale: rng.normal(0, scale, epochs)  # noqa: E731
    if metric == "acc":
        train_eval = 2.3 * np.exp(-e / 3) + 0.002 + abs(noise(0.001))
        val = 2.3 * np.exp(-e / 3) + 0.3 - quality / 10 + 0.002 * e + noise(0.01)
        rows = {"train_eval_acc": np.clip(1 - train_eval / 2.5, 0, 1),
                "val_acc": np.clip(0.9 + quality / 20 - val / 10 + noise(0.003), 0, 1)}
    elif metric == "rmse":
        train_eval = 0.9 * np.exp(-e / 10) + 0.004 + abs(noise(0.0005))
        val = (train_eval if val_is == "train"
               else 0.9 * np.exp(-e / 10) + 0.03 - quality / 100 + abs(noise(0.002)))
        rows = {"train_eval_rmse": 2.5 * np.sqrt(train_eval), "val_rmse": 2.5 * np.sqrt(val),
                "train_eval_ll": -1.0 - train_eval, "val_ll": -1.0 - val}
    else:
        train_eval = 5.6 - 0.3 * (1 - np.exp(-e / 2)) + noise(0.005)
        val = 5.65 - 0.12 * (1 - np.exp(-e / 2)) - quality / 100 + noise(0.004)
        rows = {"train_eval_ppl": np.exp(train_eval), "val_ppl": np.exp(val)}
    train = train_eval * 1.3
    frame = pd.DataFrame({"epoch": e, "lr": 0.01, "seconds": 1.0, "train_loss": train,
                          f"train_{metric}": rows[f"train_eval_{metric}"],
                          "train_eval_loss": train_eval, "val_loss": val, **rows})
    frame.to_csv(run_dir / "metrics.csv", index=False)
    best = int(frame["val_loss"].idxmin())
    test = frame.loc[best, f"val_{metric}"] * (1 + rng.normal(0, 0.002))
    summary = {"format_version": 1, "status": "completed", "metric": metric, "seed": seed,
               "epochs_run": epochs, "wall_s": 1.0 * epochs, "best_epoch": best + 1,
               "best_val_loss": float(frame.loc[best, "val_loss"]),
               f"best_val_{metric}": float(frame.loc[best, f"val_{metric}"]),
               "test_loss": float(frame.loc[best, "val_loss"]), f"test_{metric}": float(test),
               "n_params": 1000, "device": "cpu", "overrides": []}
    if val_is is not None:
        summary["val_is"] = val_is
    if mc:
        summary["eval_compare"] = {
            "curve": [{"samples": t, f"test_{metric}": float(test - 0.02 / t)}
                      for t in (1, 2, 5, 10, 20, 50)],
            "scale": {f"test_{metric}": float(test - 0.001)}}
        if metric == "acc":
            summary["eval_compare"]["calibration"] = {
                "bins": 15, "scale": calibration_block(rng, 0.05),
                "mc": {"samples": 50, **calibration_block(rng, 0.01)}}
    (run_dir / "summary.json").write_text(json.dumps(summary))


def calibration_block(rng, overconfidence: float) -> dict:
    """A test split's calibration as eval.compare writes it (engine/calibration.py): 2,000
    examples mostly in the top bins, bins below 1/10 empty (ten classes), accuracy a little
    below confidence."""
    weights = np.r_[np.zeros(2), np.geomspace(1, 400, 13)]
    counts = rng.multinomial(2000, weights / weights.sum())
    bins = []
    for b, n in enumerate(counts):
        conf = (b + 0.5) / 15
        acc = float(np.clip(conf - overconfidence + rng.normal(0, 0.03), 0, 1)) if n else None
        bins.append({"lower": b / 15, "upper": (b + 1) / 15, "count": int(n),
                     "confidence": conf if n else None, "accuracy": acc})
    filled = [r for r in bins if r["count"]]
    ece = sum(r["count"] * abs(r["accuracy"] - r["confidence"]) for r in filled) / 2000
    return {"acc": 0.97, "nll": 0.1, "brier": 0.05, "ece": ece, "entropy": 0.1, "bins": bins}


def sweep(root, configurations, seeds=(0, 1, 2), **kw):
    """configurations: [(dropout node, run kwargs)], each run once per seed."""
    i = 0
    for dropout, extra_kw in configurations:
        for seed in seeds:
            write_run(root / str(i), dropout=dropout, seed=seed, **{**kw, **extra_kw})
            i += 1
    return root


def demo(root):
    """What `dropbench demo` runs (dropbench/demo.py): none vs standard p=0.5 p_input=0.2."""
    return sweep(root, [(dropout_config("none"), {}),
                        (dropout_config("standard", p=0.5, p_input=0.2), {"quality": 1})],
                 epochs=100)


def single_run(root):
    return sweep(root, [(dropout_config("standard"), {})], seeds=(0,))


def mlp_rates(root):
    return sweep(root, [(dropout_config("standard", p=p, p_input=0.0), {"quality": p})
                        for p in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)])


def schemes(root):
    names = ["none", "standard", "classic", "gaussian", "dropconnect", "alpha", "concrete"]
    return sweep(root, [(dropout_config(n), {"quality": i / 3}) for i, n in enumerate(names)],
                 seeds=(0, 1))


def language_model(root):
    """Perplexity around 250, differences of about one perplexity inside the seeds' noise."""
    return sweep(root, [(dropout_config("variational", p_recurrent=p, p=0.2), {"quality": p})
                        for p in (0.0, 0.25, 0.5)], seeds=(0, 1), model="lstm", metric="ppl",
                 epochs=6)


def cnn(root):
    return sweep(root, [(dropout_config("standard", p=p, where=where), {"quality": p})
                        for where in ("fc", "all") for p in (0.25, 0.5)], model="lenet",
                 seeds=(0, 1))


def preset(root):
    paper = {"paper": {"ref": "Srivastava et al. 2014", "table": "Table 2", "metric": "test_error",
                       "value": 1.06}}
    return sweep(root, [(dropout_config("standard", p=0.5, p_input=0.2), {"extra": paper})],
                 seeds=(0, 1))


def twelve(root):
    """12 configurations: 4 rates x 3 learning rates, with Monte-Carlo results (every figure,
    parallel coordinates included)."""
    configurations = []
    for lr in (0.01, 0.05, 0.1):
        for p in (0.0, 0.25, 0.5, 0.75):
            configurations.append((dropout_config("standard", p=p, p_input=0.0),
                                   {"quality": p - lr, "mc": True,
                                    "extra": {"optim": {"name": "sgd", "lr": lr,
                                                        "momentum": 0.9}}}))
    return sweep(root, configurations, seeds=(0, 1))


def uci_selection(root):
    """The UCI protocol's selection runs of one split: four rates, validated on held-out rows."""
    return sweep(root, [(dropout_config("standard", p=p, p_input=p), {"quality": p * 10})
                        for p in (0.005, 0.01, 0.05, 0.1)], seeds=(0,), metric="rmse",
                 epochs=100)


def uci_refit(root):
    """One refit of the UCI protocol: its validation split is its training data."""
    return sweep(root, [(dropout_config("standard", p=0.005, p_input=0.005), {})], seeds=(0,),
                 metric="rmse", epochs=100, val_is="train")


SWEEPS = {f.__name__: f for f in (demo, single_run, mlp_rates, schemes, language_model, cnn,
                                  preset, twelve, uci_selection, uci_refit)}


# --- what legible means, on matplotlib's own extents ---------------------------------------------
def drawn_texts(fig) -> list[Text]:
    """Every visible, non-empty text the draw placed: tick labels only of the ticks drawn."""
    hidden = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            drawn = {id(t) for tick in axis._update_ticks() for t in (tick.label1, tick.label2)}
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                hidden |= {id(t) for t in (tick.label1, tick.label2) if id(t) not in drawn}
    texts = []
    for text in fig.findobj(Text):
        if id(text) in hidden or not text.get_text().strip() or not text.get_visible():
            continue
        axes = text.axes
        if axes is not None and not axes.get_visible():
            continue
        texts.append(text)
    return texts


def problems(fig) -> list[str]:
    found = []
    canvas = FigureCanvasAgg(fig)  # what savefig renders PNGs with
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "constrained_layout not applied"
        canvas.draw()
    renderer = canvas.get_renderer()
    page = fig.bbox
    texts = drawn_texts(fig)
    boxes = [t.get_window_extent(renderer) for t in texts]
    for text, box in zip(texts, boxes, strict=True):
        if (box.x0 < page.x0 - SLACK or box.y0 < page.y0 - SLACK or box.x1 > page.x1 + SLACK
                or box.y1 > page.y1 + SLACK):
            found.append(f"cut off at the figure edge: {text.get_text()!r}")
        if "×" in text.get_text() or "\\times" in text.get_text() or "e+" in text.get_text():
            found.append(f"scientific tick text: {text.get_text()!r}")
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            a, b = boxes[i].padded(-SLACK), boxes[j].padded(-SLACK)
            if a.overlaps(b):
                found.append(f"overlap: {texts[i].get_text()!r} and {texts[j].get_text()!r}")
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    for ax in panels:
        box = ax.get_window_extent(renderer)
        if box.width < MIN_AXES_PX[0] or box.height < MIN_AXES_PX[1]:
            found.append(f"squeezed axes ({box.width:.0f} x {box.height:.0f} px)")
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_offset_text().get_text():
                found.append(f"offset tick text {axis.get_offset_text().get_text()!r}")
        if ax.get_yscale() == "log":
            low, high = ax.get_ylim()
            if high / low <= 10:
                found.append(f"log axis over less than a decade ({low:g}-{high:g})")
    legends = list(fig.legends) + [ax.get_legend() for ax in panels if ax.get_legend()]
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in panels:
            if box.overlaps(ax.get_window_extent(renderer)):
                found.append("a legend covers a panel")
    return found


def figures_of(root):
    col = collect([root])
    by = varying_settings(col.runs, col.config_columns)
    groups = assign_groups(col, by)
    figures = {}
    for m in dict.fromkeys(col.runs["metric"]):
        made, _, _ = build_figures(col, groups, by, m)
        figures.update({f"{name}_{m}": fig for name, fig in made.items()})
    return figures


@pytest.mark.filterwarnings("error::UserWarning")
@pytest.mark.parametrize("name", SWEEPS)
def test_every_figure_is_legible(name, tmp_path):
    figures = figures_of(SWEEPS[name](tmp_path / name))
    assert figures
    found = {fig_name: problems(fig) for fig_name, fig in figures.items()}
    assert not {k: v for k, v in found.items() if v}, found


def legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_configurations_are_named_by_what_differs(tmp_path):
    figures = figures_of(demo(tmp_path / "demo"))
    labels = legend_labels(figures["overfitting_curves_acc"])
    assert labels[:2] == ["none", "standard p=0.5 p_input=0.2"]
    schemes_figures = figures_of(schemes(tmp_path / "schemes"))
    ticks = [t.get_text() for t in schemes_figures["by_configuration_acc"].axes[0]
             .get_yticklabels()]
    # every scheme but none drops at p=0.5: a value most configurations share is left out,
    # and so are keys that do not differ (p_input, where) and keys a scheme lacks
    assert sorted(ticks) == sorted(["none", "standard", "classic", "gaussian", "dropconnect",
                                    "alpha", "concrete"])
    lm = figures_of(language_model(tmp_path / "lm"))
    panels = [ax.get_title() for ax in lm["curves_grid_ppl"].axes if ax.get_visible()]
    assert panels == ["p_recurrent=0", "p_recurrent=0.25", "p_recurrent=0.5"]


def test_names_leave_out_unset_keys_and_the_usual_value():
    """A regulariser comparison: one penalty per configuration, the others off (0 or null)."""
    rows = []
    for name, penalty in [("none", {}), ("none", {"optim.weight_decay": 5e-4}),
                          ("none", {"optim.max_norm": 3}), ("standard", {}),
                          ("standard", {"optim.max_norm": 3})]:
        config = {"optim.weight_decay": 0.0, "optim.max_norm": None, **penalty}
        dropout = dropout_config(name, p=0.5, p_input=0.2) if name != "none" else \
            dropout_config("none")
        rows.append({"group": f"{name} {penalty}", "dropout_off": name == "none",
                     **{f"dropout.{k}": v for k, v in dropout.items()}, **config})
    runs = pd.DataFrame(rows)
    keys = [c for c in runs if c not in ("group", "dropout_off")]
    names = configuration_labels(runs, keys).names
    assert list(names.values()) == ["none", "none weight_decay=0.0005", "none max_norm=3",
                                    "standard", "standard max_norm=3"]


def test_long_names_are_numbered_with_a_key_under_the_figure(tmp_path):
    root = sweep(tmp_path / "s", [
        (dropout_config("standard", p=p, p_input=q),
         {"extra": {"optim": {"lr": lr, "momentum": 0.9 + lr}}})
        for p, q, lr in [(0.1, 0.0, 0.01), (0.5, 0.2, 0.05), (0.25, 0.1, 0.1)]], seeds=(0,))
    out = write_report([root])
    grid = figures_of(root)["curves_grid_acc"]
    assert [ax.get_title() for ax in grid.axes] == ["1", "2", "3"]
    page = (out / "report.html").read_text()
    assert 'class="with-key"' in page and "p=0.25 p_input=0.1 lr=0.1 momentum=1" in page


def test_the_numbered_reference_line_also_names_its_configuration(tmp_path):
    """"mean of 1" alone sends the reader to the key; "mean of 1 (none)" says it."""
    root = sweep(tmp_path / "s", [(dropout_config("none"), {})] + [
        (dropout_config("standard", p=p, p_input=q),
         {"extra": {"optim": {"lr": lr, "momentum": 0.9 + lr}}})
        for p, q, lr in [(0.5, 0.2, 0.05), (0.25, 0.1, 0.1)]], seeds=(0,))
    figure = figures_of(root)["by_configuration_acc"]
    assert sorted(t.get_text() for t in figure.axes[0].get_yticklabels()) == ["1", "2", "3"]
    assert legend_labels(figure)[-1].startswith("mean of 1 (none ")  # and its other keys
    assert not problems(figure)


def test_language_model_axes_are_linear_with_plain_ticks_and_noise_wide(tmp_path):
    figures = figures_of(language_model(tmp_path / "lm"))
    loss_ax, ppl_ax = figures["overfitting_curves_ppl"].axes
    assert loss_ax.get_yscale() == ppl_ax.get_yscale() == "linear"  # under a decade
    val_ax = figures["rate_sweep_ppl"].axes[0]
    low, high = val_ax.get_ylim()
    stds = [np.max(np.abs(np.diff(seg, axis=0)))
            for c in val_ax.containers for seg in c[2][0].get_segments()]
    # the error bars fill at most half the axis (equal where the axis was widened to the noise)
    assert high - low >= 2 * max(stds) * (1 - 1e-9)


def test_runs_csv_has_one_row_per_run_and_epochs_csv_one_per_epoch(tmp_path):
    root = mlp_rates(tmp_path / "rates")
    out = write_report([root])
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 6 * 3 and runs["run"].is_unique
    assert {"group", "dropout.p", "seed", "best_val_acc", "test_acc"} <= set(runs)
    epochs = pd.read_csv(out / "epochs.csv")
    assert len(epochs) == 6 * 3 * 20 and {"run", "epoch", "val_loss"} <= set(epochs)


def test_the_results_page_small_data_figure_is_legible():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from results_page import small_data_plot

    rows = [{"dropout.name": name, "dataset.train_subset": n, "test_acc_std": 0.004,
             "test_acc_mean": 1 - 2 / n ** 0.5 - (0.01 if name == "standard" else 0)}
            for name in ("none", "standard") for n in (250, 500, 1000, 2000, 4000, 7000)]
    fig = small_data_plot(pd.DataFrame(rows))
    assert not problems(fig)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:2] == ["250", "500"]


def test_the_reliability_diagram_and_the_shift_panels_are_legible(tmp_path):
    """The reliability diagram of two configurations (what scripts/shift.py reports; the
    twelve-configuration sweep above draws its first four) and the shift study's panels."""
    from dropbench.report.calibration_plots import reliability_diagram, shift_panels

    root = sweep(tmp_path / "calibrated", [
        (dropout_config("none"), {"mc": True}),
        (dropout_config("standard", p=0.5, p_input=0.2), {"quality": 1, "mc": True})],
        seeds=(0, 1), epochs=3)
    col = collect([root])
    groups = assign_groups(col, varying_settings(col.runs, col.config_columns))
    fig = reliability_diagram(col.reliability, groups)
    assert problems(fig) == []
    titles = [" ".join(ax.get_title().split()) for ax in fig.axes if ax.get_title()]
    assert [t.split(": ")[1].split(",")[0] for t in titles] == ["weight scaling", "MC dropout"] * 2
    # a wrapped title keeps "ECE 1.4 %" on one line: no "%" left alone on the next
    lines = [line for ax in fig.axes for line in ax.get_title().splitlines()]
    assert all("%" not in line or "ECE" in line for line in lines), lines
    assert "empty bin" in legend_labels(fig)
    rng = np.random.default_rng(0)
    models = ["no dropout", "dropout, weight scaling", "MC dropout"]
    rows = pd.DataFrame([{"model": m, "seed": s, "angle": a, "acc": rng.uniform(0.1, 1),
                          "nll": rng.uniform(0, 6), "ece": rng.uniform(0, 0.6),
                          "entropy": rng.uniform(0, 1.2)}
                         for m in models for s in range(3) for a in range(0, 181, 15)])
    shift = shift_panels(rows, models, "Rotated test digits: mean over 3 seeds, range shaded")
    assert problems(shift) == []
    assert [ax.get_ylabel() for ax in shift.axes] == [
        "accuracy (%)", "NLL (nats)", "ECE (%)", "predictive entropy (nats)"]


@pytest.mark.parametrize("low, high, least", [(0.02, 2.5, 5), (0.001, 2.5, 3)])
def test_a_log_loss_axis_labels_enough_ticks_to_read_a_value(low, high, least):
    """Decades alone left a loss panel spanning 0.02-2.5 two labels (0.1 and 1); up to two and
    a half decades it is labelled 1-2-5, beyond that by decades (still three or more)."""
    from dropbench.report.plots import log_axis_if_wide, new_figure

    fig, axes = new_figure(1)
    ax = axes[0, 0]
    ax.plot([0, 1], [low, high])
    assert log_axis_if_wide(ax, [low, high])
    FigureCanvasAgg(fig).draw()
    bottom, top = ax.get_ylim()
    labelled = [t for t in ax.yaxis.get_major_ticks()
                if t.label1.get_text() and bottom <= t.get_loc() <= top]
    assert len(labelled) >= least, [t.label1.get_text() for t in labelled]
    assert not problems(fig)
