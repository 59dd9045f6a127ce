"""What a training task declares beyond its batches, steps and scores, with the defaults the
trainer (engine/trainer.py), the MC checks (engine/mc.py) and a stack of models
(sweep/vmapped.py) read. Every task (tasks.py, regress.py, lm.py) derives from Task and
overrides only what differs."""


class Task:
    metric: str  # the headline metric: acc, ppl, rmse (dropbench/units.py says which way is better)
    supports_mc = False  # eval.mode=mc and eval.compare score it by Monte-Carlo passes
    # Score the test split with the last epoch's weights instead of the best validation
    # epoch's (a protocol without early stopping, as the UCI regressions').
    tests_last_epoch = False
    # The learning rate's factor for the current training batch (a language model's
    # variable-length BPTT window trains at lr * length / bptt).
    lr_scale = 1.0
    # A task whose step scores model(x) with one function of the outputs and targets that
    # also takes leading member dims declares it: score_outputs(out, y) -> (loss, sums). A
    # stack of models then scores all members with it instead of running the step under vmap.
    score_outputs = None

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric column of metrics.csv and summary.json: the headline one, and more
        where a task has them (a regression: rmse and ll)."""
        return (self.metric,)

    def final_scores(self, model, eval_cfg) -> dict:
        """summary.json's scores beyond the test split's loss and metrics (a regression's MC
        test scores); none by default."""
        return {}

    def describe_final(self, scores: dict) -> str:
        """final_scores' headline for the run's last log line, e.g. `; MC (T=10000): ...`."""
        return ""
