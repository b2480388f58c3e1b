"""Sparse-training experiments: one method, trained once per seed.

For each seed in `config.seeds`, the model trains for `config.train.steps`
steps under `jaxprune.create(config.pruner)`: dense ('fixed' with no
`prune_at_init`), static random masks, gradual magnitude pruning, SET,
RigL, GraNet, or any pruner `jaxprune.create` knows. With `prune_at_init`,
masks are computed once from the initial params (SNIP, GraSP, SynFlow) and
the model trains under them with the 'fixed' pruner.

Config keys (see `configs/sparse/`), each used as named:
  name: the method's label in results and reports.
  dataset.name, dataset.seed, dataset.data_dir (optional; local files):
    `jaxprune.data.load(name, seed=seed, data_dir=data_dir)`.
  model.name, any other model.*: `jaxprune.models.get(name,
    num_classes=..., **others)` (e.g. a CharLM's width and depth).
  pruner: `jaxprune.create(pruner)`, an `algorithm` and its factory's
    arguments; `pruner.structure`, where the factory takes one, is
    `{'kind': 'nm', 'm': M, 'axis': A}` (N:M: its sparsity must be a
    multiple of 1/M) or `{'kind': 'channel', 'axis': A}`.
  prune_at_init (optional, with pruner.algorithm 'fixed'): `batches`, the
    number of training batches scored (the first of the seed's data
    order); `shuffle`, whether each leaf's kept positions are then moved at
    random (`lottery.shuffle`: the layerwise-shuffle control); every other
    key is a `jaxprune.algorithms.pai.prune_at_init` argument (method,
    sparsity, iterations, distribution, min_fraction).
  optimizer.name, optimizer.learning_rate, any other optimizer.*: the optax
    factory `optax.<name>(learning_rate=..., **others)`.
  schedule.name, any other schedule.*: 'constant', or the optax schedule
    `optax.<name>(init_value=optimizer.learning_rate, **others)` (e.g.
    'cosine_decay_schedule' with decay_steps; 'exponential_decay' with
    staircase=True for step decay).
  weight_decay: coupled L2 added to the gradient before the optimizer
    (`optax.add_decayed_weights`); 0 adds nothing.
  train.steps, train.batch_size, train.eval_every, train.steps_per_dispatch,
    train.checkpoint_every, train.eval_batch_size: the training length and
    the `jaxprune.train.Trainer` arguments of the same names.
  early_stop_from: the early-stopping evaluation is the one of minimum
    validation loss at this step or later (gradual methods: where pruning
    ends, so that it is taken at the final sparsity); for PDP, after its
    `harden_step` in any case (hard models only).
  sparsity (optional): the target the method's keys refer to; recorded in
    the results as `target_sparsity` (0 without it).
  seeds: replicates; a seed sets the initialisation, the data order and the
    pruner's random key.

The whole config is checked, the data loaded and the pruner and trainer
built before anything is written, so a config that cannot run leaves the
workdir as it was. The workdir holds config.json, metrics.jsonl (every
evaluation), results.json, results.md (`sparse_report.markdown` of this
run), curves.png (validation loss and test accuracy against the step) and,
per seed, `seed<n>/result.json` and `seed<n>/trained.npz` (final weights and
masks, read back with `workdir.load_trained`) once that seed is done, its
checkpoints while it trains, and its wall time so far (`wall_time_s`:
prune-at-init scoring, compilation and evaluation included, summed over
resumes). A rerun skips finished seeds and resumes an interrupted one from
its latest checkpoint.

PDP runs also stop at `harden_step`, the last step of the soft model, and
evaluate it twice: as it is (soft masks, the evaluation metrics.jsonl
holds) and hardened (binary masks, exactly the final count per leaf, as the
hardening update sets them, before any fine-tuning). `seed<n>/hardening.json`
holds both; the seed's record adds `hardening_step`, `soft_test_accuracy`
and `hardened_test_accuracy`.
`jaxprune.check` runs on the optimizer state at every checkpoint, so a
pruner that met non-finite scores stops the run naming the leaf.
"""

