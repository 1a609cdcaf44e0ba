"""Studies: declarative grids and Optuna searches run by worker processes exactly once.

- :mod:`mpbench.study.spec`: the study file schema (``read_study``, ``expand_grid``).
- :mod:`mpbench.study.storage`: Optuna storages, heartbeats, stale-trial retries, cell states.
- :mod:`mpbench.study.worker`: the worker loop (run by ``mpbench worker``).
- :mod:`mpbench.study.plan`: ``plan`` -> ``RunPlan``, the resolved settings of one run.
- :mod:`mpbench.study.preflight`: every check that can run before anything is enqueued.
- :mod:`mpbench.study.runner`: ``run_study`` (local workers, progress, Ctrl-C).
- :mod:`mpbench.study.launch`: ``mpbench launch`` (local or Slurm workers).
- :mod:`mpbench.study.status`: ``summarize_study`` (cells by state, failed cells, best so far).
- :mod:`mpbench.study.dryrun`: ``dry_run`` and the throughput probe.

Importing this package is cheap; optuna, torch and mlflow are imported where they are used.
"""

from mpbench.study.spec import StudyFileError, StudySpec, expand_grid, read_study

__all__ = ["StudyFileError", "StudySpec", "expand_grid", "read_study"]
