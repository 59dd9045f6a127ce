"""The L2 penalty that makes a dropout network's training objective the variational bound of
Gal & Ghahramani 2016 ("Dropout as a Bayesian Approximation", section 4 and appendix; their
UCI code, DropoutUncertaintyExps, builds the same term into every layer).

With a prior of length-scale l on the weights, keep probability 1 - p on a layer's inputs, N
training points and Gaussian noise precision tau, each weight matrix W adds

    reg * sum(W**2),   reg = l**2 * (1 - p) / (2 * N * tau)

to the mean squared error of the batch (biases get no penalty). Its gradient is 2 * reg * W,
so in torch's terms it is `weight_decay = 2 * reg` on the weights only (Adam and SGD add
weight_decay * W to the gradient); dropbench adds the term to the loss instead, which is the
same update and leaves the optimiser's own optim.weight_decay to the user (it adds to this).

p is the rate of the dropout in front of each layer: dropout.p_input for the first layer,
dropout.p for the ones after a hidden layer (the protocol uses one rate for both).
"""

from torch import nn


def l2_strength(lengthscale: float, p: float, n_train: int, tau: float) -> float:
    """reg of reg * sum(W**2): the one place the prior's constants become a number."""
    return lengthscale ** 2 * (1.0 - p) / (2.0 * n_train * tau)


def weight_penalties(net: nn.Sequential, lengthscale: float, n_train: int,
                     tau: float) -> list[tuple[nn.Linear, float]]:
    """(layer, reg) for each nn.Linear of `net`, in order: p is the rate of the last dropout
    module before it (0 when none: a layer whose input is never dropped)."""
    pairs, p = [], 0.0
    for module in net:
        if getattr(module, "dropout_place", None) is not None:  # a built dropout module
            p = float(module.p)
        elif isinstance(module, nn.Identity):  # a rate of 0 builds nothing
            p = 0.0
        elif isinstance(module, nn.Linear):
            pairs.append((module, l2_strength(lengthscale, p, n_train, tau)))
            p = 0.0
    return pairs


def penalty(pairs: list[tuple[nn.Linear, float]]):
    """sum over layers of reg * sum(W**2): the term added to the training loss."""
    return sum(reg * layer.weight.pow(2).sum() for layer, reg in pairs)


def penalty_coefficients(model: nn.Module, pairs: list[tuple[nn.Linear, float]]) -> dict:
    """{name of the weight in model.named_parameters(): reg} of the same term as `penalty`."""
    names = {id(p): name for name, p in model.named_parameters()}
    return {names[id(layer.weight)]: reg for layer, reg in pairs}
