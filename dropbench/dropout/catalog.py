"""What a dropout scheme declares, without torch: its name, a description, its params
dataclass (one Hydra structured config per scheme) and the place kinds it serves; and the
built-in schemes, registered in dropbench.registry.SCHEMES like any plugin's.

This is what `dropbench list` prints and what config validation checks (plan.py), so neither
has to import torch. Each registration names the scheme's builder: the FACTORIES dict of its
scheme module (standard.py, dropconnect.py, ...), which dropout/registry.py loads when a model
is built and checks against the declared kinds.

`through_weights`: the scheme serves its dense and conv kinds by dropping the weights of the
layer the model builds at a place (DropConnect, through `linear`/`conv` factories), so it serves
only places where the model builds a layer there (Place.layer), never an input.
"""

from dataclasses import dataclass, fields
from typing import Any

from dropbench import registry
from dropbench.dropout.params import (
    SHARED_KEYS,
    AnyUnitRates,
    ConvUnitRates,
    DropoutParams,
    Place,
    RecurrentRates,
    UnitRates,
    above,
    at_least,
    choice,
    cnn_layers,
    declared,
    depth_rates,
    option,
    rates,
)

WEIGHT_KINDS = ("dense", "conv")  # the kinds a scheme may serve through a layer's weights


@dataclass(frozen=True)
class Deviation:
    """How a scheme departs from the paper it is named after. `faithful`: settings (key,
    value) under which it does what the paper does; empty when no setting does."""

    text: str
    faithful: tuple[tuple[str, Any], ...] = ()

    def applies(self, cfg) -> bool:
        return not self.faithful or any(cfg.get(k) != v for k, v in self.faithful)

    def __str__(self) -> str:
        fix = " ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}"
                       for k, v in self.faithful)
        return f"{self.text} (as the paper with dropout.{fix})" if fix else self.text


@dataclass(frozen=True)
class Declaration:
    name: str
    description: str
    params: type  # the dataclass of its config (a DropoutParams subclass)
    kinds: tuple[str, ...] = ()  # the place kinds it serves (registry.PLACE_KINDS)
    through_weights: bool = False  # dense/conv served by dropping the built layer's weights
    deviations: tuple[Deviation, ...] = ()  # from the paper it is named after
    scheduled: bool = True  # its modules' rates may follow dropout.schedule (fixed, not learned)

    def __post_init__(self):  # the kinds are checked against the registry when registered
        if not (isinstance(self.params, type) and issubclass(self.params, DropoutParams)):
            raise registry.PluginError(f"dropout scheme {self.name!r}: params must be a "
                                       f"DropoutParams dataclass, got {self.params!r}")
        object.__setattr__(self, "kinds", tuple(self.kinds))

    def serves(self, place: Place) -> bool:
        if place.kind not in self.kinds:
            return False
        if self.through_weights and place.kind in WEIGHT_KINDS:
            return place.layer  # weights to drop only where the model builds a layer
        return True

    @property
    def keys(self) -> list[str]:
        """The scheme's own keys; every scheme also has SHARED_KEYS (the rate schedule)."""
        return [f.name for f in declared(self.params) if f.name not in SHARED_KEYS]

    def deviations_in(self, cfg) -> list[Deviation]:
        """The deviations that hold for the dropout config `cfg` (a run's `dropout` node)."""
        return [d for d in self.deviations if d.applies(cfg)]

    def summary(self, yaml_values: dict) -> str:
        """`key=value ...` for every declared key: the yaml's value, else the declared default
        (`dropbench list`)."""
        defaults = {f.name: f.default for f in fields(self.params)}
        shown = []
        for key in self.keys:
            value = yaml_values.get(key, defaults[key])
            shown.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
        return " ".join(shown)


# --- each scheme's parameters (params.py: the shared bases and field helpers) ---------------
@dataclass
class NoneParams(RecurrentRates):
    """`none` keeps every rate key (all 0) so sweeps can set them; a nonzero rate is refused."""


@dataclass
class StandardParams(AnyUnitRates):
    p_attn: Any = rates(0.0, "Transformers: the attention probabilities, a number or one rate "
                        "per block")


@dataclass
class ClassicParams(AnyUnitRates):
    pass


