"""An example dropbench plugin: curriculum dropout and a residual MLP (see README.md)."""
