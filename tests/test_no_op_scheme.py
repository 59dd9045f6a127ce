"""A named scheme is never a silent no-op: with a preset each scheme gets the paper's rates or
its own defaults, and a scheme that would build no dropout module is refused in one line,
unless it is `none` or the zero rates were set on the command line."""

import pytest

from conftest import REPO
from dropbench import DropbenchError
from dropbench.dropout.no_op import rates_on_command_line, refuse_no_op_scheme
from dropbench.models.places import check_dropout

PRESETS = sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
LM_PRESETS = ["zaremba_small", "zaremba_medium", "zaremba_large", "gal_variational_medium",
              "awd_lstm"]
LM_SCHEMES = ["standard", "locked", "variational", "weight_drop", "gate"]


def nonzero_rates(cfg) -> dict[str, list[float]]:
    planned = check_dropout(cfg.model, cfg.dropout)
    return {role: rates for role, rates in planned.items() if any(rates)}


@pytest.mark.parametrize("preset", LM_PRESETS)
def test_every_language_model_scheme_drops_something_under_every_preset(compose, preset):
    for scheme in LM_SCHEMES:
        cfg = compose([f"+experiment={preset}", f"dropout={scheme}"])
        assert nonzero_rates(cfg), f"{preset} dropout={scheme}"
        refuse_no_op_scheme(cfg.model, cfg.dropout)


def test_the_readme_sweep_gets_the_papers_rates(compose):
    """zaremba_medium: Zaremba et al.'s 0.5 on the non-recurrent connections for standard and
    locked, Gal & Ghahramani's medium rates for variational."""
    rates = {s: nonzero_rates(compose(["+experiment=zaremba_medium", f"dropout={s}"]))
             for s in ("standard", "locked", "variational")}
    zaremba = {"input": [0.5], "hidden": [0.5], "output": [0.5]}
    assert rates["standard"] == zaremba and rates["locked"] == zaremba
    assert rates["variational"] == {"embedding": [0.2], "input": [0.35], "hidden": [0.35],
                                    "recurrent": [0.2, 0.2], "output": [0.35]}


def test_a_scheme_the_paper_gives_no_rates_for_keeps_its_defaults(compose):
    cfg = compose(["+experiment=zaremba_small", "dropout=locked"])
    plain = compose(["model=lstm", "dropout=locked"])
    assert nonzero_rates(cfg) == nonzero_rates(plain) == {
        "input": [0.5], "hidden": [0.5], "output": [0.5]}


def test_command_line_rates_win_over_the_presets(compose):
    cfg = compose(["+experiment=zaremba_medium", "dropout=locked", "dropout.p=0.1",
                   "dropout.p_recurrent=0.2"])
    assert nonzero_rates(cfg) == {"input": [0.5], "hidden": [0.1], "recurrent": [0.2, 0.2],
                                  "output": [0.5]}


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_drops_with_its_own_scheme(compose, preset):
    cfg = compose([f"+experiment={preset}"])
    assert bool(nonzero_rates(cfg)) == (cfg.dropout.name != "none")
    refuse_no_op_scheme(cfg.model, cfg.dropout)


def test_a_scheme_with_nothing_to_drop_is_refused_in_one_line(compose):
    """Zero rates that came from a preset, not from the command line, build nothing."""
    cfg = compose(["model=lstm", "dropout.p=0"])
    with pytest.raises(DropbenchError) as e:
        refuse_no_op_scheme(cfg.model, cfg.dropout, ["model=lstm"])
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("dropout=standard builds no dropout module in model=lstm")
    assert "dropout.p_input=0" in message and "dropout.p_output=0" in message
    assert "set a rate (e.g. dropout.p_input=0.5)" in message and "dropout=none" in message


@pytest.mark.parametrize("overrides", [
    ["dropout=none"],
    ["dropout.p=0"],                       # the zero point of a rate sweep
    ["dropout=locked", "dropout.p_input=0", "dropout.p=0", "dropout.p_output=0"],
])
def test_no_dropout_asked_for_runs(compose, overrides):
    model = ["model=lstm"] if "dropout=locked" in overrides else []
    cfg = compose([*model, *overrides])
    assert not nonzero_rates(cfg)
    refuse_no_op_scheme(cfg.model, cfg.dropout, overrides)


def test_rate_overrides_are_read_with_hydras_parser():
    assert rates_on_command_line(["dropout.p=0", "+dropout.p_embed=0.0", "seed=1",
                                  "dropout=standard", "~dropout.p_input", "optim.p=3"]) == {
        "p", "p_embed"}


def test_the_cli_refuses_before_writing_anything(cli, tmp_path):
    """A user's own preset whose zero rates leave `standard` nothing to drop."""
    presets = tmp_path / "my_conf" / "experiment"
    presets.mkdir(parents=True)
    (presets / "zeros.yaml").write_text("# @package _global_\ndropout:\n  p: 0.0\n")
    result = cli("train", f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]", "+experiment=zeros",
                 "trainer.progress=false", "trainer.threads=1")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr.strip().splitlines()
    assert len(error) == 1
    assert "dropout=standard builds no dropout module in model=mlp" in error[0]
    assert not (tmp_path / "outputs").exists()
