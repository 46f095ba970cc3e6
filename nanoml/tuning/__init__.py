"""Tuning as a library call, `nanoml.tune`: model selection and hyperparameter search over
the learners' search spaces, with Optuna's samplers and successive-halving pruning, trials
run in the calling process or on dask.distributed, each finished trial journaled::

    import nanoml

    result = nanoml.tune(["svm", "logistic-regression"], "digits", trials=20, workers=2)
    result.learner, result.validation_score, result.metrics   # 'svm', 0.99..., {...}
    result.model                        # refitted on all training rows: runs/.../model.npz

Modules: `space` (search spaces as Optuna distributions), `trial` (one trial, as a worker
runs it), `execution` (in-process or Dask), `journal` (trials.jsonl), `report` (table and
figures), `search` (the ask-and-tell loop and the final refit).
"""

from nanoml.tuning.search import TuneResult, TuningInterrupted, tune

__all__ = ["TuneResult", "TuningInterrupted", "tune"]
