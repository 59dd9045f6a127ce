"""Typed per-scheme configs and the dropout a model actually builds.

Every built-in (scheme, model) pair, with a distinct nonzero rate on every rate key the scheme has:
either validation refuses it with one line (and the builder refuses it the same way), or the
built model's described dropout covers exactly the places that got a nonzero rate, each at
its rate. Foreign keys fail when the config is composed, through the real CLI.
"""

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from dropbench import DropbenchError, registry
from dropbench.config import config_dir, model_schemas
from dropbench.data import ClassificationData, Split
from dropbench.data.text import LanguageModelData
from dropbench.dropout import Place, get_scheme
from dropbench.dropout.catalog import scheme_config
from dropbench.dropout.describe import describe_dropout, format_built
from dropbench.models import build_model, check_dropout

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATES = {"p_input": 0.1, "p": 0.2, "p_output": 0.3, "p_recurrent": 0.25, "p_embed": 0.15,
         "p_branch": 0.35, "p_attn": 0.05}
TINY = {  # model -> settings that keep it small
    "mlp": {"hidden": [8, 8]},
    "lenet": {"channels": [3, 4], "hidden": [8, 8]},
    "alexnet": {"channels": [3, 4, 4], "hidden": [8, 8]},
    "resnet": {"channels": [4, 4, 4, 4], "blocks": [1, 1, 1, 1]},
    "lstm": {"hidden": [8, 8]},
    "gru": {"hidden": [8, 8, 8]},
    "vit": {"dim": 8, "heads": 2, "depth": 2},
    "transformer_lm": {"dim": 8, "heads": 2, "depth": 2, "bptt": 8},
}
LANGUAGE_MODELS = ("lstm", "gru", "transformer_lm")




def built_in(kind: registry.Registry) -> list[str]:
    """dropbench's own entries: an installed plugin brings its own tests (examples/plugin)."""
    return sorted(e.name for e in kind.entries() if e.package == registry.BUILTIN_PACKAGE)


def model_config(model: str):
    """conf/model/<model>.yaml on its typed schema, made tiny (no Hydra: 72 pairs stay fast)."""
    yaml_values = OmegaConf.load(config_dir() / "model" / f"{model}.yaml")
    yaml_values.pop("defaults")
    return OmegaConf.merge(OmegaConf.structured(model_schemas()[model]), yaml_values, TINY[model])


def fake_data(model: str):
    if model in LANGUAGE_MODELS:
        words = torch.arange(40) % 30
        return LanguageModelData(words, words, words, [str(i) for i in range(30)])
    shape = (64,) if model == "mlp" else (3, 16, 16)
    split = Split(torch.zeros(100, *shape), torch.zeros(100, dtype=torch.long))
    return ClassificationData(split, split, split, shape, 5)


def example(model: str, data):
    if model in LANGUAGE_MODELS:
        return torch.randint(30, (5, 2))  # (T, B) tokens
    return torch.randn(4, *data.input_shape)


@pytest.mark.parametrize("model", built_in(registry.MODELS))
@pytest.mark.parametrize("scheme", built_in(registry.SCHEMES))
def test_every_pair_builds_what_it_asked_for_or_refuses_in_one_line(scheme, model):
    rates = {k: v for k, v in RATES.items() if k in get_scheme(scheme).keys}
    cfg = SimpleNamespace(model=model_config(model), dropout=scheme_config(scheme, **rates))
    data = fake_data(model)
    try:
        planned = check_dropout(cfg.model, cfg.dropout)
    except DropbenchError as e:
        assert "\n" not in str(e) and "dropout.p" in str(e)
        with pytest.raises(DropbenchError, match="^" + str(e)[:40].replace("(", r"\(")):
            build_model(cfg.model, cfg.dropout, data)  # the builder agrees with validation
        return
    torch.manual_seed(0)
    net = build_model(cfg.model, cfg.dropout, data)
    built = describe_dropout(net)
    asked = {role: rs for role, rs in planned.items() if any(rs)}
    assert {e["place"] for e in built} == set(asked), (built, planned)
    for entry in built:  # each at a rate planned for its place (depth_rates: rising to it)
        assert entry["scheme"] == scheme
        at_place = planned[entry["place"]]  # describe_dropout rounds rates to 6 digits
        assert any(entry["rate"] == pytest.approx(r, abs=1e-6) for r in at_place), entry
        assert max(planned[entry["place"]]) == pytest.approx(RATES[entry["key"]])
    for role, rs in asked.items():  # at least one module per place instance with a rate
        assert sum(e["place"] == role for e in built) >= sum(r > 0 for r in rs)
    assert len(format_built(built)) == max(1, len(built))
    out = net.train()(example(model, data))
    out = out[0] if isinstance(out, tuple) else out
    assert torch.isfinite(out).all()


