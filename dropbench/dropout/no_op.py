"""A named scheme that would build no dropout module is refused, so a run labelled `standard`
or `locked` never trains without dropout unnoticed (e.g. a preset's zero rates winning over the
scheme's own). Decided from the config and the declared places (plan.py), without torch.

Two ways to train without dropout stay open on purpose: `dropout=none`, and rates set to 0 on
the command line (`dropout.p=0`, as the zero point of a rate sweep): that zero was asked for.
"""

from hydra.core.override_parser.overrides_parser import OverridesParser

from dropbench.dropout.catalog import declaration, declarations
from dropbench.dropout.params import rate_keys
from dropbench.dropout.plan import check_dropout, model_places
from dropbench.errors import DropbenchError


def rates_on_command_line(overrides, params_type=None) -> set[str]:
    """The dropout rate keys (`p`, `p_input`, ...) that `overrides` set (Hydra's own parser):
    the rate fields of `params_type`, or of any registered scheme."""
    known = set(rate_keys(params_type)) if params_type else {
        key for d in declarations().values() for key in rate_keys(d.params)}
    keys = set()
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        group, _, key = override.key_or_group.partition(".")
        if group == "dropout" and key in known and not override.is_delete():
            keys.add(key)
    return keys


def refuse_no_op_scheme(model_cfg, dropout_cfg, overrides=()) -> None:
    """Raise when the chosen scheme (not `none`) would drop nothing anywhere in the model and
    no rate was set on the command line."""
    scheme = declaration(dropout_cfg.name)
    if not scheme.kinds:  # dropout=none: no dropout is what it says
        return
    planned = check_dropout(model_cfg, dropout_cfg)
    if any(p for rates in planned.values() for p in rates):
        return
    if rates_on_command_line(overrides, scheme.params):
        return
    served = [place for place in model_places(model_cfg)
              if place.count and scheme.serves(place) and place.key in dropout_cfg]
    keys = list(dict.fromkeys(place.key for place in served))
    zeros = ", ".join(f"dropout.{key}={dropout_cfg[key]}" for key in keys) or "no rate"
    hint = f"set a rate (e.g. dropout.{keys[0]}=0.5)" if keys else "pick another scheme"
    raise DropbenchError(
        f"dropout={scheme.name} builds no dropout module in model={model_cfg.name}: every rate "
        f"it uses is 0 ({zeros}); {hint}, or use dropout=none for a run without dropout (rates "
        f"set to 0 on the command line also run, labelled as no dropout)")
