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

from jaxprune.experiments import structured
from launch import cli

_CONFIG, _WORKDIR = cli.define_flags()


def main(argv: list[str]) -> None:
  cli.start(argv)
  results = structured.run(_CONFIG.value, _WORKDIR.value)
  print(structured.table(results["records"]))
  print(f"results: {os.path.join(_WORKDIR.value, structured.RESULTS)}")


def cli_main() -> None:
  """The `jaxprune-structured` console script."""
  cli.run(main, "structured")


if __name__ == "__main__":
  cli_main()
