"""Calibration of a classifier's predicted probabilities: NLL, Brier score, expected
calibration error (ECE) and the per-bin table a reliability diagram draws.

Every function takes log-probabilities `log_probs` (N, K) and integer labels `y` (N,), so the
NLL stays finite where a probability underflows to 0 in float32 (a confident wrong softmax
gives p = 1e-50, whose log is -115, not -inf).

Conventions:
- Brier score: mean over examples of the sum over the K classes of (p_c - onehot_c)^2, as
  Brier 1950 defines it and most deep-learning papers use it; it lies in [0, 2]. Some papers
  divide by K; multiply ours by 1/K to compare with them.
- ECE (Guo et al. 2017, eq. 3): the confidence is the largest predicted probability; the
  examples fall into BINS equal-width bins (0, 1/B], (1/B, 2/B], ..., ((B-1)/B, 1], each closed
  on the right, so a confidence exactly on an edge k/B belongs to the lower bin k. A
  confidence of exactly 0 cannot occur (the largest of K probabilities is >= 1/K) but would
  go to the first bin. ECE = sum over bins of |B_b|/n * |acc(B_b) - conf(B_b)|.
"""

import torch

BINS = 15  # Guo et al. 2017


def nll(log_probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean negative log-probability of the true class (nats)."""
    return float(-log_probs.gather(1, y[:, None]).double().mean())


def brier(log_probs: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over examples of sum_c (p_c - onehot_c)^2 (summed over classes, not divided by K)."""
    probs = log_probs.double().exp()
    onehot = torch.zeros_like(probs).scatter_(1, y[:, None], 1.0)
    return float(((probs - onehot) ** 2).sum(1).mean())


def entropy(log_probs: torch.Tensor) -> float:
    """Mean predictive entropy, nats (0 * log 0 counted as 0)."""
    lp = log_probs.double()
    return float(-(lp.exp() * lp.nan_to_num(neginf=0.0)).sum(1).mean())


def bin_index(confidence: torch.Tensor, bins: int = BINS) -> torch.Tensor:
    """The bin of each confidence: bin b holds (b/bins, (b+1)/bins]; 0 goes to bin 0."""
    return (torch.ceil(confidence.double() * bins).long() - 1).clamp(0, bins - 1)


def reliability(log_probs: torch.Tensor, y: torch.Tensor, bins: int = BINS) -> list[dict]:
    """One record per bin: its edges `lower`, `upper`, `count`, and for a non-empty bin the mean
    confidence `confidence` and the accuracy `accuracy` (None for an empty bin)."""
    confidence, predicted = log_probs.double().exp().max(1)
    which = bin_index(confidence, bins)
    correct = (predicted == y).double()
    counts = torch.bincount(which, minlength=bins)
    conf_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, confidence)
    correct_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, which, correct)
    table = []
    for b in range(bins):
        n = int(counts[b])
        table.append({"lower": b / bins, "upper": (b + 1) / bins, "count": n,
                      "confidence": float(conf_sum[b] / n) if n else None,
                      "accuracy": float(correct_sum[b] / n) if n else None})
    return table


def ece_of(table: list[dict]) -> float:
    """Expected calibration error from a reliability table (empty bins weigh nothing)."""
    total = sum(row["count"] for row in table)
    return sum(row["count"] / total * abs(row["accuracy"] - row["confidence"])
               for row in table if row["count"])


def ece(log_probs: torch.Tensor, y: torch.Tensor, bins: int = BINS) -> float:
    return ece_of(reliability(log_probs, y, bins))


def scores(log_probs: torch.Tensor, y: torch.Tensor, bins: int = BINS) -> dict:
    """Everything summary.json records for one set of predictions."""
    table = reliability(log_probs, y, bins)
    accuracy = float((log_probs.argmax(1) == y).double().mean())
    return {"acc": accuracy, "nll": nll(log_probs, y), "brier": brier(log_probs, y),
            "ece": ece_of(table), "entropy": entropy(log_probs), "bins": table}
