"""What dropout a built model has, read back from its modules.

Every module the registry hands out for a nonzero rate carries `dropout_scheme` and
`dropout_place`; the module itself says how its masks are shared through two attributes:
    mask_examples  "per example" (each example its own mask) or "per batch" (one mask for all)
    mask_steps     "per step" (a fresh mask at every time step) or "per sequence" (one mask
                   for a whole BPTT window); only stated at sequence and recurrent places
and `drops`, what one mask element removes (units, channels, blocks, weights, words, ...),
`drops_at` ({place kind: what it removes there} where a place kind changes that), and `p`, its
rate (concrete dropout: the current learned rate).
"""

import torch
from torch import nn

TIME_KINDS = ("sequence", "recurrent", "embedding")


def describe_dropout(model: nn.Module) -> list[dict]:
    """One entry per dropout module of `model`, in module order."""
    built = []
    for name, module in model.named_modules():
        place = getattr(module, "dropout_place", None)
        if place is None:
            continue
        rate = module.p.detach() if isinstance(module.p, torch.Tensor) else module.p
        entry = {"module": name, "place": place.role, "key": place.key, "kind": place.kind,
                 "scheme": module.dropout_scheme, "rate": round(float(rate), 6),
                 "drops": getattr(module, "drops_at", {}).get(
                     place.kind, getattr(module, "drops", "units")),
                 "masks": getattr(module, "mask_examples", "per example")}
        if place.kind in TIME_KINDS:
            entry["masks"] += ", " + getattr(module, "mask_steps", "per step")
        built.append(entry)
    return built


def format_built(built: list[dict]) -> list[str]:
    """train.log lines, one per dropout module."""
    if not built:
        return ["dropout built: none (every rate is 0)"]
    width = max(len(e["module"]) for e in built)
    return [f"dropout built: {e['module']:<{width}}  {e['place']:<10} {e['scheme']:<12} "
            f"p={e['rate']:<6g} {e['drops']}, masks {e['masks']}" for e in built]

