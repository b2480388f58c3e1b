"""Sparse-training configs, one per method, model and dataset
(`base.recipe`)."""
