"""What both launchers share: finding the config, checking the command line
before anything runs, and one-line errors.

`--config` takes a path (`configs/lottery/lenet300_digits.py`, relative to
the current directory or, failing that, to the installed `configs` package's
parent, so the README's commands work from any directory) or a config's
name (`lenet300_digits`), each with an optional `:arg` preset. A user error
(a bad config value, an override of a key the config lacks, a missing
config file or dataset) prints one message and exits with status 1;
`--debug` or the environment variable JAXPRUNE_DEBUG=1 shows the traceback
instead.
"""

import importlib.util
import os
import pathlib
import sys
from collections.abc import Callable

import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

DEBUG_ENV = "JAXPRUNE_DEBUG"
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, KeyError, ImportError)
"""Exceptions reported as one message (a config or an input is wrong)."""


def define_flags() -> tuple[flags.FlagHolder, flags.FlagHolder]:
  """Defines the `--config` and `--workdir` flags every launcher takes."""
  config = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file or name.", lock_config=True
  )
  workdir = flags.DEFINE_string(
    "workdir", None, "Directory holding the run's outputs; reruns resume."
  )
  flags.mark_flags_as_required(["config", "workdir"])
  return config, workdir


def start(argv: list[str]) -> None:
  """What every launcher's `main` does first: refuse stray arguments, and
  show library INFO logs (orbax writes several per checkpoint) only when
  asked for with --verbosity=0 (absl.app.run resets a changed default)."""
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)


def configs_dir() -> pathlib.Path | None:
  """The installed (or importable) `configs` package's folder, if any."""
  spec = importlib.util.find_spec("configs")
  if spec is None or not spec.submodule_search_locations:
    return None
  return pathlib.Path(next(iter(spec.submodule_search_locations)))


def resolve(value: str, kind: str) -> tuple[pathlib.Path, str | None]:
  """`(file, arg)` of a `--config` value `path[:arg]` or `name[:arg]`.

  Args:
    value: the flag's value.
    kind: the configs' folder for a bare name ('lottery' or 'sparse').

  Raises:
    FileNotFoundError: naming the path, where it was looked for, and the
      configs of `kind` that exist.
  """
  path, _, arg = value.partition(":")
  candidates = [pathlib.Path(path)]
  package = configs_dir()
  if package is not None:
    parts = pathlib.PurePath(path).parts
    if parts[:1] == ("configs",):
      candidates.append(package.parent / path)
    if len(parts) == 1 and not path.endswith(".py"):
      candidates.append(package / kind / f"{path}.py")
  for candidate in candidates:
    if candidate.is_file():
      return candidate.resolve(), arg or None
  known = ""
  if package is not None:
    files = (package / kind).glob("*.py")
    names = sorted(p.stem for p in files if p.stem not in ("base", "__init__"))
    known = f"; configs by name: {', '.join(names)}"
  raise FileNotFoundError(
    f"--config={value}: no config file {path!r} (looked in "
    f"{', '.join(str(c.parent.resolve()) for c in candidates)}); give the "
    f"path of a config file or a config's name{known}"
  )


def load(
  path: pathlib.Path, arg: str | None = None
) -> ml_collections.ConfigDict:
  """`get_config(arg)` of the config file at `path`."""
  spec = importlib.util.spec_from_file_location("_jaxprune_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg) if arg is not None else module.get_config()


def check_overrides(config: ml_collections.ConfigDict, argv: list[str]):
  """Raises if a `--config.<key>=value` names a key `config` lacks.

  Raises:
    KeyError: naming the override, the section and its valid keys.
  """
  for item in argv:
    if not item.startswith(("--config.", "--noconfig.")):
      continue
    key = item.partition("=")[0].partition("config.")[2]
    node, section = config, "config"
    for part in key.split("."):
      if not isinstance(node, ml_collections.ConfigDict):
        raise KeyError(f"{item}: {section} is a value, not a section")
      if part not in node:
        raise KeyError(
          f"{item}: {section} has no key {part!r}; its keys: "
          f"{', '.join(sorted(node))}"
        )
      node, section = node[part], f"{section}.{part}"


def _prepare(argv: list[str], kind: str) -> list[str]:
  """argv with `--config` resolved to a file, once the config loads and
  every override names one of its keys."""
  out = list(argv)
  for i, item in enumerate(argv):
    if item.startswith("--config="):
      value, at = item.removeprefix("--config="), i
    elif item == "--config" and i + 1 < len(argv):
      value, at = argv[i + 1], i + 1
      out[i] = ""
    else:
      continue
    path, arg = resolve(value, kind)
    check_overrides(load(path, arg), argv)
    out[at] = f"--config={path}" + (f":{arg}" if arg is not None else "")
  return [a for a in out if a]


def run(main: Callable[[list[str]], None], kind: str) -> None:
  """`absl.app.run(main)` with the checks above and one-line user errors.

  Args:
    main: the launcher's main.
    kind: where configs named without a path live ('lottery', 'sparse').
  """
  debug = "--debug" in sys.argv or os.environ.get(DEBUG_ENV, "0") != "0"
  argv = [a for a in sys.argv if a != "--debug"]
  try:
    app.run(main, argv=_prepare(argv, kind))
  except USER_ERRORS as e:
    if debug:
      raise
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(
      f"error: {message}\n(--debug or {DEBUG_ENV}=1 shows the traceback)",
      file=sys.stderr,
    )
    sys.exit(1)
