"""Lottery-ticket experiments: IMP rounds with rewinding, and controls.

For each seed in `config.seeds`: round 0 trains the dense net from theta_0;
each later round r trains the IMP mask m_r (from `next_masks` on round r-1's
trained weights) from the rewind point, `rewind(theta_k, m_r)`, starting at
step k = `config.rewind_step` with the data order and learning rate of step
k, and a fresh optimizer state. From round 1 on, two controls branch off
every round: 'reinit' trains m_r from a fresh initialisation (its own key),
'random_mask' trains a layerwise shuffle of m_r (same per-layer counts) from
the rewind point. theta_k comes from training the dense net k steps from
theta_0 with round 0's data order.

Config keys (see `configs/lottery/`), each used as named:
  dataset.name, dataset.seed, dataset.data_dir (optional; local files):
    `jaxprune.data.load(name, seed=seed, data_dir=data_dir)`.
  model.name: `jaxprune.models.get(name, num_classes=...)`.
  optimizer.name, optimizer.learning_rate, any other optimizer.*: the optax
    factory `optax.<name>(learning_rate=..., **others)`.
  train.steps, train.batch_size, train.eval_every,
    train.steps_per_dispatch, train.checkpoint_every,
    train.eval_batch_size: steps per round (an absolute step) and the
    `jaxprune.train.Trainer` arguments of the same names.
  pruning.rate, pruning.rates, pruning.layerwise: `next_masks` arguments;
    pruning.exclude: `Policy(exclude=...)`, leaves never pruned.
  rounds: trainings of the IMP arm, round 0 (dense) included.
  rewind_step: k, the step rewound to.
  arms: a subset of ('imp', 'reinit', 'random_mask'); 'imp' is required.
  seeds: replicates; a seed sets theta_0, the data order and the controls'
    keys.

The whole config is checked, the data loaded and the trainer built before
anything is written, so a config that cannot run leaves the workdir as it
was. The workdir holds config.json, metrics.jsonl (every evaluation),
results.json, results.md, lottery.png, TensorBoard events under tensorboard/
(when tensorboardX is importable) and, per seed: the IMP masks of every
round (`masks_round<r>.npz`), the record of every training
(`<arm>_round<r>.json`) and its final weights and masks
(`<arm>_round<r>.npz`, read back with `workdir.load_trained`), and the
checkpoints of the training under way. A rerun skips finished trainings and
resumes an interrupted one from its latest checkpoint, saying where.
"""

import contextlib
import functools
import json
import os
import shutil
from typing import Any

import jax
import ml_collections

from jaxprune.algorithms import fixed, lottery
from jaxprune.core.policy import Policy
from jaxprune.core.summary import summary
from jaxprune.experiments import checks, costs, lottery_report
from jaxprune.experiments import workdir as wd
from jaxprune.experiments.progress import announce
from jaxprune.train import Trainer
from jaxprune.train.checkpoints import Checkpoints
from jaxprune.transform import masks_of

ARMS = ("imp", "reinit", "random_mask")
RESULTS = "results.json"
TABLE = "results.md"
PLOT = "lottery.png"
TRAINED = "{arm}_round{round:02d}.npz"
"""A training's final weights and masks, in its seed's folder."""

try:
  import tensorboardX
except ImportError:  # TensorBoard events are optional.
  tensorboardX = None


def _check(config: ml_collections.ConfigDict) -> None:
  arms = tuple(config.arms)
  unknown = sorted(set(arms) - set(ARMS))
  if unknown or "imp" not in arms:
    raise ValueError(
      f"config.arms = {arms}: expected 'imp' and any of {ARMS}; "
      f"unknown: {unknown}"
    )
  if config.rounds < 1:
    raise ValueError(f"config.rounds = {config.rounds}: expected >= 1")
  if not 0 <= config.rewind_step < config.train.steps:
    raise ValueError(
      f"config.rewind_step = {config.rewind_step}: expected a step in "
      f"[0, train.steps = {config.train.steps})"
    )
  if not config.seeds:
    raise ValueError("config.seeds is empty: give at least one seed")
  checks.positive("train.steps", config.train.steps)
  checks.fraction("pruning.rate", config.pruning.rate)
  for pattern, rate in config.pruning.rates.items():
    checks.fraction(f"pruning.rates[{pattern!r}]", rate)


def _dry_run(config, trainer, policy) -> None:
  """Traces a round's pruning and the optimizer's set-up on abstract
  params, so that their arguments are checked before anything trains."""
  variables = jax.eval_shape(trainer.init_variables, jax.random.key(0))

  def prune(params):
    masks = masks_of(trainer.tx.init(params))
    return _next_masks(config, params, masks, policy)

  jax.eval_shape(prune, variables["params"])


