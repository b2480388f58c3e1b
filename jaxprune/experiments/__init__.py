"""Experiments driven by configs: each `run(config, workdir)` writes
everything it produces into its workdir and resumes from it."""
