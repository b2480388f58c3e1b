r"""Data pruning: score the training set, keep a subset, retrain.

  python -m launch.data_pruning \
    --config=configs/data_pruning/lenet300_fashion_mnist.py:quick \
    --workdir=/tmp/data_pruning_quick

`--config` takes a config file's path or, installed, a name from
`configs/data_pruning/`, with optional comma-separated presets after `:`.
Rerunning with the same workdir skips the scores and runs already done;
`--config.<key>=value` overrides a key (the workdir then refuses to mix
configs). A bad config prints one message and exits with status 1 before
anything trains; `--debug` shows the traceback.
"""

import os

from jaxprune.experiments import data_pruning
from launch import cli

_CONFIG, _WORKDIR = cli.define_flags()


def main(argv: list[str]) -> None:
  cli.start(argv)
  data_pruning.check(_CONFIG.value)
  data_pruning.run(_CONFIG.value, _WORKDIR.value)
  workdir = _WORKDIR.value
  for name in (data_pruning.REPORT, data_pruning.PLOT, data_pruning.RESULTS):
    print(os.path.join(workdir, name))


def cli_main() -> None:
  """The `jaxprune-data-pruning` console script."""
  cli.run(main, "data_pruning")


if __name__ == "__main__":
  cli_main()