def _next_masks(config, params, masks, policy):
  return lottery.next_masks(
    params,
    masks,
    config.pruning.rate,
    policy=policy,
    layerwise=config.pruning.layerwise,
    rates=config.pruning.rates.to_dict(),
  )


def _trainer(config, dataset, policy) -> Trainer:
  opt = config.optimizer.to_dict()
  factory = checks.optax_function("optimizer", opt.pop("name"), opt)
  learning_rate = opt.pop("learning_rate")
  t = config.train
  return Trainer(
    checks.model(config, dataset.num_classes),
    dataset,
    pruner=fixed(policy=policy),
    optimizer=functools.partial(factory, **opt),
    learning_rate=learning_rate,
    batch_size=t.batch_size,
    eval_every=t.eval_every,
    steps_per_dispatch=t.steps_per_dispatch,
    checkpoint_every=t.checkpoint_every,
    eval_batch_size=t.eval_batch_size,
    parallel=config.parallel,
    shard_params=config.shard_params,
  )


class _Reporter:
  """Progress bar, metrics.jsonl and TensorBoard for one training."""

  def __init__(self, workdir, bar, start):
    self.log = wd.MetricsLog(workdir, ("seed", "arm", "round", "step"))
    self.workdir = workdir
    self.bar = bar
    self.start = start
    self.writer = None
    self.tags = {}

  def begin(self, seed, arm, rnd, remaining, done_before):
    self.tags = {"seed": seed, "arm": arm, "round": rnd}
    self.remaining = remaining
    self.done_before = done_before
    if tensorboardX is not None and wd.primary():
      logdir = os.path.join(
        self.workdir, "tensorboard", f"seed{seed}", arm, f"round{rnd:02d}"
      )
      self.writer = tensorboardX.SummaryWriter(logdir)

  def __call__(self, record):
    full = {**self.tags, "remaining": self.remaining, **record}
    if self.log.write(full) and self.writer is not None:
      for name, value in record.items():
        if name != "step" and value is not None:
          self.writer.add_scalar(name, value, record["step"])
    self.bar.advance(
      self.done_before + record["step"] - self.start,
      seed=self.tags["seed"],
      round=self.tags["round"],
      arm=self.tags["arm"],
      loss=f"{record['val_loss']:.3f}",
      acc=f"{record['test_accuracy']:.4f}",
      remaining=f"{100 * self.remaining:.1f}%",
    )

  def end(self):
    if self.writer is not None:
      self.writer.close()
      self.writer = None