def test_no_scheme_silently_drops_the_rates_of_an_lstm(compose):
    """dataset=ptb model=lstm dropout=dropconnect with every rate 0.5 must not train a plain
    LSTM: it is refused, naming the place and the schemes that serve it."""
    cfg = compose(["dataset=ptb", "model=lstm", "dropout=dropconnect", "dropout.p=0.5"])
    with pytest.raises(DropbenchError, match=r"cannot drop the hidden place .*schemes that "
                                             r"can: classic, gate, gaussian, locked, standard"):
        check_dropout(cfg.model, cfg.dropout)


@pytest.mark.parametrize("overrides, fragment", [
    (["model=mlp", "dropout=standard", "dropout.p_output=0.3"],
     "model=mlp has no place for dropout.p_output=0.3"),
    (["model=mlp", "dropout=none", "dropout.p=0.5"], "dropout=none drops nothing"),
    (["model=mlp", "dropout=dropblock", "dropout.block_size=0"],
     "dropout.block_size=0 is out of range; use an integer >= 1"),
    (["model=mlp", "dropout=concrete", "dropout.temperature=0"],
     "dropout.temperature=0.0 is out of range; use a number > 0"),
    (["model=mlp", "dropout=dropconnect", "dropout.inference=median"],
     "dropout.inference='median' is unknown"),
])
def test_validation_names_the_problem(compose, overrides, fragment):
    from dropbench.config import validate

    with pytest.raises(DropbenchError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        validate(compose(overrides))


@pytest.mark.parametrize("args, fragment", [
    (["dropout=standard", "dropout.block_size=5"],
     "dropout=standard has no key 'block_size'; its keys: p, p_input, where, p_output, p_attn; "
     "block_size is a key of dropblock"),
    (["dropout=dropconnect", "+experiment=zaremba_medium"],  # no preset rates: its own
     "dropout=dropconnect cannot drop the hidden place (dropout.p=0.5)"),
    (["dropout=standard", "+dropout.foo=1"], "dropout=standard has no key 'foo'"),
    (["dataset=ptb", "model=lstm", "dropout=dropconnect", "dropout.p=0.5"],
     "dropout=dropconnect cannot drop the hidden place (dropout.p=0.5)"),
])
def test_foreign_keys_and_places_fail_in_one_line_through_the_cli(cli, args, fragment):
    r = cli("train", *args, "hydra.run.dir=bad")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("dropbench: error: ") and fragment in lines[0], lines[0]


def test_report_shows_the_dropout_each_configuration_built(tmp_path):
    import json

    from dropbench.report.build import write_report
    from dropbench.report.collect import built_text
    from tests.test_report import make_run

    hidden = {"place": "hidden", "scheme": "standard", "rate": 0.5, "drops": "units",
              "masks": "per example"}
    entries = [{**hidden, "place": "input", "rate": 0.2}, hidden, hidden]
    assert built_text(entries) == ("input standard p=0.2 (units, per example); "
                                   "hidden standard p=0.5 x2 (units, per example)")
    assert built_text([]) == "none"
    for i, p in enumerate([0.0, 0.5]):
        run = make_run(tmp_path / "sweep" / str(i), p=p)
        summary = json.loads((run / "summary.json").read_text())
        summary["dropout_built"] = entries if p else []
        (run / "summary.json").write_text(json.dumps(summary))
    out = write_report([tmp_path / "sweep"])
    html = (out / "report.html").read_text()
    assert "Dropout built" in html and "hidden standard p=0.5 x2" in html
    md = (out / "summary.md").read_text()
    rows = [line for line in md.splitlines() if "none |" in line]
    assert len(rows) == 1 and "0.5" not in rows[0]  # the p=0 configuration built nothing


@pytest.mark.parametrize("model, scheme, settings, expected", [
    ("mlp", "standard", {"p": 0.5}, {"hidden": "units, per example"}),
    ("mlp", "dropconnect", {"p": 0.5}, {"hidden": "weights, per batch"}),
    ("mlp", "dropconnect", {"p": 0.5, "per_example": True}, {"hidden": "weights, per example"}),
    ("lenet", "spatial", {"p": 0.1},
     {"conv": "channels, per example", "fc": "units (1x1 channels), per example"}),
    ("lenet", "dropblock", {"p": 0.1},
     {"conv": "blocks, per example", "fc": "units (1x1 maps), per example"}),
    ("vit", "standard", {"p_attn": 0.1}, {"attention": "attention weights, per example"}),
    ("lstm", "standard", {"p_input": 0.5}, {"input": "units, per example, per step"}),
    ("lstm", "locked", {"p_input": 0.5, "p_recurrent": 0.5, "p_embed": 0.1},
     {"input": "units, per example, per sequence", "embedding": "words, per batch, per sequence",
      "recurrent": "recurrent weights, per batch, per sequence"}),
    ("gru", "variational", {"p_recurrent": 0.5, "p_embed": 0.1},
     {"recurrent": "units of h_{t-1}, per example, per sequence",
      "embedding": "words, per example, per sequence"}),
    ("lstm", "gate", {"p_recurrent": 0.5, "mask": "per_step"},
     {"recurrent": "cell updates, per example, per step"}),
    ("lstm", "gate", {"p_recurrent": 0.5},
     {"recurrent": "cell updates, per example, per sequence"}),
])
def test_built_dropout_states_how_masks_are_shared(model, scheme, settings, expected):
    """The described mask sharing of each module class, as train.log and the report show it."""
    defaults = {k: 0.0 for k in RATES if k in get_scheme(scheme).keys}
    net = build_model(model_config(model), scheme_config(scheme, **{**defaults, **settings}),
                      fake_data(model))
    described = {e["place"]: f"{e['drops']}, {e['masks']}" for e in describe_dropout(net)}
    assert described == expected


def test_where_fc_keeps_only_the_fully_connected_places(compose):
    """where=fc overrides p_input and the conv entries of p (explicit or default rates)."""
    cfg = compose(["model=lenet", "dropout=standard", "dropout.where=fc", "dropout.p_input=0.2",
                   "dropout.p=[0.1,0.2,0.3,0.4]"])
    assert check_dropout(cfg.model, cfg.dropout) == {"input": [0.0], "conv": [0.0, 0.0],
                                                     "fc": [0.3, 0.4]}


def test_the_registry_refuses_factories_that_disagree_with_the_declarations():
    """registry.attach pairs a registered declaration with the factories its builder names; any
    mismatch is refused when the scheme is first built, never a scheme that serves less."""
    from dropbench import registry
    from dropbench.dropout.base import Factories
    from dropbench.dropout.catalog import Declaration, StandardParams, declaration
    from dropbench.dropout.registry import attach
    from dropbench.dropout.standard import BernoulliDropout

    unit = Factories(activation=lambda p, cfg: BernoulliDropout(p))
    weights = Factories(linear=lambda *a: None, conv=lambda *a: None)
    given = {"standard": unit, "dropconnect": weights, "none": Factories(),
             "only_unit": {"dropconnect": unit}, "extra": Factories(unit.activation,
                                                                     embedding=print)}

    def entry(name, builder_attr):
        return registry.Entry(name, declaration(name), f"{__name__}:GIVEN.{builder_attr}")

    globals()["GIVEN"] = SimpleNamespace(**given)
    assert attach(entry("standard", "standard")).factories is unit
    assert attach(entry("none", "none")).factories == Factories()
    dropconnect = attach(entry("dropconnect", "dropconnect"))
    assert dropconnect.serves(Place("fc", "p", "dense", layer=True))
    assert not dropconnect.serves(Place("input", "p_input", "dense"))
    with pytest.raises(DropbenchError, match="need the factories"):  # a declared kind unserved
        attach(entry("standard", "none"))
    with pytest.raises(DropbenchError, match="need the factories"):  # weights, not activations
        attach(entry("dropconnect", "only_unit"))
    with pytest.raises(DropbenchError, match="need the factories"):  # a factory for no kind
        attach(entry("standard", "extra"))
    with pytest.raises(DropbenchError, match="unknown place kinds"):
        registry.register_scheme(Declaration("extra", "drops somewhere", StandardParams,
                                             ("nowhere",)), "x:FACTORIES")
    assert "extra" not in registry.SCHEMES


def test_deviations_from_the_paper_follow_the_config():
    """DropConnect names its two departures from Wan et al. until the config asks for the
    paper's masks and inference; a scheme without departures names none."""
    from dropbench.dropout.catalog import declarations, scheme_config

    dropconnect = declarations()["dropconnect"]
    default = [str(d) for d in dropconnect.deviations_in(scheme_config("dropconnect"))]
    assert len(default) == 2 and "per_example=true" in default[0]
    paper = scheme_config("dropconnect", per_example=True, inference="gaussian")
    assert dropconnect.deviations_in(paper) == []
    assert declarations()["standard"].deviations_in(scheme_config("standard")) == []


def test_list_and_the_run_log_say_how_a_scheme_deviates(cli, tmp_path):
    listed = cli("list").stdout
    assert "deviates: one mask per mini-batch, where Wan et al. 2013 draw one per example" \
        in listed
    run = cli("train", "dropout=dropconnect", "dropout.per_example=true", "trainer.epochs=1",
              "trainer.progress=false", "hydra.run.dir=run")
    assert run.returncode == 0, run.stderr
    log = (tmp_path / "run" / "train.log").read_text()
    assert "dropout=dropconnect deviates from its paper: weight-scaling (mean) inference" in log
    assert "one mask per mini-batch" not in log  # per_example=true is the paper's masking
    # a scheme that builds nothing (every rate 0) deviates from nothing
    off = cli("train", "dropout=dropconnect", "dropout.p=0", "trainer.epochs=1",
              "trainer.progress=false", "hydra.run.dir=off")
    assert off.returncode == 0, off.stderr
    log = (tmp_path / "off" / "train.log").read_text()
    assert "dropout built: none" in log and "deviates" not in log
