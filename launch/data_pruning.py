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

from absl import app, flags, logging
from ml_collections import config_flags

from jaxprune.experiments import data_pruning
from launch import cli

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config file or name.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Directory holding the run's outputs; reruns resume."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
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