import inspect
import json
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxprune.algorithms import lottery, pai
from jaxprune.algorithms.pdp import PDPPruner, hard_masks
from jaxprune.api import create
from jaxprune.core.summary import summary
from jaxprune.core.tree import apply_masks
from jaxprune.data import load
from jaxprune.experiments import checks, costs, sparse_report
from jaxprune.experiments import workdir as wd
from jaxprune.experiments.progress import announce
from jaxprune.models import get as get_model
from jaxprune.train import Trainer, TrainState, batch_indices
from jaxprune.train.checkpoints import Checkpoints
from jaxprune.transform import check, masks_of

RESULTS = "results.json"
TABLE = "results.md"
PLOT = "curves.png"
TRAINED = "trained.npz"
SEED_RESULT = "result.json"
WALL_TIME = "wall_time.json"
HARDENING = "hardening.json"


def _check(config: ml_collections.ConfigDict) -> None:
  if not config.seeds:
    raise ValueError("config.seeds is empty: give at least one seed")
  checks.positive("train.steps", config.train.steps)
  # The pruner's keys refer to `sparsity`: named here as the user sets it.
  if "sparsity" in config:
    checks.fraction("sparsity", config.sparsity)
  if "prune_at_init" in config:
    _check_pai(config.prune_at_init)
  if not 0 <= config.early_stop_from <= config.train.steps:
    raise ValueError(
      f"config.early_stop_from = {config.early_stop_from}: expected a step "
      f"in [0, train.steps = {config.train.steps}]"
    )
  if "prune_at_init" in config and config.pruner.algorithm != "fixed":
    raise ValueError(
      f"config.prune_at_init needs pruner.algorithm 'fixed' to train under "
      f"its masks; got {config.pruner.algorithm!r}"
    )
  structure = config.pruner.get("structure")
  if structure is not None and structure.get("kind") == "nm":
    m = structure.get("m")
    for key in ("sparsity", "final_sparsity"):
      target = config.pruner.get(key)
      if target is None or not isinstance(m, int):
        continue  # `create` names a bad m
      if abs(target * m - round(target * m)) > 1e-6:
        raise ValueError(
          f"config.pruner.{key} = {target} with an N:M structure of m = "
          f"{m}: expected a multiple of 1/{m} (N:M keeps n = m (1 - "
          f"sparsity) of every m, e.g. {1 - 2 / m:g} for 2:{m})"
        )


def _check_pai(settings: ml_collections.ConfigDict) -> None:
  settings = settings.to_dict()
  checks.positive("prune_at_init.batches", settings.pop("batches", None))
  settings.pop("shuffle", None)
  accepted = set(inspect.signature(pai.prune_at_init).parameters)
  accepted -= {"params", "apply_fn", "batches", "policy"}
  unknown = sorted(set(settings) - accepted)
  if unknown:
    raise ValueError(
      f"config.prune_at_init has unknown keys {unknown}; it takes batches, "
      f"shuffle and {sorted(accepted)}"
    )
  if settings.get("method") not in pai.METHODS:
    raise ValueError(
      f"config.prune_at_init.method = {settings.get('method')!r}: expected "
      f"one of {list(pai.METHODS)}"
    )
  if settings.get("iterations") is not None:
    checks.positive("prune_at_init.iterations", settings["iterations"])
  checks.fraction("prune_at_init.sparsity", settings.get("sparsity"))


def _label(config: ml_collections.ConfigDict) -> str:
  """The method's name in reports: `config.name`, marked when the
  prune-at-init masks are shuffled."""
  if config.get("prune_at_init", {}).get("shuffle", False):
    return f"{config.name} (layerwise shuffle)"
  return config.name


def _optimizer(config) -> Callable[..., optax.GradientTransformation]:
  settings = config.optimizer.to_dict()
  factory = checks.optax_function("optimizer", settings.pop("name"), settings)
  del settings["learning_rate"]  # the trainer sets it every step
  decay = config.weight_decay

  def optimizer(learning_rate):
    tx = factory(learning_rate=learning_rate, **settings)
    return optax.chain(optax.add_decayed_weights(decay), tx) if decay else tx

  return optimizer


