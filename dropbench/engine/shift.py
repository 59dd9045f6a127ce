"""Dataset shift by rotation: score a trained classifier on its test images rotated by a range
of angles, by weight scaling and by MC dropout (the shape of Gal & Ghahramani 2016, fig. 4,
which rotates a single digit; here the whole test split turns).

`load_run(run_dir)` rebuilds a finished run's model (its resolved config and best
checkpoint) with the data it was trained on; `rotate` turns images; `shift_rows` gives one
row of calibration scores per (angle, prediction method).
"""

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

import dropbench.engine.calibration as calibration
from dropbench import rundir
from dropbench.data import load_data
from dropbench.engine.io import load_checkpoint
from dropbench.engine.mc import CHUNK, curve_and_predictive, scale_log_probs
from dropbench.errors import DropbenchError
from dropbench.models import build_model


def rotate(x: torch.Tensor, degrees: float, background: float = 0.0) -> torch.Tensor:
    """Images (N, C, H, W) turned anticlockwise by `degrees` about their centre, bilinear;
    pixels that come from outside the image take the value `background` (for normalised
    MNIST: the normalised value of a black pixel)."""
    if x.dim() != 4:
        raise DropbenchError(f"rotate needs images (N, C, H, W), got shape {tuple(x.shape)}; "
                             f"rotation applies to image datasets only")
    a = math.radians(degrees)
    # affine_grid maps output to input coordinates: the inverse (clockwise) rotation
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0],
                          [math.sin(a), math.cos(a), 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(theta.expand(len(x), 2, 3), list(x.shape), align_corners=False)
    turned = F.grid_sample(x - background, grid, mode="bilinear", padding_mode="zeros",
                           align_corners=False)
    return turned + background


class RotatedSplit:
    """A split whose images are rotated; what the MC helpers need (x, y, len)."""

    def __init__(self, split, degrees: float, background: float):
        self.x = torch.cat([rotate(split.x[i : i + CHUNK], degrees, background)
                            for i in range(0, len(split), CHUNK)])
        self.y = split.y

    def __len__(self) -> int:
        return len(self.y)


def load_run(run_dir: Path, data=None):
    """(resolved config, model with the best checkpoint's weights on the CPU, data) of a
    completed classification run dir."""
    run_dir = Path(run_dir)
    config, best = run_dir / rundir.CONFIG, run_dir / rundir.BEST
    if not config.is_file() or not best.is_file():
        raise DropbenchError(f"{run_dir} is not a finished run dir (it needs {rundir.CONFIG} "
                             f"and {rundir.BEST}); train it with `dropbench train` first")
    cfg = OmegaConf.load(config)
    if data is None:
        data = load_data(cfg.dataset, cfg.data_dir, torch.device("cpu"))
    if data.task != "classify":
        raise DropbenchError(f"{run_dir} trains a {data.task} model; the rotation study "
                             f"needs an image classifier")
    model = build_model(cfg.model, cfg.dropout, data)
    model.load_state_dict(load_checkpoint(best)["model"])
    return cfg, model.eval(), data


def shift_rows(model, test_split, angles, samples: int, mc: bool) -> list[dict]:
    """For each angle: the weight-scaled network's scores (`method` "scale") and, with `mc`,
    the MC predictive's of `samples` passes ("mc"): acc, nll, brier, ece, entropy."""
    background = float(test_split.x.min())  # black: MNIST's border pixels
    rows = []
    for degrees in angles:
        split = RotatedSplit(test_split, degrees, background)
        y = split.y.cpu()
        preds = {"scale": scale_log_probs(model, split).cpu()}
        if mc:
            preds["mc"] = curve_and_predictive(model, split, [samples], keep=samples)[1].cpu()
        for method, log_probs in preds.items():
            scores = calibration.scores(log_probs, y)
            scores.pop("bins")
            rows.append({"angle": degrees, "method": method,
                         "samples": samples if method == "mc" else 1, **scores})
    return rows