@dataclass
class GaussianParams(AnyUnitRates):
    pass


INFERENCE = ("mean", "gaussian")  # DropConnect at test time


@dataclass
class DropConnectParams(DropoutParams):
    p: Any = rates(0.5, "weights of the hidden layers: a number or one rate per layer")
    where: str = cnn_layers()
    per_example: bool = option(False, "a fresh mask per example (costly) instead of per batch")
    mask_bias: bool = option(True, "mask the biases too, as Wan et al.; false: weights only")
    inference: str = choice("mean", INFERENCE, "at test: mean (weight scaling) or gaussian "
                            "(moment-matched sampling, needs eval.mode=mc)")


@dataclass
class AlphaParams(UnitRates):
    pass


@dataclass
class ConcreteParams(UnitRates):
    temperature: float = above(0.1, 0.0, "relaxed Bernoulli temperature")
    length_scale: float = at_least(1e-2, 0.0, "prior length-scale l of the weight penalty")
    dropout_reg: float = at_least(1.0, 0.0, "multiplier of the rate (entropy) penalty")


@dataclass
class SpatialParams(ConvUnitRates):
    pass


@dataclass
class DropBlockParams(ConvUnitRates):
    block_size: int = at_least(7, 1, "side of the dropped squares")
    ramp_epochs: int = at_least(0, 0, "raise p linearly from 0 over this many epochs; 0 = off")


@dataclass
class VariationalParams(RecurrentRates):
    pass


@dataclass
class LockedParams(RecurrentRates):
    pass


@dataclass
class WeightDropParams(RecurrentRates):
    pass


GATE_MASKS = ("per_sequence", "per_step")


@dataclass
class GateParams(RecurrentRates):
    compile: bool = option(False, "torch.compile the recurrent step function")
    mask: str = choice("per_sequence", GATE_MASKS, "the update mask: one per sequence (BPTT "
                       "window) or a fresh one per time step")


@dataclass
class DropPathParams(DropoutParams):
    p_branch: Any = depth_rates(0.1, "residual branches: the last block's rate, rising linearly "
                                "from 0 at the first (one number), or one rate per block")


# --- the declarations -----------------------------------------------------------------------
UNITS = ("dense", "conv", "sequence")
TRANSFORMER = ("token", "attention")  # the Transformers' kinds (models/places.py)
LANGUAGE_MODEL = ("sequence", "recurrent", "embedding")