def _learning_rate(config) -> float | optax.Schedule:
  settings = config.schedule.to_dict()
  name = settings.pop("name")
  if name == "constant":
    if settings:
      raise ValueError(
        f"config.schedule: 'constant' takes no settings; got {settings}"
      )
    return config.optimizer.learning_rate
  schedule = checks.optax_function("schedule", name, ["init_value", *settings])
  return schedule(init_value=config.optimizer.learning_rate, **settings)


def _trainer(config, dataset, pruner) -> Trainer:
  t = config.train
  return Trainer(
    checks.model(config, dataset.num_classes),
    dataset,
    pruner=pruner,
    optimizer=_optimizer(config),
    learning_rate=_learning_rate(config),
    batch_size=t.batch_size,
    eval_every=t.eval_every,
    steps_per_dispatch=t.steps_per_dispatch,
    checkpoint_every=t.checkpoint_every,
    eval_batch_size=t.eval_batch_size,
    parallel=config.parallel,
    shard_params=config.shard_params,
  )


def _masks_at_init(settings, trainer, variables, policy, seed, key):
  """Prune-at-init masks on the first training batches of `seed`."""
  settings = settings.to_dict()
  count = settings.pop("batches")
  shuffle = settings.pop("shuffle")
  train = trainer.dataset.train
  indices = batch_indices(seed, len(train.labels), trainer.batch_size, 0, count)
  batches = [
    (jnp.asarray(train.images[i]), jnp.asarray(train.labels[i]))
    for i in indices
  ]
  apply_fn = lambda params, x: trainer.model.apply(
    {**variables, "params": params}, x, train=False
  )
  masks = pai.prune_at_init(
    variables["params"],
    apply_fn=apply_fn,
    batches=batches,
    policy=policy,
    **settings,
  )
  return lottery.shuffle(masks, key) if shuffle else masks


def _start(config, trainer, pruner, seed) -> TrainState:
  """Step 0 of `seed`: its initialisation, masks and pruner key."""
  key = jax.random.key(seed)
  variables = trainer.init_variables(jax.random.fold_in(key, 0))
  masks = None
  if "prune_at_init" in config:
    masks = _masks_at_init(
      config.prune_at_init,
      trainer,
      variables,
      pruner.policy,
      seed,
      jax.random.fold_in(key, 2),
    )
  state = trainer.init(
    variables, masks, seed=seed, key=jax.random.fold_in(key, 1)
  )
  # Committed to a device like a restored checkpoint, so that the compiled
  # step serves both (`_train` restores one at every checkpoint).
  return jax.device_put(state, jax.local_devices()[0])


def _hardening_step(pruner, steps: int) -> int | None:
  """The step whose model PDP hardens (its `harden_step`), if the run
  reaches it with a soft phase before it; None for other pruners."""
  if not isinstance(pruner, PDPPruner):
    return None
  step = pruner.harden_step
  return step if pruner.begin < step <= steps else None


def _hardening(trainer, state, history, path) -> dict:
  """Soft and hardened evaluations of `state`, the model PDP is about to
  harden, kept in `path` (a resumed run finds them there)."""
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  soft = next(r for r in history if r["step"] == int(state.step))
  hard = hard_masks(state.params, state.opt_state)
  record = {
    "step": int(state.step),
    "soft": {
      k: v
      for k, v in soft.items()
      if k not in ("step", "train_loss", "train_macs")
    },
    "hard": trainer.evaluate(state, apply_masks(state.params, hard)),
  }
  # Kept in memory too: on several hosts only the first writes the file.
  wd.write_json(path, record)
  return record


