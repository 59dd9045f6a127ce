"""Batched sweeps: `hydra/launcher=batched` trains compatible jobs of a sweep as one stacked
model, each member in its own run dir (see docs/batched.md)."""