BUILT_IN = (
    Declaration("none", "no dropout anywhere (the baseline)", NoneParams),
    Declaration("standard", "inverted Bernoulli dropout: drop units with probability p, scale "
                "survivors by 1/(1-p)", StandardParams, UNITS + TRANSFORMER),
    Declaration("classic", "original dropout: Bernoulli mask without rescaling in training, "
                "outputs x(1-p) at test", ClassicParams, UNITS),
    Declaration("gaussian", "multiplicative Gaussian noise N(1, p/(1-p)) on units; identity at "
                "test", GaussianParams, UNITS),
    Declaration("dropconnect", "drop weights, not units: Bernoulli mask on Linear/Conv2d "
                "weights (per batch or example)", DropConnectParams, ("dense", "conv"),
                through_weights=True, deviations=(
                    Deviation("one mask per mini-batch, where Wan et al. 2013 draw one per "
                              "example", (("per_example", True),)),
                    Deviation("weight-scaling (mean) inference, where Wan et al. 2013 sample "
                              "a moment-matched Gaussian", (("inference", "gaussian"),)))),
    Declaration("alpha", "alpha dropout for SELU nets: dropped units set to -lambda*alpha, "
                "affine fix of mean/var", AlphaParams, ("dense",)),
    Declaration("concrete", "learned drop rate per layer via a relaxed Bernoulli mask, KL "
                "penalty scaled by 1/N", ConcreteParams, ("dense",), scheduled=False),
    Declaration("spatial", "spatial dropout: drop whole feature maps (channels) with "
                "probability p (Tompson et al. 2015); on fully connected layers a channel is "
                "one unit", SpatialParams, ("conv", "dense")),
    Declaration("dropblock", "DropBlock: drop block_size x block_size squares of each feature "
                "map, p ramped up from 0 (Ghiasi et al. 2018)", DropBlockParams,
                ("conv", "dense")),
    Declaration("variational", "Gal & Ghahramani 2016: per-example masks drawn once per "
                "sequence (BPTT window) on words, layer inputs, outputs and h_{t-1} (tied "
                "across gates); loops over time in training", VariationalParams, LANGUAGE_MODEL,
                deviations=(Deviation("one h_{t-1} mask shared by the gates (tied); the "
                                      "paper also reports untied masks, one per gate, which "
                                      "are not implemented"),)),
    Declaration("locked", "AWD-LSTM style: locked masks (one per sequence, shared across time) "
                "on layer inputs and outputs, plus weight-drop on weight_hh with "
                "dropout.p_recurrent (fused kernel)", LockedParams, LANGUAGE_MODEL),
    Declaration("weight_drop", "DropConnect on the LSTM/GRU hidden-to-hidden weights "
                "(dropout.p_recurrent), one mask per window; ordinary dropout at the other "
                "places", WeightDropParams, LANGUAGE_MODEL),
    Declaration("gate", "recurrent dropout without memory loss (Semeniuta et al. 2016): "
                "dropout.p_recurrent on the cell update inside the step (not fused: slower); "
                "ordinary dropout elsewhere", GateParams, LANGUAGE_MODEL),
    Declaration("droppath", "stochastic depth / DropPath (Huang et al. 2016): drop a residual "
                "branch whole per example, keeping the skip path; rate rising with depth to "
                "dropout.p_branch", DropPathParams, ("branch",), deviations=(
                    Deviation("kept branches scaled by 1/(1-p) in training, where Huang et al. "
                              "2016 scale each branch by its survival probability at test: the "
                              "same expectation, and evaluation is the identity as for every "
                              "inverted scheme here"),
                    Deviation("rates rise from 0 at the first block to p at the last (timm's "
                              "drop_path_rate), where Huang et al. give block l of L the rate "
                              "p l / L"))),
)
BUILDER_MODULE = {"none": "base"}  # the rest are built by dropout/<name>.py


def register() -> None:
    for decl in BUILT_IN:
        registry.register_scheme(
            decl, f"dropbench.dropout.{BUILDER_MODULE.get(decl.name, decl.name)}:FACTORIES")


def scheme(name: str, description: str, kinds=(), *, builder: str, **declared):
    """Register a scheme from its params dataclass (a decorator; register_scheme otherwise):

        @scheme("curriculum", "rate grows during training", ("dense",),
                builder="my_pkg.curriculum:FACTORIES")
        @dataclass
        class CurriculumParams(UnitRates): ...
    """
    def wrap(params: type) -> type:
        registry.register_scheme(Declaration(name, description, params, tuple(kinds),
                                             **declared), builder)
        return params
    return wrap


# --- lookups and messages -------------------------------------------------------------------
def declarations() -> dict[str, Declaration]:
    """Every registered scheme (built-in and plugin) by name."""
    return {entry.name: entry.declaration for entry in registry.SCHEMES.entries()}


def declaration(name: str) -> Declaration:
    return registry.SCHEMES.get(name).declaration  # the one unknown-scheme message


def foreign_key_message(key: str, params_type: str, source: str | None) -> str | None:
    """One line for a key the chosen scheme does not declare (a Hydra compose error), or None
    when `params_type` is no scheme's params class."""
    declared = declarations()
    chosen = next((d for d in declared.values() if d.params.__name__ == params_type), None)
    if chosen is None:
        return None
    owners = sorted(name for name, d in declared.items() if key in d.keys)
    where = f" (set in {source})" if source and not source.startswith("dropout/") else ""
    hint = f"; {key} is a key of {', '.join(owners)}" if owners else ""
    return (f"dropout={chosen.name} has no key '{key}'{where}; its keys: "
            f"{', '.join(chosen.keys)}{hint}")


def scheme_config(name: str, **values):
    """A typed dropout config for scheme `name`: its dataclass defaults, then `values`. For code
    that builds models without composing a Hydra config (tests, benchmark scripts)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(declaration(name).params)
    return OmegaConf.merge(cfg, {"name": name, **values})
