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

from absl import app, flags, logging
from ml_collections import config_flags

from jaxprune.experiments import posttrain
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
