"""From a model's declared places and the composed dropout config to one rate per place.

`plan_rates` is the single place where rates are read and checked: config validation calls it
before any data loads, and the model builders call it again for the rates they build with, so
what is validated is what is built. It fails with one line when the scheme gets a key it does
not use, a rate lands on a place the model lacks, or a nonzero rate lands on a place the scheme
cannot serve. It reads the registered declarations only (dropbench.registry), so validation runs
before torch is imported.
"""

from dropbench import registry
from dropbench.dropout.catalog import Declaration, declaration, declarations
from dropbench.dropout.params import (
    Place,
    check_params,
    is_list,
    layer_rates,
    rate_keys,
    rate_spread,
)
from dropbench.errors import DropbenchError


def _nonzero(value) -> bool:
    return any(float(v) != 0 for v in (value if is_list(value) else [value]))


def _expand(cfg, key: str, group: list[Place], model: str, spread: str) -> list[float]:
    total = sum(place.count for place in group)
    if key not in cfg:  # the scheme has no such key, so it never drops there
        return [0.0] * total
    if total == 0 and _nonzero(cfg[key]):  # the rate would reach no layer at all
        sized_by = ", ".join(dict.fromkeys(f"model.{p.sized_by}" for p in group if p.sized_by))
        why = f" ({sized_by} gives it none)" if sized_by else ""
        raise DropbenchError(
            f"model={model} has no {' or '.join(p.role for p in group)} place for "
            f"dropout.{key}={cfg[key]}{why}; set dropout.{key}=0, or give the model such "
            f"layers")
    return layer_rates(cfg[key], total, f"dropout.{key}", spread)


def _only_fc(places: list[Place], rates: dict) -> None:
    """dropout.where=fc asks for dropout in the fully connected layers only: the conv places (a
    CNN's input and conv layers) get rate 0 whatever p_input and p say for them (the model's
    default per-place rates included); train.log's built-dropout lines show the result."""
    for place in places:
        if place.kind == "conv":
            rates[place.role] = [0.0] * place.count


def _check_fc_left(model: str, places: list[Place], cfg) -> None:
    """With dropout.where=fc, dropout.p must still reach a fully connected layer."""
    fc = [place for place in places if place.key == "p" and place.kind != "conv"]
    if "p" in cfg and _nonzero(cfg.p) and not any(place.count for place in fc):
        raise DropbenchError(
            f"dropout.where=fc puts dropout.p={cfg.p} on fully connected layers only, and "
            f"model={model} has none (model.hidden is empty); set dropout.where=all, "
            f"dropout.p=0, or give model.hidden widths")


def plan_rates(model: str, places: list[Place], cfg) -> dict[str, list[float]]:
    """{place role: [rate per instance]} for `model` (its name, for messages)."""
    scheme = declaration(cfg.name)
    check_params(cfg, scheme.params, scheme.name)
    if not scheme.scheduled and cfg.get("schedule", "constant") != "constant":
        raise DropbenchError(f"dropout={scheme.name} learns its rates, so no "
                             f"dropout.schedule={cfg.schedule} can set them; use "
                             f"dropout.schedule=constant or another scheme")
    groups: dict[str, list[Place]] = {}
    for place in places:
        groups.setdefault(place.key, []).append(place)
    for key in rate_keys(scheme.params):
        if key in cfg and key not in groups and _nonzero(cfg[key]):
            raise DropbenchError(
                f"model={model} has no place for dropout.{key}={cfg[key]} (its places: "
                f"{', '.join(map(str, places))}); set dropout.{key}=0")
    rates = {}
    for key, group in groups.items():
        values = _expand(cfg, key, group, model, rate_spread(scheme.params, key))
        for place in group:
            rates[place.role], values = values[:place.count], values[place.count:]
    if cfg.get("where", "all") == "fc":
        _check_fc_left(model, places, cfg)
        _only_fc(places, rates)
    for place in places:
        for p in rates[place.role]:
            if p:
                require(scheme, place, p, model)
    return rates


def schemes_serving(place: Place) -> list[str]:
    return sorted(name for name, d in declarations().items() if d.serves(place))


def require(scheme: Declaration, place: Place, p: float, model: str | None = None) -> None:
    """Raise unless `scheme` can drop at `place` (of `model`, named when given); the one
    message for every mismatch."""
    if scheme.serves(place):
        return
    others = ", ".join(schemes_serving(place)) or "none"
    if not scheme.kinds:
        raise DropbenchError(
            f"dropout={scheme.name} drops nothing, but dropout.{place.key}={p}; set "
            f"dropout.{place.key}=0 or pick a scheme that serves the {place.role} place: {others}")
    what = "a weight layer" if place.kind in ("dense", "conv") and place.kind in scheme.kinds \
        else f"{place.kind} places"
    of_model = f" of model={model}" if model else ""
    raise DropbenchError(
        f"dropout={scheme.name} cannot drop the {place.role} place (dropout.{place.key}={p})"
        f"{of_model}: it serves {', '.join(scheme.kinds) or 'no place'}, not {what}; schemes "
        f"that can: {others}; or set dropout.{place.key}=0"
    )


def model_places(model_cfg) -> list[Place]:
    """The places the registered model family `model_cfg.name` declares."""
    return registry.MODELS.get(model_cfg.name, "model").declaration.places(model_cfg)


def check_dropout(model_cfg, dropout_cfg) -> dict[str, list[float]]:
    """Every dropout rate lands on a place the model has and the scheme serves (config
    validation calls this before any data loads). Returns {place role: rates}."""
    return plan_rates(model_cfg.name, model_places(model_cfg), dropout_cfg)
