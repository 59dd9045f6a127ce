"""Early and late dropout (dropout.schedule): the factor at each epoch, the rates the modules
use, the constant default attaching nothing, refusals, the batched launcher and a CLI run."""

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dropbench import DropbenchError
from dropbench.config import model_schemas
from dropbench.data import ClassificationData, Split
from dropbench.dropout import hooks
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.schedule import rate_factor
from dropbench.models import build_model, check_dropout
from dropbench.sweep.plan import why_alone

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("schedule, factors", [  # 8 epochs, cutoff 0.25 * 8 = epoch 2
    ("constant", [1, 1, 1, 1, 1, 1, 1, 1]),
    ("early", [1, 1, 0, 0, 0, 0, 0, 0]),
    ("late", [0, 0, 1, 1, 1, 1, 1, 1]),
    ("linear_down", [1, 0.5, 0, 0, 0, 0, 0, 0]),
    ("linear_up", [0, 0.5, 1, 1, 1, 1, 1, 1]),
])
def test_the_factor_at_each_epoch(schedule, factors):
    assert [rate_factor(schedule, 0.25, e, 8) for e in range(8)] == factors


def test_a_cutoff_between_epochs_falls_after_the_epoch_it_starts_in():
    assert [rate_factor("early", 0.5, e, 3) for e in range(3)] == [1, 1, 0]  # cutoff 1.5
    assert [rate_factor("late", 1.0, e, 3) for e in range(3)] == [0, 0, 0]


def model_config(name: str, **values):
    return OmegaConf.merge(OmegaConf.structured(model_schemas()[name]), {"name": name, **values})


def mlp_config():
    return model_config("mlp", hidden=[8, 8])


def data(*shape):
    split = Split(torch.zeros(4, *shape), torch.zeros(4, dtype=torch.long))
    return ClassificationData(split, split, split, shape, 3)


def test_every_module_uses_the_scheduled_rate_and_it_is_logged():
    cfg = scheme_config("standard", p=0.4, p_input=0.2, schedule="linear_down",
                        schedule_until=0.5)
    net = build_model(mlp_config(), cfg, data(6))
    modules = [m for m in net.modules() if getattr(m, "dropout_place", None) is not None]
    assert sorted(m.p for m in modules) == [0.2, 0.4, 0.4]
    for epoch, factor in enumerate([1.0, 0.5, 0.0, 0.0]):
        hooks.set_epoch(net, epoch, 4)
        assert sorted(m.p for m in modules) == pytest.approx([0.2 * factor, 0.4 * factor,
                                                              0.4 * factor])
        assert hooks.logged_values(net) == pytest.approx(
            {"rate_factor": factor, "rate.p": 0.4 * factor, "rate.p_input": 0.2 * factor})


def test_dropblock_ramps_the_scheduled_rate():
    lenet = model_config("lenet", channels=[2], hidden=[4])
    cfg = scheme_config("dropblock", p=0.2, block_size=2, ramp_epochs=2, schedule="late",
                        schedule_until=0.5)
    net = build_model(lenet, cfg, data(1, 8, 8))
    blocks = [m for m in net.modules() if hasattr(m, "ramped_rate")]
    hooks.set_epoch(net, 0, 4)  # before the cutoff: no dropout
    assert blocks and all(b.rate == 0 for b in blocks)
    hooks.set_epoch(net, 3, 4)  # after it: the full rate, the ramp long over
    assert all(b.rate == pytest.approx(0.2) for b in blocks)


def test_the_constant_default_attaches_nothing():
    net = build_model(mlp_config(), scheme_config("standard", p=0.4), data(6))
    assert hooks.schedule_of(net) is None and "rate_factor" not in hooks.logged_values(net)


def test_a_scheme_that_learns_its_rates_refuses_a_schedule_in_one_line():
    with pytest.raises(DropbenchError, match=r"dropout=concrete learns its rates, so no "
                                             r"dropout.schedule=early can set them") as e:
        check_dropout(mlp_config(), scheme_config("concrete", schedule="early"))
    assert "\n" not in str(e.value)


def test_a_scheduled_job_runs_alone_in_a_batched_sweep_with_its_reason(compose):
    cfg = compose(["dropout.schedule=late"])
    assert why_alone(cfg) == "dropout.schedule=late is not batched (batched: constant)"
    assert why_alone(compose([])) is None


