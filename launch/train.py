r"""Sparse training (dense, static, prune-at-init, gradual, SET, RigL,
GraNet, PDP) from a config.

  python -m launch.train \
    --config=configs/sparse/granet_lenet300_digits.py:quick \
    --workdir=/tmp/sparse_digits
  jaxprune-train --config=granet_lenet300_digits:quick --workdir=/tmp/sd

`--config` takes a config file's path or, installed, a name from
`configs/sparse/`, with optional comma-separated presets after `:`.
Rerunning with the same workdir resumes; `--config.<key>=value` overrides a
key (the workdir then refuses to mix configs), e.g. `--config.sparsity=0.95`
for any method but dense. A bad config prints one message and exits with
status 1 before anything trains; `--debug` shows the traceback.
"""

import os

from jaxprune.experiments import sparse, sparse_report
from jaxprune.train.parallel import initialize_distributed
from launch import cli

_CONFIG, _WORKDIR = cli.define_flags()


def main(argv: list[str]) -> None:
  cli.start(argv)
  initialize_distributed(_CONFIG.value.distributed)
  results = sparse.run(_CONFIG.value, _WORKDIR.value)
  workdir = _WORKDIR.value
  print(sparse_report.details([sparse.row(results, workdir)]), end="")
  print(f"plot:    {os.path.join(workdir, sparse.PLOT)}")
  print(f"table:   {os.path.join(workdir, sparse.TABLE)}")
  print(f"results: {os.path.join(workdir, sparse.RESULTS)}")
  print(f"weights: {os.path.join(workdir, 'seed<n>', sparse.TRAINED)}")


def cli_main() -> None:
  """The `jaxprune-train` console script."""
  cli.run(main, "sparse")


if __name__ == "__main__":
  cli_main()
