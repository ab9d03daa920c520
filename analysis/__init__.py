"""Figures and tables from run folders (never from logs).

python -m analysis.figures --results results/runs      # everything; or `make figures`

Each command also runs as `python analysis/<module>.py ...` (same flags).
collect.py        run folders -> pandas (runs table, metrics table), via harness.runs.runinfo
cache.py          the parquet cache of both tables, keyed by a fingerprint of the run files
stalled.py        which runs are unfinished, and which `running` ones lost their process
labels.py         methods in table order (labels and method keys come from harness.runs.runinfo)
stats.py          mean ± t confidence interval, monotone trends, Spearman rho with exact p
comparable.py     one table per task/eval config (--group-by), file-name suffixes per group
cli.py            the flags every command shares, one-line errors (AnalysisError, exit 2)
style.py          the figure theme, exposure colors, KL axes, saving PNG + PDF
plot_mismatch.py  the paper's figure: mismatch (KL) versus exposure, sweep and probe
tables.py         the Average@k table (Markdown + LaTeX via pandas Styler), mean ± 95% CI over seeds
curves.py         training curves per run, grouped by method
controller_plot.py  ATESD: Beta mean ± sd and the sampled exposure per window, per seed
difficulty.py     Average@k per suite (easy -> hard) against fixed r, best r per suite (figure + table)
figures.py        runs all of the above
claims.py         the paper's claims: pre-registered verdict first (prereg.py, PREREGISTRATION.md),
                  then the Welch rule's (verdicts.py); gap_report.py the same per gap level
prereg_report.py  the pre-registered verdicts on committed run tables (summary_runs.py)
"""
