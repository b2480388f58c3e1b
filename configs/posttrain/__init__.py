"""Configs of post-training pruning runs (`get_config(arg)` per file)."""
