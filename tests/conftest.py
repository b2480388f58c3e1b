"""Shared test helpers: entry points run the way a user runs them."""

import os
import pathlib
import subprocess
import sys
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# One persistent compilation cache for this process, the xdist workers and
# every child process (launches, notebooks, the 8-device runs): many tests
# build a new trainer for a program another test has compiled already.
# Set before JAX starts; JAX reads these variables as config defaults.
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR",
  os.path.join(tempfile.gettempdir(), "jaxprune-tests-jax-cache"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
# Most of the suite's time is XLA compiling small programs; LLVM's cheapest
# optimisation level compiles them about a fifth faster. The 8-device runs
# of test_parallel (their own XLA_FLAGS) keep the default level: they
# compare layouts down to a test accuracy after training, which -O0's
# rounding can move by one image. Benchmarks and launches keep it too.
flags = os.environ.get("XLA_FLAGS", "")
if not any(
  f in flags
  for f in ("xla_backend_optimization_level", "xla_force_host_platform")
):
  os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0"

# Tests that take a minute or more on 2 cores: started first, so that with
# `-n 2` the workers do not end on one of them while the other idles.
LONG = ("test_on_eight_cpu_devices", "test_runs_in_quick_mode")


def pytest_collection_modifyitems(items):
  def rank(item):
    name = getattr(item, "originalname", None)
    return LONG.index(name) if name in LONG else len(LONG)

  items.sort(key=rank)


def _outside(args: list[str]) -> subprocess.CompletedProcess:
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(ROOT), env.get("PYTHONPATH")])
  )
  with tempfile.TemporaryDirectory() as elsewhere:
    return subprocess.run(
      [sys.executable, *args],
      cwd=elsewhere,
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
    )


@pytest.fixture(scope="session")
def outside():
  """`outside(args) -> CompletedProcess` of `python *args` from a directory
  outside the repository, which is importable as after `pip install`."""
  return _outside


@pytest.fixture(scope="session")
def launch():
  """`launch(module, config, workdir) -> stdout` of `python -m module`, run
  from outside the repository with the README's relative config path."""

  def run(module: str, config: str, workdir) -> str:
    out = _outside(["-m", module, f"--config={config}", f"--workdir={workdir}"])
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout

  return run
