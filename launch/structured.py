r"""Retraining-free structured pruning of MiniLM from a config.

  python -m launch.structured \
    --config=configs/structured/minilm_fortunes.py:quick \
    --workdir=/tmp/structured_quick

`--config` takes a config file's path or, installed, a name from
`configs/structured/`. Rerunning with the same workdir resumes (finished
records are kept). A bad command line prints one message and exits with
status 1; `--debug` shows the traceback.
"""

import os

from absl import app, flags, logging
from ml_collections import config_flags

from jaxprune.experiments import structured
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
  results = structured.run(_CONFIG.value, _WORKDIR.value)
  print(structured.table(results["records"]))
  print(f"results: {os.path.join(_WORKDIR.value, structured.RESULTS)}")


def cli_main() -> None:
  """The `jaxprune-structured` console script."""
  cli.run(main, "structured")


if __name__ == "__main__":
  cli_main()
