r"""Post-training pruning experiments (magnitude, Wanda, SparseGPT) from a
config.

  python -m launch.posttrain \
    --config=configs/posttrain/charlm_fortunes.py:quick \
    --workdir=/tmp/posttrain_charlm

Rerunning with the same workdir skips the finished runs; `--config.<key>=`
overrides a key (the workdir then refuses to mix configs). Presets:
`:quick`, `:method=wanda`, `:sparsity=0.6`, `:nm=2:4`, comma-separated.
"""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from jaxprune.experiments import posttrain

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
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)
  try:
    posttrain.run(_CONFIG.value, _WORKDIR.value)
  except (ValueError, FileNotFoundError, ModuleNotFoundError) as e:
    raise SystemExit(f"error: {e}") from None
  workdir = _WORKDIR.value
  print(f"plot:    {os.path.join(workdir, posttrain.PLOT)}")
  print(f"table:   {os.path.join(workdir, posttrain.TABLE)}")
  print(f"results: {os.path.join(workdir, posttrain.RESULTS)}")


def parse_flags(argv: list[str]) -> list[str]:
  """Flags, or one line naming what is wrong with them (a config's preset
  error ends the traceback config_flags puts in its message)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    lines = str(e).strip().splitlines()
    raise SystemExit(f"error: {lines[-1] if lines else e}") from None


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
