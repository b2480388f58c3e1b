"""Configs of lm runs (`get_config(arg)` per file)."""
