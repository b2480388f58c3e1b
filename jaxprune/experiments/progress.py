"""The experiments' progress bar: no estimate while the first step compiles,
and few refreshes where the output is stored (a notebook, a log file)."""

import contextlib
import os
import sys

import tqdm

COMPILING = "{l_bar}{bar}| {n_fmt}/{total_fmt} [compiling]{postfix}"
STORED_INTERVAL = 30.0
"""Seconds between refreshes when stderr is not a terminal: a notebook keeps
every refresh in its stored cell output."""


class Bar:
  """A tqdm bar over `total` steps, starting at `initial`.

  Until `advance` first moves it, the bar shows `[compiling]` instead of a
  rate and a remaining time (the first step's compilation would make both
  meaningless).
  """

  def __init__(self, total: int, initial: int = 0):
    tty = getattr(sys.stderr, "isatty", lambda: False)()
    self.tqdm = tqdm.tqdm(
      total=total,
      initial=initial,
      unit="step",
      bar_format=COMPILING,
      mininterval=0.1 if tty else STORED_INTERVAL,
    )
    self._compiling = True

  def advance(self, n: int, **postfix) -> None:
    """Moves the bar to `n` steps done, showing `postfix`."""
    bar = self.tqdm
    if self._compiling and n > bar.n:
      # Compiled: the rate counts from here on.
      self._compiling = False
      bar.bar_format = None
      bar.reset(total=bar.total)
      bar.n = bar.last_print_n = bar.initial = n
      bar.set_postfix(postfix)
      return
    bar.set_postfix(postfix, refresh=False)
    bar.update(n - bar.n)

  def write(self, message: str) -> None:
    """Prints `message` above the bar."""
    self.tqdm.write(message)

  def __enter__(self) -> "Bar":
    return self

  def __exit__(self, *exc) -> None:
    self.tqdm.close()


def announce(
  workdir: str, table: str, finished: int, total: int, unit: str, steps: int
) -> Bar | contextlib.nullcontext:
  """Says whether the run in `workdir` is finished (and where its table
  is) or resumes, and returns the progress bar of the work left.

  Args:
    workdir: the run's folder.
    table: the results table's file name in it.
    finished: units of work already done (trainings, seeds).
    total: units in the run.
    unit: their name in the message, plural.
    steps: training steps per unit.

  Returns:
    A `Bar` over the steps left, or a null context when none are.
  """
  if finished == total:
    print(
      f"{workdir} is finished ({finished} of {finished} {unit}); results "
      f"in {os.path.join(workdir, table)}"
    )
    return contextlib.nullcontext()
  if finished:
    print(f"resuming in {workdir}: {finished} of {total} {unit} done")
  return Bar(total * steps, finished * steps)
