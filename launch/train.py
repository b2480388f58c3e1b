r"""Sparse training (dense, static, prune-at-init, gradual, SET, RigL,
GraNet) from a config.

  python -m launch.train \
    --config=configs/sparse/granet_lenet300_digits.py:quick \
    --workdir=/tmp/sparse_digits

Rerunning with the same workdir resumes; `--config.<key>=value` overrides a
key (the workdir then refuses to mix configs), e.g. `--config.sparsity=0.95`
for any method but dense.
"""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from jaxprune.experiments import sparse
from jaxprune.train.parallel import initialize_distributed

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config file.", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Directory holding the run's outputs; reruns resume."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # app.run turns on INFO logs (orbax writes several per checkpoint); show
  # them only when asked for with --verbosity=0.
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  initialize_distributed(_CONFIG.value.distributed)
  sparse.run(_CONFIG.value, _WORKDIR.value)
  workdir = _WORKDIR.value
  print(f"plot:    {os.path.join(workdir, sparse.PLOT)}")
  print(f"results: {os.path.join(workdir, sparse.RESULTS)}")


if __name__ == "__main__":
  app.run(main)
