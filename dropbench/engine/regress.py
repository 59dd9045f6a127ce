"""Regression with a Gaussian likelihood (dataset=uci): the training loss is the mean squared
error on the standardised target; every score is on the original target scale.

Scores of a split (metrics.csv `<split>_loss`, `_rmse`, `_ll`): loss is the standardised MSE,
rmse the root mean squared error, ll the mean Gaussian log-likelihood of the targets under the
prediction with noise precision tau: -0.5 tau (y - f)^2 - 0.5 log(2 pi) + 0.5 log(tau).

The MC predictive scores (Gal & Ghahramani 2016, section 5.3), from T stochastic passes
f_1..f_T: MC RMSE is the RMSE of their mean, and the test log-likelihood of a point is
logsumexp_t(-0.5 tau (y - f_t)^2) - log T - 0.5 log(2 pi) + 0.5 log(tau) (the log of the mean of
the T Gaussians' densities), averaged over the points. The passes are run many at once: the
split's inputs repeated, so each copy draws its own dropout masks (per-example masks, as every
dense scheme draws them).
"""

import math

import torch

from dropbench import units
from dropbench.engine.batches import ExampleBatches
from dropbench.engine.mc import CHUNK, mc_mode

ROWS_PER_PASS_CHUNK = 65536  # rows of one batched forward: passes x split size
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_ll(sq_err_sum, n, tau: float):
    """Mean Gaussian log-likelihood of n points with this sum of squared errors."""
    return -0.5 * tau * sq_err_sum / n - HALF_LOG_2PI + 0.5 * math.log(tau)


def mc_log_likelihood(y: torch.Tensor, samples: torch.Tensor, tau: float) -> torch.Tensor:
    """Per point: log of the mean over the T rows of `samples` (T, N) of N(y; f_t, 1/tau),
    through logsumexp so that a large tau (y - f_t)^2 does not underflow to log(0)."""
    t = samples.shape[0]
    a = -0.5 * tau * (y[None, :] - samples) ** 2
    return torch.logsumexp(a, dim=0) - math.log(t) - HALF_LOG_2PI + 0.5 * math.log(tau)


class SquaredError:
    """The regression's one training objective, in the interface of engine/objectives.py: one
    pass per batch and no extra columns (the config refuses any other objective)."""

    passes = 1
    columns: tuple[str, ...] = ()