def _train(config, trainer, pruner, seed, directory, callback, bar) -> dict:
  """Trains one seed to the end, checkpoint by checkpoint; its record."""
  clock = os.path.join(directory, WALL_TIME)
  seconds = 0.0
  if os.path.exists(clock):
    with open(clock) as f:
      seconds = json.load(f)["seconds"]
  steps, every = config.train.steps, config.train.checkpoint_every
  checkpoints = os.path.join(directory, "checkpoints")
  harden = _hardening_step(pruner, steps)
  hardening = None
  if os.path.isdir(checkpoints):
    with Checkpoints(checkpoints) as ckpt:
      if ckpt.latest_step() is not None:
        bar.write(
          f"resuming seed {seed} from step {ckpt.latest_step()} "
          f"(checkpoint in {checkpoints})"
        )
  begin = time.perf_counter()
  state = _start(config, trainer, pruner, seed)
  # Segments end at checkpoints, where `check` reads the pruner's state
  # back, and at PDP's hardening step; each `fit` resumes from the
  # checkpoint the previous one wrote.
  while True:
    stop = min((int(state.step) // every + 1) * every, steps)
    if harden is not None and int(state.step) < harden:
      stop = min(stop, harden)
    result = trainer.fit(
      state, stop, checkpoint_dir=checkpoints, callback=callback
    )
    state = result.state
    if int(state.step) == harden:
      path = os.path.join(directory, HARDENING)
      hardening = _hardening(trainer, state, result.history, path)
    now = time.perf_counter()
    seconds, begin = seconds + now - begin, now
    wd.write_json(clock, {"seconds": seconds})
    check(state.opt_state)
    if int(state.step) >= steps:
      break
  if harden is not None and hardening is None:  # resumed past it
    with open(os.path.join(directory, HARDENING)) as f:
      hardening = json.load(f)
  # Early stopping looks at hard models only: PDP's after hardening.
  first = config.early_stop_from
  if harden is not None and harden < steps:
    first = max(first, harden + 1)
  candidates = [r for r in result.history if r["step"] >= first]
  early = min(candidates, key=lambda r: r["val_loss"])
  masks = masks_of(state.opt_state)
  wd.save_trained(os.path.join(directory, TRAINED), state.variables, masks)
  counts = summary(masks)
  record = {
    "final_step": result.final["step"],
    "final_test_accuracy": result.final["test_accuracy"],
    "early_stop_step": early["step"],
    "early_stop_val_loss": early["val_loss"],
    "early_stop_test_accuracy": early["test_accuracy"],
    "sparsity": counts.sparsity,
    "kept": counts.kept,
    "size": counts.size,
    "layers": {
      r.path: {"kept": r.kept, "size": r.size, "sparsity": r.sparsity}
      for r in counts.rows
    },
    "wall_time_s": seconds,
    "inference_flops": costs.inference(trainer, masks),
    "training_flops": costs.training(trainer, result.history, steps),
  }
  if hardening is not None:
    record["hardening_step"] = hardening["step"]
    record["soft_test_accuracy"] = hardening["soft"]["test_accuracy"]
    record["hardened_test_accuracy"] = hardening["hard"]["test_accuracy"]
  return record


def row(results: dict, workdir: str = "") -> dict:
  """`results` as a row of `sparse_report`'s tables (`collect`'s form)."""
  return {
    "method": results["method"],
    "target_sparsity": results["target_sparsity"],
    "workdirs": [workdir],
    **results["summary"],
  }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) a sparse-training experiment in `workdir`.

  Args:
    config: see the module docstring and `configs/sparse/`.
    workdir: where everything is written; rerunning resumes.

  Returns:
    The content of results.json: `method` (`config.name`, marked
    '(layerwise shuffle)' for shuffled prune-at-init masks),
    `target_sparsity`, `model`, `dataset`, `runs` (per seed: test accuracy
    at the end and at early stop, the early-stop step, the final masks'
    sparsity overall and per layer, training seconds, `inference_flops`:
    the multiply-adds of one example dense and at the final masks, and
    `training_flops`: those of the training as measured, against dense
    training of `train.steps` steps, both as `costs` gives them; for PDP
    the soft and hardened test accuracy at hardening) and `summary`
    (`sparse_report.summarize`).

  Raises:
    ValueError: for a bad config, a workdir holding another config, or
      non-finite pruning scores (naming the leaf).
    FloatingPointError: on a non-finite training loss.
  """
  # Setup: checks, data, pruner, trainer (compiled once for every seed);
  # the config is recorded once all of them passed.
  _check(config)
  dataset = checks.dataset(config)
  pruner = create(config.pruner)
  trainer = _trainer(config, dataset, pruner)
  variables = jax.eval_shape(trainer.init_variables, jax.random.key(0))
  init = trainer.wrapped(jax.random.key(0)).init
  jax.eval_shape(init, variables["params"])  # optimizer args
  wd.check_config(workdir, config)
  steps = config.train.steps
  log = wd.MetricsLog(workdir, ("seed", "step"))
  done_files = [
    os.path.join(workdir, f"seed{seed}", SEED_RESULT) for seed in config.seeds
  ]
  finished = sum(map(os.path.exists, done_files))
  bar = announce(workdir, TABLE, finished, len(done_files), "seeds", steps)
  runs = []
  # Seeds: finished ones are read back, the others trained or resumed.
  with bar:
    for index, seed in enumerate(config.seeds):
      directory = os.path.join(workdir, f"seed{seed}")
      done = os.path.join(directory, SEED_RESULT)
      if os.path.exists(done):
        with open(done) as f:
          runs.append(json.load(f))
        continue
      os.makedirs(directory, exist_ok=True)

      def progress(record, seed=seed, index=index):
        log.write({"seed": seed, **record})
        bar.advance(
          index * steps + record["step"],
          seed=seed,
          loss=f"{record['val_loss']:.3f}",
          acc=f"{record['test_accuracy']:.4f}",
        )

      record = _train(config, trainer, pruner, seed, directory, progress, bar)
      runs.append({"seed": seed, **record})
      wd.write_json(done, runs[-1])
      if wd.primary():
        shutil.rmtree(os.path.join(directory, "checkpoints"))
  # Results: per seed and over seeds, and the training curves.
  results = {
    "method": _label(config),
    "target_sparsity": config.get("sparsity", 0.0),
    "model": config.model.name,
    "dataset": config.dataset.name,
    "runs": runs,
    "summary": sparse_report.summarize(runs),
  }
  wd.write_json(os.path.join(workdir, RESULTS), results)
  wd.write_text(
    os.path.join(workdir, TABLE),
    f"# {results['method']}: {results['model']} on {results['dataset']}\n\n"
    + sparse_report.markdown([row(results, workdir)]),
  )
  if wd.primary():
    sparse_report.curves(
      log.records,
      os.path.join(workdir, PLOT),
      title=(
        f"{results['method']}: {config.model.name} on {config.dataset.name}"
      ),
      early_stop_from=config.early_stop_from,
    )
  return results


def trained(workdir: str, seed: int | None = None) -> tuple[Any, dict]:
  """The model a finished run trained, and its final variables.

  Args:
    workdir: the run's directory (its config.json names the model and
      dataset).
    seed: which seed's model (default: the config's first seed).

  Returns:
    `(model, variables)`: the `jaxprune.models` module built as the run
    built it, and `{'params': ...}` (and `batch_stats`) as `model.apply`
    takes them, pruned entries zero.

  Raises:
    FileNotFoundError: if that seed has not finished, naming the file.
  """
  with open(os.path.join(workdir, wd.CONFIG)) as f:
    config = json.load(f)
  seed = config["seeds"][0] if seed is None else seed
  path = os.path.join(workdir, f"seed{seed}", TRAINED)
  if not os.path.exists(path):
    raise FileNotFoundError(
      f"{path} is missing: seed {seed} of the run in {workdir} has not "
      "finished (rerun its launch command to resume it)"
    )
  data = config["dataset"]
  dataset = load(
    data["name"], seed=data["seed"], data_dir=data.get("data_dir") or None
  )
  model = get_model(**config["model"], num_classes=dataset.num_classes)
  variables, _ = wd.load_trained(path)
  return model, variables
