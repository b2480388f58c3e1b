r"""Post-training pruning experiments (magnitude, Wanda, SparseGPT) from a
config.

  python -m launch.posttrain \
    --config=configs/posttrain/charlm_fortunes.py:quick \
    --workdir=/tmp/posttrain_charlm

Rerunning with the same workdir skips the finished runs; `--config.<key>=`
overrides a key (the workdir then refuses to mix configs). Presets:
`:quick`, `:method=wanda`, `:sparsity=0.6`, `:nm=2:4`, comma-separated.
`--config` takes a config file's path or, installed, a name from
`configs/posttrain/`. A bad config prints one message and exits with
status 1 before anything runs; `--debug` shows the traceback.
"""

import os

from jaxprune.experiments import posttrain
from launch import cli

_CONFIG, _WORKDIR = cli.define_flags()


def main(argv: list[str]) -> None:
  cli.start(argv)
  posttrain.run(_CONFIG.value, _WORKDIR.value)
  workdir = _WORKDIR.value
  print(f"plot:    {os.path.join(workdir, posttrain.PLOT)}")
  print(f"table:   {os.path.join(workdir, posttrain.TABLE)}")
  print(f"results: {os.path.join(workdir, posttrain.RESULTS)}")


def cli_main() -> None:
  """The `jaxprune-posttrain` console script."""
  cli.run(main, "posttrain")


if __name__ == "__main__":
  cli_main()
