"""Monte-Carlo dropout evaluation (Gal & Ghahramani 2016; Srivastava et al. 2014, fig. 11).

`eval.mode=scale` scores the deterministic eval-mode network (weight scaling). `eval.mode=mc`
averages the predictive distributions of T stochastic passes instead: every dropout module runs
as in training while normalisation layers keep their running statistics. `eval.compare=true`
adds both test scores, the MC predictive entropy, error vs. T and the calibration of both
predictives (NLL, Brier score, ECE, reliability bins; engine/calibration.py) to summary.json.
"""

import math
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

import dropbench.engine.calibration as calibration
from dropbench import rundir
from dropbench.errors import DropbenchError

CHUNK = 1024  # examples per evaluation forward pass (every eval loop uses it)


@contextmanager
def mc_mode(model: nn.Module):
    """Dropout on, everything else in eval mode; restores every module's mode afterwards.

    Any module whose behaviour depends on `.training` is treated as a dropout module, except
    normalisation layers (BatchNorm, InstanceNorm) and modules that already sample in eval mode
    (`samples_in_eval`, DropConnect's Gaussian inference)."""
    modes = [(m, m.training) for m in model.modules()]
    for m, _ in modes:
        m.training = not (isinstance(m, _NormBase) or getattr(m, "samples_in_eval", False))
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def mc_mean(model: nn.Module, x: torch.Tensor, samples: int, transform=None) -> torch.Tensor:
    """Mean of transform(model(x)) over `samples` stochastic passes (transform: identity by
    default; softmax gives the MC predictive distribution)."""
    transform = transform or (lambda out: out)
    with mc_mode(model):
        total = transform(model(x))
        for _ in range(samples - 1):
            total = total + transform(model(x))
    return total / samples


def classification_sums(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """probs (B, C) -> [sum NLL, correct, sum entropy, count] for one batch."""
    log_probs = probs.clamp_min(1e-12).log()
    nll = -log_probs.gather(1, y[:, None]).sum()
    entropy = -(probs * log_probs).sum()
    correct = (probs.argmax(1) == y).sum().float()
    return torch.stack([nll, correct, entropy, nll.new_tensor(float(len(y)))])


def finish_sums(sums: torch.Tensor) -> dict:
    nll, correct, entropy, n = sums.tolist()
    return {"loss": nll / n, "acc": correct / n, "error": 1 - correct / n, "entropy": entropy / n}


@torch.no_grad()
def classification_curve(model: nn.Module, split, counts) -> dict[int, dict]:
    """Scores of the MC average after T passes for every T in `counts`, from max(counts)
    passes in all: {T: {loss, acc, error, entropy}} (entropy: mean predictive entropy, nats)."""
    return curve_and_predictive(model, split, counts)[0]


@torch.no_grad()
def curve_and_predictive(model: nn.Module, split, counts, keep: int | None = None):
    """(classification_curve's scores, the log of the MC predictive after `keep` passes for
    the whole split, (N, C), or None without `keep`). The log predictive is accumulated with
    log-sum-exp, so probabilities too small for float32 keep a finite log (calibration.py)."""
    counts = sorted(set(counts) | ({keep} if keep else set()))
    sums = {t: torch.zeros(4, device=split.x.device) for t in counts}
    kept = []
    with mc_mode(model):
        for i in range(0, len(split), CHUNK):
            x, y = split.x[i : i + CHUNK], split.y[i : i + CHUNK]
            total = torch.zeros((), device=x.device)
            log_total = None
            for t in range(1, counts[-1] + 1):
                log_probs = F.log_softmax(model(x).float(), dim=-1)
                total = total + log_probs.exp()  # (B, C) running sum
                log_total = log_probs if log_total is None else torch.logaddexp(log_total,
                                                                                log_probs)
                if t in sums:
                    sums[t] += classification_sums(total / t, y)
                if t == keep:
                    kept.append(log_total - math.log(t))
    curve = {t: finish_sums(s) for t, s in sums.items()}
    return curve, (torch.cat(kept) if keep else None)


@torch.no_grad()
def scale_log_probs(model: nn.Module, split) -> torch.Tensor:
    """log-softmax of the deterministic eval-mode network on the whole split, (N, C)."""
    was_training = model.training
    model.eval()
    out = [F.log_softmax(model(split.x[i : i + CHUNK]).float(), dim=-1)
           for i in range(0, len(split), CHUNK)]
    model.train(was_training)
    return torch.cat(out)


@torch.no_grad()
def classification_scale(model: nn.Module, split) -> dict:
    """The same scores for the deterministic eval-mode network."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(4, device=split.x.device)
    for i in range(0, len(split), CHUNK):
        probs = F.softmax(model(split.x[i : i + CHUNK]), dim=-1)
        sums += classification_sums(probs, split.y[i : i + CHUNK])
    model.train(was_training)
    return finish_sums(sums)


def check_supported(eval_cfg, task) -> None:
    """Fail before training when MC evaluation is asked of a task that cannot do it."""
    if (eval_cfg.mode == "mc" or eval_cfg.compare) and not task.supports_mc:
        raise DropbenchError(f"eval.mode=mc and eval.compare=true are not implemented for "
                             f"{type(task).__name__}; use eval.mode=scale eval.compare=false")


def compare(model: nn.Module, test_split, eval_cfg) -> dict:
    """Scale vs. MC on the test split, the error-vs-T curve, and the calibration of both
    predictives (NLL, Brier, ECE and the reliability bins, engine/calibration.py)."""
    curve, mc_log_probs = curve_and_predictive(model, test_split,
                                               [*eval_cfg.curve, eval_cfg.mc_samples],
                                               keep=eval_cfg.mc_samples)
    y = test_split.y.cpu()

    def named(scores: dict) -> dict:
        return {rundir.test_key(k): v for k, v in scores.items()}

    return {
        "scale": named(classification_scale(model, test_split)),
        "mc": {"samples": eval_cfg.mc_samples, **named(curve[eval_cfg.mc_samples])},
        "curve": [{"samples": t, **named(s)} for t, s in curve.items()],
        "calibration": {
            "bins": calibration.BINS,
            "scale": calibration.scores(scale_log_probs(model, test_split).cpu(), y),
            "mc": {"samples": eval_cfg.mc_samples,
                   **calibration.scores(mc_log_probs.cpu(), y)},
        },
    }
