"""The config groups a user chooses options from, in the order `dropbench list` and
`dropbench train --help` show them."""

GROUPS = ["dataset", "model", "dropout", "optim", "trainer", "objective", "logger", "experiment",
          "hydra/launcher", "hydra/sweeper"]
