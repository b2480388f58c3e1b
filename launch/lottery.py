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

from jaxprune.experiments import lottery
from jaxprune.train.parallel import initialize_distributed
from launch import cli

_CONFIG, _WORKDIR = cli.define_flags()


def main(argv: list[str]) -> None:
  cli.start(argv)
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
