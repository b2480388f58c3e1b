r"""Retraining-free structured pruning of MiniLM or a conv net from a config.

  python -m launch.structured \
    --config=configs/structured/minilm_fortunes.py:quick \
    --workdir=/tmp/structured_quick

`--config` takes a config file's path or, installed, a name from
`configs/structured/`; a config with `kind = 'conv'` (LeNet-5, ResNet-20)
runs `jaxprune.experiments.structured_conv`, any other MiniLM's
`structured`. Rerunning with the same workdir resumes (finished
records are kept). A bad command line prints one message and exits with
status 1; `--debug` shows the traceback.
"""

import os

from jaxprune.experiments import structured, structured_conv
from launch import cli

_CONFIG, _WORKDIR = cli.define_flags()


def main(argv: list[str]) -> None:
  cli.start(argv)
  config = _CONFIG.value
  kind = structured_conv if config.get("kind") == "conv" else structured
  results = kind.run(config, _WORKDIR.value)
  print(kind.table(results["records"]))
  print(f"results: {os.path.join(_WORKDIR.value, kind.RESULTS)}")


def cli_main() -> None:
  """The `jaxprune-structured` console script."""
  cli.run(main, "structured")


if __name__ == "__main__":
  cli_main()
