"""The cost of tuning itself (`nanoml.tune`): what a trial costs beyond its own fit, in the
calling process and on a LocalCluster, and trials per minute with 1 and 2 workers.

Both are read from the journal, from the first trial's end to the last one's, so that
starting the cluster, a worker's first imports, the final refit and the figures are left
out: they are paid once per search, not per trial.
"""

import tempfile


def _search(learner, dataset, trials, workers, **options):
    import nanoml

    with tempfile.TemporaryDirectory() as folder:
        return nanoml.tune(learner, dataset, trials=trials, pruner="none", workers=workers,
                           out=folder, **options).trials


def _span(records):
    """(seconds from the first trial's end to the last one's, the fit seconds of the trials
    that ended in between)."""
    records = sorted(records, key=lambda r: r["elapsed"])
    return (records[-1]["elapsed"] - records[0]["elapsed"],
            sum(r["seconds"] for r in records[1:]))


class TrialOverhead:
    """Milliseconds per trial spent outside the learner's fit and scoring: Optuna's ask
    and tell, sending the trial to its worker and back, and journaling it (with fsync).
    The learner is a trivial one (Gaussian naive Bayes on iris: well under a millisecond)."""

    params = [["in-process", "local-cluster"]]
    param_names = ["executor"]
    unit = "ms per trial"
    timeout = 600
    rounds = 1
    repeat = 1
    number = 1

    def track_overhead(self, executor):
        records = _search("gaussian-nb", "iris", 60, None if executor == "in-process" else 1,
                          space={"var_smoothing": "1e-12..1e-3:log"})
        wall, fits = _span(records)
        return 1000 * (wall - fits) / (len(records) - 1)


class TrialsPerMinute:
    """Trials finished per minute on a LocalCluster of 1 or 2 single-threaded workers, for
    trials of a few tenths of a second (an MLP, 10 epochs on the 8x8 digits)."""

    params = [[1, 2]]
    param_names = ["workers"]
    unit = "trials per minute"
    timeout = 900
    rounds = 1
    repeat = 1
    number = 1

    def track_trials_per_minute(self, workers):
        records = _search("mlp", "digits", 24, workers, params={"epochs": 10},
                          space={"lr": "1e-4..1e-2:log"})
        wall, _ = _span(records)
        return 60 * (len(records) - 1) / wall