def _record(trainer, result, masks, seed, arm, rnd, steps) -> dict:
  counts = summary(masks)
  early = result.early_stop
  return {
    "seed": seed,
    "arm": arm,
    "round": rnd,
    "remaining": counts.density,
    "kept": counts.kept,
    "size": counts.size,
    "layers": {
      r.path: {"kept": r.kept, "size": r.size, "remaining": 1 - r.sparsity}
      for r in counts.rows
    },
    "early_stop_step": early["step"],
    "early_stop_val_loss": early["val_loss"],
    "early_stop_test_accuracy": early["test_accuracy"],
    "final_step": result.final["step"],
    "final_test_accuracy": result.final["test_accuracy"],
    "inference_flops": costs.inference(trainer, masks),
    "training_flops": costs.training(trainer, result.history, steps),
  }


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) a lottery-ticket experiment in `workdir`.

  Args:
    config: see the module docstring and `configs/lottery/`.
    workdir: where everything is written; rerunning resumes.

  Returns:
    The content of results.json: `runs`, one record per training (seed,
    arm, round, weights remaining overall and per layer, early-stop step,
    test accuracy there and at the end, `inference_flops` of one example
    at its masks and `training_flops` of its steps against dense training
    of as many, as `costs` gives them), and `summary`, the means and
    spreads over seeds per arm and round.

  Raises:
    ValueError: for a bad config, or a workdir holding another config.
    FloatingPointError: on a non-finite training loss.
  """
  # Setup: checks, data, model, trainer (compiled once for every round and
  # arm); the config is recorded once all of them passed.
  _check(config)
  dataset = checks.dataset(config)
  policy = Policy(exclude=tuple(config.pruning.exclude))
  trainer = _trainer(config, dataset, policy)
  _dry_run(config, trainer, policy)
  wd.check_config(workdir, config)
  steps, k = config.train.steps, config.rewind_step
  arms = [a for a in ARMS if a in config.arms]
  plan = [
    (seed, rnd, arm)
    for seed in config.seeds
    for rnd in range(config.rounds)
    for arm in arms
    if rnd > 0 or arm == "imp"
  ]
  seed_dir = lambda seed: os.path.join(workdir, f"seed{seed}")
  done_file = lambda seed, arm, rnd: os.path.join(
    seed_dir(seed), f"{arm}_round{rnd:02d}.json"
  )
  runs = []
  finished = sum(os.path.exists(done_file(s, a, r)) for s, r, a in plan)
  bar = announce(workdir, TABLE, finished, len(plan), "trainings", steps - k)
  reporter = _Reporter(workdir, bar, k)
  points = {}
  # The next round's masks, kept in memory too: on several hosts only the
  # first writes them, and the others must not wait for the file.
  next_tickets = {}
  # Rounds: IMP first in each round, its trained weights give the next mask.
  with bar:
    for index, (seed, rnd, arm) in enumerate(plan):
      done = done_file(seed, arm, rnd)
      if os.path.exists(done):
        with open(done) as f:
          runs.append(json.load(f))
        continue
      os.makedirs(seed_dir(seed), exist_ok=True)
      key = jax.random.key(seed)
      if seed not in points:
        theta_0 = trainer.init_variables(jax.random.fold_in(key, 0))
        theta_k = _rewind_point(trainer, theta_0, seed, k, seed_dir(seed))
        points[seed] = theta_0, theta_k
      theta_0, theta_k = points[seed]
      ticket = masks_of(trainer.tx.init(theta_0["params"]))
      if (seed, rnd) in next_tickets:
        ticket = next_tickets[seed, rnd]
      elif rnd > 0:
        ticket = wd.load_tree(
          os.path.join(seed_dir(seed), f"masks_round{rnd:02d}.npz"), ticket
        )
      if arm == "reinit":
        masks = ticket
        params = lottery.random_reinit(
          lambda key: trainer.init_variables(key)["params"],
          ticket,
          jax.random.fold_in(jax.random.fold_in(key, 1), rnd),
        )
        start = dict(theta_0, params=params)
      else:
        masks = ticket
        if arm == "random_mask":
          masks = lottery.shuffle(
            ticket, jax.random.fold_in(jax.random.fold_in(key, 2), rnd)
          )
        start = dict(theta_k, params=lottery.rewind(theta_k["params"], masks))
      state = trainer.init(start, masks, seed=seed, step=k)
      reporter.begin(
        seed, arm, rnd, summary(masks).density, index * (steps - k)
      )
      ckpt_dir = os.path.join(seed_dir(seed), "checkpoints", f"{arm}_{rnd:02d}")
      if os.path.isdir(ckpt_dir):
        with Checkpoints(ckpt_dir) as ckpt:
          if ckpt.latest_step() is not None:
            bar.write(
              f"resuming seed {seed}, round {rnd}, arm {arm} from step "
              f"{ckpt.latest_step()} (checkpoint in {ckpt_dir})"
            )
      try:
        result = trainer.fit(
          state, steps, checkpoint_dir=ckpt_dir, callback=reporter
        )
      finally:
        reporter.end()
      if arm == "imp" and rnd + 1 < config.rounds:
        following = _next_masks(config, result.state.params, masks, policy)
        wd.save_tree(
          os.path.join(seed_dir(seed), f"masks_round{rnd + 1:02d}.npz"),
          following,
        )
        next_tickets[seed, rnd + 1] = following
      runs.append(_record(trainer, result, masks, seed, arm, rnd, steps - k))
      wd.save_trained(
        os.path.join(seed_dir(seed), TRAINED.format(arm=arm, round=rnd)),
        result.state.variables,
        masks,
      )
      wd.write_json(done, runs[-1])
      if wd.primary():
        shutil.rmtree(ckpt_dir)
        with contextlib.suppress(OSError):  # the last one: no folder left
          os.rmdir(os.path.dirname(ckpt_dir))
      _write_results(workdir, runs)
  results = _write_results(workdir, runs)
  if wd.primary():
    lottery_report.plot(
      results["summary"],
      os.path.join(workdir, PLOT),
      title=f"{config.model.name} on {config.dataset.name}",
    )
  return results


def _rewind_point(trainer, theta_0, seed, k, directory):
  """theta_k: theta_0 trained k steps (dense, round 0's data), cached."""
  if k == 0:
    return theta_0
  path = os.path.join(directory, f"rewind_step{k}.npz")
  if os.path.exists(path):
    return wd.load_tree(path, theta_0)
  theta_k = trainer.fit(trainer.init(theta_0, seed=seed), k).state.variables
  wd.save_tree(path, theta_k)
  return theta_k


def _write_results(workdir, runs) -> dict:
  ordered = sorted(runs, key=lambda r: (r["seed"], r["round"], r["arm"]))
  rows = lottery_report.summarize(ordered)
  results = {"runs": ordered, "summary": rows}
  wd.write_json(os.path.join(workdir, RESULTS), results)
  wd.write_text(os.path.join(workdir, TABLE), lottery_report.table(rows))
  return results
