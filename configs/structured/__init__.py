"""Configs of structured runs (`get_config(arg)` per file)."""