class RegressionTask(ExampleBatches):
    metric = "rmse"  # the headline metric (lower is better: dropbench/units.py)
    metrics = ("rmse", "ll")  # every metric column of metrics.csv and summary.json
    supports_mc = True
    # The protocol scores the network after its last epoch (no early stopping): the test
    # split is scored with the last epoch's weights, not the best validation epoch's.
    tests_last_epoch = True

    def __init__(self, data, batch_size: int, train_eval_size: int, mc_samples: int = 0):
        self.data = data
        self.batch_size = batch_size
        self.mc_samples = mc_samples
        self.train_eval = data.train.head(train_eval_size)
        self.scale, self.shift, self.tau = data.y_std, data.y_mean, data.tau
        self.objective = SquaredError()

    def original(self, y: torch.Tensor) -> torch.Tensor:
        """Standardised targets or predictions back on the original scale (float64)."""
        return y.double() * self.scale + self.shift

    def step(self, model, batch):
        x, y = batch
        return self.score_outputs(model(x), y)

    @staticmethod
    def score_outputs(out: torch.Tensor, y: torch.Tensor):
        """The step's (loss, sums) from the model's outputs (B, 1) and targets (B,). Written
        for leading member dims too: a stack of K models passes outputs (K, B, 1) and gets
        each member's own (K,) losses and (K, 3) sums, without running the step under vmap."""
        err = out.squeeze(-1) - y
        loss = err.pow(2).mean(-1)  # the mean over the batch, as Keras' MSE
        n = torch.full_like(loss, y.shape[-1], dtype=torch.float32)
        # standardised: the sums hold nothing of this task's target scale, so one step serves
        # members of a stack that standardise with different rows (finish converts)
        sq_err = err.detach().pow(2).sum(-1)
        return loss, torch.stack([loss.detach() * n, sq_err.float(), n], dim=-1)

    train_step = step  # one pass: the training step is the step

    def finish(self, sums: torch.Tensor) -> dict:
        """Scores from step's sums, on this task's original target scale."""
        loss_sum, sq_err_std, n = sums.tolist()
        sq_err = sq_err_std * self.scale ** 2
        return {"loss": loss_sum / n, "rmse": math.sqrt(sq_err / n),
                "ll": gaussian_ll(sq_err, n, self.tau)}

    def split(self, name: str):
        return self.train_eval if name == "train_eval" else getattr(self.data, name)

    @torch.no_grad()
    def evaluate(self, model, split: str) -> dict:
        """loss, rmse and ll of one deterministic pass (eval.mode=scale), or of the MC
        predictive of mc_samples passes (eval.mode=mc: loss and rmse of their mean)."""
        data = self.split(split)
        if self.mc_samples:
            return self.mc_scores(model, data, [self.mc_samples])[self.mc_samples]
        return self.scale_scores(model, data)

    @torch.no_grad()
    def scale_scores(self, model, data) -> dict:
        """The deterministic eval-mode network (weight scaling) on a split."""
        was_training = model.training
        model.eval()
        sums = torch.zeros(3, device=data.x.device)
        for i in range(0, len(data), CHUNK):
            sums += self.step(model, (data.x[i : i + CHUNK], data.y[i : i + CHUNK]))[1]
        model.train(was_training)
        return self.finish(sums)

    @torch.no_grad()
    def mc_scores(self, model, data, counts) -> dict[int, dict]:
        """{T: {loss, rmse, ll, rmse_one_pass}} of the MC predictive after T passes, for every
        T in `counts`, from max(counts) passes in all, run many per forward."""
        counts = sorted(set(counts))
        n = len(data)
        y = self.original(data.y)
        total = torch.zeros(n, dtype=torch.float64, device=data.x.device)
        lse = torch.full((n,), -math.inf, dtype=torch.float64, device=data.x.device)
        per_chunk = max(1, ROWS_PER_PASS_CHUNK // max(n, 1))
        done, scores, first = 0, {}, None
        with mc_mode(model):
            for target in counts:
                while done < target:
                    s = min(per_chunk, target - done)
                    out = model(data.x.repeat(s, 1)).reshape(s, n)  # (s, n): s passes
                    f = self.original(out)
                    if first is None:
                        first = f[0]
                    total += f.sum(0)
                    a = -0.5 * self.tau * (y[None, :] - f) ** 2
                    lse = torch.logaddexp(lse, torch.logsumexp(a, dim=0))
                    done += s
                mean = total / done
                ll = lse - math.log(done) - HALF_LOG_2PI + 0.5 * math.log(self.tau)
                mse_std = ((mean - y) ** 2).mean().item() / self.scale ** 2
                scores[target] = {
                    "loss": mse_std,
                    "rmse": ((mean - y) ** 2).mean().sqrt().item(),
                    "ll": ll.mean().item(),
                    "rmse_one_pass": ((first - y) ** 2).mean().sqrt().item(),
                }
        return scores

    def final_scores(self, model, eval_cfg) -> dict:
        """summary.json's MC test scores (T = eval.mc_samples), next to the weight-scaled
        network's test_rmse and test_ll."""
        t = eval_cfg.mc_samples
        s = self.mc_scores(model, self.data.test, [t])[t]
        scores = {"mc_samples": t, "test_mc_rmse": s["rmse"], "test_mc_ll": s["ll"],
                  "test_one_pass_rmse": s["rmse_one_pass"], "val_is": self.data.val_is}
        if self.data.val_is == "validation":  # what the protocol chooses (p, tau) by
            v = self.mc_scores(model, self.data.val, [t])[t]
            scores.update(val_mc_rmse=v["rmse"], val_mc_ll=v["ll"])
        return scores

    def describe_final(self, scores: dict) -> str:
        """The MC scores after the weight-scaled ones the log line gives first: the numbers
        the paper reports."""
        return (f" (weight scaling); MC dropout (T={scores['mc_samples']}): test rmse "
                f"{units.shown('rmse', scores['test_mc_rmse'])}, test ll "
                f"{units.shown('ll', scores['test_mc_ll'])}")

    def compare(self, model, eval_cfg) -> dict:
        """Weight scaling vs. MC on the test split, and MC's scores vs. T (eval.compare)."""
        test = self.data.test
        curve = self.mc_scores(model, test, [*eval_cfg.curve, eval_cfg.mc_samples])

        def named(scores: dict) -> dict:
            return {f"test_{k}": v for k, v in scores.items()}

        return {
            "scale": named(self.scale_scores(model, test)),
            "mc": {"samples": eval_cfg.mc_samples, **named(curve[eval_cfg.mc_samples])},
            "curve": [{"samples": t, **named(s)} for t, s in curve.items()],
        }
