"""Lottery-ticket configs, one per model and dataset (`base.recipe`)."""
