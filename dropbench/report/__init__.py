"""`dropbench report`: run dirs -> tidy tables, figures and a self-contained report.html.

Reads run directories only (never imports the engine). Modules: collect (files -> pandas),
plots (figures), tables (summary and paper-vs-ours), html (the page), build (write_report),
callback (a Hydra callback that reports a sweep when it ends). Kept import-free so that Hydra
can load the callback on every run without pulling in pandas and matplotlib.
"""
