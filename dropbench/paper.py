"""The published results a paper preset is compared with (conf/paper/<preset>.yaml), as a typed
schema: Hydra checks each file against it when a config is composed.

A preset names one row per dropout scheme it can run. The report (report/tables.py) compares a
run with a row only when the run's dataset and model match what the paper used (`dataset`,
`model`: the keys that define them), the run kept the preset's own protocol (`protocol`: its
epochs, its validation split) and the run's scheme has a row; every other run of the preset is
listed as not comparable, with the reason.
"""

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class PaperRow:
    table: str = MISSING  # where in the paper, e.g. 'Table 1, "Medium regularized LSTM"'
    metric: str = MISSING  # the run's column it compares: test_ppl, test_error (in percent), ...
    value: float = MISSING  # the paper's number, in the unit the paper quotes
    val_ppl: float | None = None  # language models: the paper's validation perplexity
    ref: str | None = None  # a row from another paper than the preset's (its `ref`)


@dataclass
class PaperConfig:
    ref: str = MISSING  # the paper, as it is cited
    dataset: dict[str, Any] = field(default_factory=dict)  # dataset keys the paper's data has
    model: dict[str, Any] = field(default_factory=dict)  # model keys of the paper's network
    # keys of the preset's own protocol, nested as in the config (its epochs, its validation
    # split): a run that changes them is not the result the preset compares with the paper
    protocol: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, PaperRow] = field(default_factory=dict)  # dropout scheme -> its row
