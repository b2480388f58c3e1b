"""Experiment configs: `lottery/` for `launch.lottery`, `sparse/` for
`launch.train`; installed with jaxprune, so a config can be named from any
directory."""
