"""Figures and tables from run folders (never from logs).

python -m analysis.figures --results results/runs      # everything; or `make figures`

collect.py        run folders -> pandas (runs table, metrics table), parquet cache
plot_mismatch.py  the paper's figure: mismatch (KL) versus exposure, sweep and probe
tables.py         the Average@k table (Markdown + LaTeX), mean ± 95% CI over seeds
curves.py         training curves per run, grouped by method
controller_plot.py  ATESD: Beta mean ± sd and the sampled exposure per window, per seed
figures.py        runs all of the above
"""
