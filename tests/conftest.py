"""Shared test helpers: entry points run the way a user runs them."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def launch():
  """`launch(module, config, workdir) -> stdout` of `python -m module`."""

  def run(module: str, config: str, workdir) -> str:
    out = subprocess.run(
      [
        sys.executable,
        "-m",
        module,
        f"--config={config}",
        f"--workdir={workdir}",
      ],
      cwd=ROOT,
      capture_output=True,
      text=True,
      timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout

  return run