def train(cli, tmp_path, name, *overrides):
    run = tmp_path / name
    r = cli("train", "trainer.epochs=4", "trainer.progress=false", "trainer.threads=1",
            f"data_dir={tmp_path / 'data'}", f"hydra.run.dir={run}", *overrides)
    assert r.returncode == 0, r.stderr
    return pd.read_csv(run / "metrics.csv")


def test_early_dropout_through_the_cli_and_a_schedule_at_full_rate_changes_nothing(cli,
                                                                                tmp_path):
    early = train(cli, tmp_path, "early", "dropout.schedule=early", "dropout.schedule_until=0.5")
    assert early["rate.p"].tolist() == [0.5, 0.5, 0.0, 0.0]
    assert early["rate_factor"].tolist() == [1.0, 1.0, 0.0, 0.0]
    # A schedule whose factor stays 1 is bit-identical to the constant default, which is
    # the run without a schedule (it attaches nothing).
    constant = train(cli, tmp_path, "constant", "dropout.schedule=constant")
    full = train(cli, tmp_path, "full", "dropout.schedule=early", "dropout.schedule_until=1.0")
    assert "rate.p" not in constant
    kept = [c for c in constant.columns if c != "seconds"]
    pd.testing.assert_frame_equal(full[kept], constant[kept], check_exact=True)
    # Early dropout changes training once the rate falls to 0.
    assert early["train_loss"].iloc[3] != constant["train_loss"].iloc[3]


def test_a_cutoff_out_of_range_is_refused_in_one_line(cli):
    r = cli("train", "dropout.schedule=early", "dropout.schedule_until=0", "hydra.run.dir=bad")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    line, = r.stderr.strip().splitlines()
    assert "dropout.schedule_until=0" in line and "(0, 1]" in line, line


def test_dropbench_list_names_the_schedule_every_scheme_takes(cli):
    heading = next(line for line in cli("list").stdout.splitlines()
                   if line.startswith("dropout:"))
    assert "schedule=constant|early|late|linear_down|linear_up schedule_until=0.25" in heading


def test_reports_label_configurations_by_their_schedule():
    from dropbench.report.labels import SCHEME, scheme_lacks

    row = pd.Series({SCHEME: "standard", "dropout.schedule": "early"})
    assert not scheme_lacks(row, "dropout.schedule")
    assert not scheme_lacks(row, "dropout.schedule_until")
    assert scheme_lacks(row, "dropout.block_size")


def test_a_per_step_schedule_moves_within_an_epoch_and_logs_the_epoch_mean():
    """linear_down over 2 epochs of 4 steps, cutoff at half of training (step 4): the factors
    of the first epoch's steps are 1, 0.75, 0.5, 0.25 (mean 0.625), then 0."""
    cfg = scheme_config("standard", p=0.4, p_input=0.2, schedule="linear_down",
                        schedule_until=0.5)
    net = build_model(mlp_config(), cfg, data(6))
    hidden = [m for m in net.modules() if getattr(m, "dropout_place", None) is not None
              and m.dropout_place.key == "p"]
    schedule = hooks.schedule_of(net)
    seen = []
    for epoch in range(2):
        hooks.set_epoch(net, epoch, 2, steps=4)
        for i in range(4):
            schedule.set_step(epoch * 4 + i, 8)
            seen.append(hidden[0].p)
        logged = hooks.logged_values(net)
        assert logged["rate_factor"] == pytest.approx([0.625, 0.0][epoch])
        assert logged["rate.p"] == pytest.approx(0.4 * [0.625, 0.0][epoch])
    assert seen == pytest.approx([0.4, 0.3, 0.2, 0.1, 0, 0, 0, 0])


def test_an_epoch_unit_schedule_ignores_the_steps():
    cfg = scheme_config("standard", p=0.4, schedule="linear_down", schedule_until=0.5,
                        schedule_unit="epoch")
    net = build_model(mlp_config(), cfg, data(6))
    module = next(m for m in net.modules() if getattr(m, "dropout_place", None) is not None
                  and m.dropout_place.key == "p")
    hooks.set_epoch(net, 0, 2, steps=4)
    for i in range(4):
        hooks.schedule_of(net).set_step(i, 8)
        assert module.p == 0.4
    assert hooks.logged_values(net)["rate_factor"] == 1.0
