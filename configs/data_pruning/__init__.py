"""Configs of data_pruning runs (`get_config(arg)` per file)."""
