r"""Lottery-ticket experiments (IMP rounds with controls) from a config.

  python -m launch.lottery --config=configs/lottery/lenet300_digits.py \
    --workdir=/tmp/lottery_digits
  jaxprune-lottery --config=lenet300_digits --workdir=/tmp/lottery_digits

`--config` takes a config file's path or, installed, a name from
`configs/lottery/`, with an optional `:arg` preset. Rerunning with the same
workdir resumes; `--config.<key>=value` overrides a key (the workdir then
refuses to mix configs). A bad config prints one message and exits with
status 1 before anything trains; `--debug` shows the traceback.
"""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from jaxprune.experiments import lottery
from jaxprune.train.parallel import initialize_distributed
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
  # Library INFO logs (orbax writes several per checkpoint) only when asked
  # for with --verbosity=0; absl.app.run resets a changed default.
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  initialize_distributed(_CONFIG.value.distributed)
  lottery.run(_CONFIG.value, _WORKDIR.value)
  workdir = _WORKDIR.value
  print(f"plot:    {os.path.join(workdir, lottery.PLOT)}")
  print(f"table:   {os.path.join(workdir, lottery.TABLE)}")
  print(f"results: {os.path.join(workdir, lottery.RESULTS)}")
  trained = lottery.TRAINED.format(arm="<arm>", round=0).replace("00", "<r>")
  print(f"weights: {os.path.join(workdir, 'seed<n>', trained)}")


def cli_main() -> None:
  """The `jaxprune-lottery` console script."""
  cli.run(main, "lottery")


if __name__ == "__main__":
  cli_main()
