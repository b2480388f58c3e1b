"""The launchers' command line and the experiments' checks: configs by path
or by name from any directory, every check before anything is written, one
message per user error."""

import pathlib

import pytest

from jaxprune.experiments import lottery, sparse
from jaxprune.experiments.progress import STORED_INTERVAL, Bar
from launch import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOTTERY = "configs/lottery/lenet300_digits.py"
GRANET = "configs/sparse/granet_lenet300_digits.py"


def test_a_config_is_found_by_path_from_elsewhere_and_by_name(
  tmp_path, monkeypatch
):
  monkeypatch.chdir(tmp_path)
  digits = ROOT / LOTTERY
  assert cli.resolve(f"{LOTTERY}:quick", "lottery") == (digits, "quick")
  assert cli.resolve("lenet300_digits", "lottery") == (digits, None)
  granet = ROOT / GRANET
  assert cli.resolve("granet_lenet300_digits:quick,sparsity=0.8", "sparse") == (
    granet,
    "quick,sparsity=0.8",
  )
  (tmp_path / "mine.py").write_text("")
  assert cli.resolve("mine.py", "lottery") == (tmp_path / "mine.py", None)


def test_a_missing_config_says_so_and_lists_the_configs(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(FileNotFoundError) as error:
    cli.resolve("lenet300_digit:quick", "lottery")
  message = str(error.value)
  assert message.startswith(
    "--config=lenet300_digit:quick: no config file 'lenet300_digit'"
  )
  assert "lenet300_digits, lenet300_fashion_mnist," in message
  assert "base" not in message.split("by name:")[1]


def test_an_unknown_override_names_the_section_and_its_keys():
  config = cli.load(ROOT / LOTTERY, "quick")
  cli.check_overrides(config, ["--config.train.steps=5", "--config.seeds=0,1"])
  with pytest.raises(KeyError) as error:
    cli.check_overrides(config, ["--workdir=w", "--config.train.nonexistent=1"])
  assert error.value.args[0] == (
    "--config.train.nonexistent=1: config.train has no key 'nonexistent'; "
    "its keys: batch_size, checkpoint_every, eval_batch_size, eval_every, "
    "steps, steps_per_dispatch"
  )
  with pytest.raises(KeyError, match="config.rounds is a value, not a"):
    cli.check_overrides(config, ["--config.rounds.x=1"])


@pytest.mark.parametrize(
  "module, config, override, message",
  [
    (
      "launch.lottery",
      LOTTERY,
      "--config.train.nonexistent=1",
      "config.train has no key 'nonexistent'; its keys: batch_size, ",
    ),
    (
      "launch.lottery",
      LOTTERY,
      "--config.pruning.rate=1.5",
      "error: config.pruning.rate = 1.5: expected a fraction in [0, 1)\n",
    ),
    # The user's key, not the pruner's `final_sparsity` that refers to it.
    (
      "launch.train",
      GRANET,
      "--config.sparsity=1.2",
      "error: config.sparsity = 1.2: expected a fraction in [0, 1)\n",
    ),
    ("launch.train", "configs/sparse/nope.py", None, "no config file"),
  ],
)
def test_a_user_error_is_one_message_and_writes_nothing(
  outside, tmp_path, module, config, override, message
):
  workdir = tmp_path / "run"
  args = ["-m", module, f"--config={config}", f"--workdir={workdir}"]
  out = outside(args + ([override] if override else []))
  assert out.returncode == 1
  assert "Traceback" not in out.stderr
  assert out.stderr.startswith("error: ")
  assert message in out.stderr
  assert out.stderr.endswith(
    "(--debug or JAXPRUNE_DEBUG=1 shows the traceback)\n"
  )
  assert not workdir.exists()


def test_debug_shows_the_traceback(outside, tmp_path):
  args = ["-m", "launch.train", f"--config={GRANET}", f"--workdir={tmp_path}"]
  out = outside(args + ["--config.sparsity=1.2", "--debug"])
  assert out.returncode != 0
  assert "Traceback" in out.stderr
  assert "ValueError: config.sparsity = 1.2" in out.stderr


def _changed(config, changes):
  """`config` with the dotted keys of `changes` set (new ones added)."""
  for key, value in changes.items():
    *sections, name = key.split(".")
    node = config
    for section in sections:
      node = node[section]
    node[name] = value
  return config


def _lottery(**changes):
  return _changed(cli.load(ROOT / LOTTERY, "quick"), changes)


@pytest.mark.parametrize(
  "changes, error, message",
  [
    ({"dataset.name": "cifar"}, ValueError, "config.dataset.name: Unknown"),
    (
      {
        "dataset.name": "fashion_mnist",
        "dataset.data_dir": "/nonexistent",
        "dataset.test_size": None,  # only digits draws its test split
      },
      FileNotFoundError,
      r"--config.dataset.data_dir=<folder>",
    ),
    ({"model.name": "lenet9"}, ValueError, "config.model.name: Unknown"),
    ({"optimizer.name": "adamm"}, ValueError, "optimizer.name = 'adamm'"),
    ({"pruning.rates.fc3": 1.0}, ValueError, r"pruning.rates\['fc3'\] = 1.0"),
    ({"rewind_step": 100}, ValueError, r"rewind_step = 100"),
    ({"rounds": 0}, ValueError, r"config.rounds = 0"),
    ({"train.eval_every": 0}, ValueError, r"eval_every = 0"),
  ],
)
def test_lottery_checks_everything_before_writing(
  tmp_path, changes, error, message
):
  with pytest.raises(error, match=message):
    lottery.run(_lottery(**changes), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_lottery_checks_the_optimizer_arguments_before_writing(tmp_path):
  config = _lottery()
  config.optimizer.momentum = 0.9  # Adam takes none
  with pytest.raises(ValueError, match=r"optax.adam takes no \['momentum'\]"):
    lottery.run(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def _granet(**changes):
  return _changed(cli.load(ROOT / GRANET, "quick"), changes)


@pytest.mark.parametrize(
  "config, message",
  [
    (lambda: _granet(**{"pruner.algorithm": "granit"}), "algorithm='granit'"),
    (lambda: _granet(**{"pruner.frequenc": 3}), r"takes no \['frequenc'\]"),
    (lambda: _granet(**{"schedule.name": "cosine"}), "schedule.name = 'cos"),
    (
      lambda: _changed(
        cli.load(ROOT / "configs/sparse/snip_lenet300_fashion_mnist.py"),
        {"prune_at_init.method": "snipp", "dataset.name": "digits"},
      ),
      "config.prune_at_init.method = 'snipp'",
    ),
  ],
)
def test_sparse_training_checks_everything_before_writing(
  tmp_path, config, message
):
  config = config()
  with pytest.raises(ValueError, match=message):
    sparse.run(config, str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


def test_the_bar_has_no_estimate_while_compiling_and_few_stored_refreshes():
  with Bar(100) as bar:
    assert "[compiling]" in str(bar.tqdm)
    bar.advance(0, seed=0)  # the evaluation before the first step
    assert "[compiling]" in str(bar.tqdm)
    bar.advance(50, seed=0)
    assert "compiling" not in str(bar.tqdm)
    assert "50/100" in str(bar.tqdm)
    # pytest's captured stderr is no terminal, like a notebook's.
    assert bar.tqdm.mininterval == STORED_INTERVAL
