"""Tables and figures of a study, computed from its MLflow runs only.

- :mod:`mpbench.report.load`: runs -> pandas (wide and long frames), Parquet cache, export.
- :mod:`mpbench.report.stats`: seed aggregates, paired tests vs the baseline, Holm, power, costs.
- :mod:`mpbench.report.table`: the paper table (Markdown, booktabs LaTeX, CSV, rich).
- :mod:`mpbench.report.figures`: ``plot_*(df, ...) -> Figure`` under one seaborn theme.
- :mod:`mpbench.report.viz`: the attention strip of any video file.
- :mod:`mpbench.report.build`: ``make_report`` / ``make_figures``, used by the CLI.

Submodules are imported on use so that ``import mpbench.report`` stays cheap.
"""
