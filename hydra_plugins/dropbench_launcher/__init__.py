"""dropbench's Hydra launcher plugin (see batched_launcher.py)."""
