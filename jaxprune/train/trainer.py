"""The trainer experiments share: masked training, several steps a dispatch.

One compiled function runs a chunk of steps with `lax.scan` over batch
indices, the training set held on device. Masks live in the optimizer state
(`jaxprune.wrap`), so new masks, rewinds and fresh optimizer states reuse the
same compiled step. The batch of step t depends on t only
(`jaxprune.train.order`) and the learning rate is a function of t, so a run
resumed or rewound to step k continues exactly as an uninterrupted one.

Every step that may change the masks also returns their new kept counts
per leaf, so that the training's multiply-adds are measured at the masks
in force step by step (`jaxprune.train.cost`).

Every `eval_every` steps (and at the first and last step) the whole
validation and test splits are evaluated; every `checkpoint_every` steps the
state and the evaluations so far are checkpointed; `fit` resumes from the
latest checkpoint of its directory.
"""

import copy
import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxprune.compact.flops import Flops, flops
from jaxprune.core.tree import apply_masks
from jaxprune.core.types import Masks, Params
from jaxprune.data import Dataset
from jaxprune.train import evaluation
from jaxprune.train.checkpoints import Checkpoints
from jaxprune.train.cost import ForwardCost, in_force, kept_counts
from jaxprune.train.order import batch_indices
from jaxprune.train.parallel import layout
from jaxprune.transform import (
  check,
  forward,
  masks_of,
  set_masks,
  state_of,
  wrap,
)


@flax.struct.dataclass
class TrainState:
  """What a training run carries from step to step.

  Attributes:
    step: updates done so far (the data and learning-rate position).
    seed: the data order's seed (`jaxprune.train.order`).
    params: the model's params, masked.
    batch_stats: BatchNorm statistics, `{}` for models without them.
    opt_state: the wrapped optimizer's state, masks included.
    extra: what the trainer's `example_hook` carries (None without one).
  """

  step: jax.Array
  seed: jax.Array
  params: Params
  batch_stats: Any
  opt_state: Any
  extra: Any = None

  @property
  def variables(self) -> dict:
    """The model variables for `model.apply`, in inference mode."""
    params = forward(self.params, self.opt_state)
    if self.batch_stats:
      return {"params": params, "batch_stats": self.batch_stats}
    return {"params": params}


@dataclasses.dataclass(frozen=True)
class FitResult:
  """The outcome of `Trainer.fit`.

  Attributes:
    state: the state after the last step.
    history: one record per evaluation: `step`, `train_loss` (mean since
      the previous record; None for the first), `train_macs` (the
      training's multiply-adds since the state `fit` was first given, by
      the RigL paper's accounting: see `Trainer.flops`), `val_loss`,
      `val_accuracy`, `test_loss`, `test_accuracy`.
  """

  state: TrainState
  history: list[dict]

  @property
  def early_stop(self) -> dict:
    """The record of minimum validation loss (the earliest if tied)."""
    return min(self.history, key=lambda r: r["val_loss"])

  @property
  def final(self) -> dict:
    """The record of the last step."""
    return self.history[-1]


def _with_learning_rate(opt_state, learning_rate):
  inner = opt_state.inner_state
  hyper = dict(inner.hyperparams)
  hyper["learning_rate"] = jnp.asarray(
    learning_rate, hyper["learning_rate"].dtype
  )
  return opt_state.replace(inner_state=inner._replace(hyperparams=hyper))


def _checked_subset(subset, num_train: int) -> np.ndarray:
  """`subset` as int32 indices, after checking they are distinct training
  examples."""
  subset = np.asarray(subset)
  if (
    subset.ndim != 1
    or not subset.size
    or not np.issubdtype(subset.dtype, np.integer)
  ):
    raise ValueError(
      f"subset: expected a non-empty vector of integer indices; got shape "
      f"{subset.shape}, dtype {subset.dtype}"
    )
  if subset.min() < 0 or subset.max() >= num_train:
    raise ValueError(
      f"subset: indices must lie in [0, {num_train}) (the training split); "
      f"got [{subset.min()}, {subset.max()}]"
    )
  if len(np.unique(subset)) != len(subset):
    raise ValueError("subset: indices must be distinct; got repeats")
  return subset.astype(np.int32)


class Trainer:
  """Trains a Flax classifier under a pruner on an in-memory dataset.

  Labels may also be sequences (a language model's next tokens, one label
  per input token, `jaxprune.data.text.char_lm`): the loss and the
  evaluation's loss and accuracy are then means over tokens, so a
  validation loss `l` (nats) is a perplexity `exp(l)` and `l / ln 2` bits
  per token.

  Args:
    model: a linen module called as `model.apply(variables, x, train=...)`.
    dataset: train, validation and test splits.
    pruner: the pruner `jaxprune.wrap` runs (for IMP rounds
      `jaxprune.algorithms.fixed`, masks set per round).
    optimizer: an optax factory taking `learning_rate` (e.g. `optax.adam`).
    learning_rate: a float, or a schedule of the step.
    batch_size: training examples per step.
    eval_every: steps between evaluations.
    steps_per_dispatch: steps run by one call of the compiled chunk
      (default `eval_every`); 1 runs a plain step, with no loop (best for
      conv nets on CPU).
    checkpoint_every: steps between checkpoints, a multiple of
      `eval_every` (default: `eval_every`).
    eval_batch_size: examples per evaluation batch (rounded up to a
      multiple of the device count; padding never counts).
    parallel: 'none' (one device), 'pmap' (a replica per local device) or
      'sharded' (`jit` over every host's devices); see
      `jaxprune.train.parallel`. `batch_size` is the global batch, split
      evenly over the devices.
    devices: how many devices (default all; fewer on one host only).
    shard_params: with 'sharded', split large params, masks and optimizer
      moments over the devices instead of replicating them.
    subset: indices of the training examples to train on (data pruning);
      the data order (`jaxprune.train.order`) runs over them. Default all.
    example_hook: `(extra, indices, correct) -> extra`, called inside every
      training step with the batch's example indices and whether the model
      (before the step's update, in inference mode) classifies each one
      correctly; `extra` is `TrainState.extra`, set by `init`. One device
      only. None (the default) adds nothing to the step.

  >>> import optax, jaxprune
  >>> from jaxprune import data, models
  >>> trainer = Trainer(models.LeNet300(), data.load('digits', seed=0),
  ...   pruner=jaxprune.algorithms.fixed(), optimizer=optax.adam,
  ...   learning_rate=1e-3, batch_size=32, eval_every=10)
  >>> state = trainer.init(trainer.init_variables(jax.random.key(0)), seed=0)
  >>> result = trainer.fit(state, 20)
  >>> [r['step'] for r in result.history]
  [0, 10, 20]
  """

  def __init__(
    self,
    model: nn.Module,
    dataset: Dataset,
    *,
    pruner: Any,
    optimizer: Callable[..., optax.GradientTransformation],
    learning_rate: float | optax.Schedule,
    batch_size: int,
    eval_every: int,
    steps_per_dispatch: int | None = None,
    checkpoint_every: int | None = None,
    eval_batch_size: int = 1000,
    parallel: str = "none",
    devices: int | None = None,
    shard_params: bool = False,
    subset: np.ndarray | None = None,
    example_hook: Callable[[Any, jax.Array, jax.Array], Any] | None = None,
  ):
    steps_per_dispatch = steps_per_dispatch or eval_every
    checkpoint_every = checkpoint_every or eval_every
    for name, value in [
      ("batch_size", batch_size),
      ("eval_every", eval_every),
      ("steps_per_dispatch", steps_per_dispatch),
      ("checkpoint_every", checkpoint_every),
      ("eval_batch_size", eval_batch_size),
    ]:
      if not (isinstance(value, int) and value >= 1):
        raise ValueError(f"{name} = {value!r}: expected a positive integer")
    if checkpoint_every % eval_every:
      raise ValueError(
        f"checkpoint_every = {checkpoint_every} must be a multiple of "
        f"eval_every = {eval_every} (checkpoints hold whole eval intervals)"
      )
    self.model = model
    self.dataset = dataset
    self.pruner = pruner
    self.batch_size = batch_size
    self.eval_every = eval_every
    self.steps_per_dispatch = steps_per_dispatch
    self.checkpoint_every = checkpoint_every
    self._schedule = (
      learning_rate if callable(learning_rate) else lambda _: learning_rate
    )
    inner = optax.inject_hyperparams(optimizer)(
      learning_rate=float(self._schedule(0))
    )
    # `wrapped(key)`: the wrapped optimizer whose `init` draws the initial
    # masks from `key`; `self.tx` (no key) serves every state's update.
    self.wrapped = lambda key: wrap(inner, pruner, key=key)
    self.tx = self.wrapped(None)
    self.layout = layout(
      parallel, batch_size, devices=devices, shard_params=shard_params
    )
    self._images = self.layout.data(dataset.train.images)
    self._labels = self.layout.data(dataset.train.labels)
    self._num_train = len(dataset.train.labels)
    self._subset = (
      None if subset is None else _checked_subset(subset, self._num_train)
    )
    if example_hook is not None and parallel != "none":
      raise ValueError(
        f"example_hook needs parallel = 'none' (one device); got {parallel!r}"
      )
    self._example_hook = example_hook
    devices = self.layout.size
    eval_size = -(-eval_batch_size // devices) * devices
    self._val, self._test = (
      self.layout.eval_data(evaluation.batched(split, eval_size))
      for split in (dataset.validation, dataset.test)
    )
    # Per device: the state and the batch positions; shared: the data.
    self.train_chunk = self.layout.compile(
      self._train_chunk, mapped=(True, False, False, True, False)
    )
    self._evaluate = self.layout.compile(
      self._evaluate_splits, mapped=(True, True, True, True)
    )

  def with_subset(self, subset: np.ndarray | None) -> "Trainer":
    """This trainer, training on `subset` (None: every example) instead;
    the compiled step and evaluation are shared, not compiled again."""
    new = copy.copy(self)
    new._subset = (
      None if subset is None else _checked_subset(subset, self._num_train)
    )
    return new

  @functools.cached_property
  def flops(self) -> Flops:
    """Multiply-adds of one example's forward pass at full density, per
    layer (`jaxprune.flops`, traced on abstract variables).

    A step at masks whose forward costs f multiply-adds an example costs
    `batch_size * 3 f` (forward, and a backward pass of twice that), and
    `batch_size * (2 f + flops.dense)` when the pruner's update reads the
    dense gradient (its `dense_gradient(step)`: RigL's and GraNet's
    regrowth): the RigL paper's accounting of the records' `train_macs`.
    """
    variables = jax.eval_shape(self.init_variables, jax.random.key(0))
    x = jax.ShapeDtypeStruct((1,) + self._images.shape[1:], self._images.dtype)
    # The other collections (BatchNorm statistics) enter as constants.
    others = {
      k: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), v)
      for k, v in variables.items()
      if k != "params"
    }
    apply = lambda p, x: self.model.apply({"params": p, **others}, x)
    return flops(apply, variables["params"], None, x)

  def init_variables(self, key: jax.Array) -> dict:
    """The model's initial variables from `key`."""
    x = jnp.zeros((1,) + self._images.shape[1:], self._images.dtype)
    return dict(self.model.init(key, x))

  def init(
    self,
    variables: dict,
    masks: Masks | None = None,
    *,
    seed: int,
    step: int = 0,
    key: jax.Array | None = None,
    extra: Any = None,
  ) -> TrainState:
    """A state at `step` with a fresh optimizer state and `masks`.

    Args:
      variables: `{'params': ..., 'batch_stats': ...}` (the latter only for
        BatchNorm models).
      masks: masks to train under (default: the pruner's initial ones).
      seed: the data order's seed.
      step: the data and learning-rate position to start from.
      key: the pruner's `jax.random` key (random masks, drawn here, and
        SET growth); none: all zeros.
      extra: the `example_hook`'s initial carry.

    Returns:
      The state, its params multiplied by the masks.
    """
    params = variables["params"]
    # The key is given before the state is built: `init` draws random masks
    # from it. Only `init` reads the key `wrap` holds, so the compiled
    # step of `self.tx` serves states made with any key.
    opt_state = self.wrapped(key).init(params)
    if masks is not None:
      opt_state = set_masks(opt_state, masks)
    return TrainState(
      step=jnp.asarray(step, jnp.int32),
      seed=jnp.asarray(seed, jnp.int32),
      params=apply_masks(params, masks_of(opt_state)),
      batch_stats=variables.get("batch_stats", {}),
      opt_state=opt_state,
      extra=extra,
    )

  def _loss(self, params, batch_stats, images, labels):
    variables = {"params": params}
    if batch_stats:
      variables["batch_stats"] = batch_stats
      logits, new = self.model.apply(
        variables, images, train=True, mutable=["batch_stats"]
      )
      batch_stats = new["batch_stats"]
    else:
      logits = self.model.apply(variables, images, train=True)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.mean(loss), batch_stats

  def _train_chunk(self, state, images, labels, indices, active):
    def train(state, batch):
      opt_state = _with_learning_rate(
        state.opt_state, self._schedule(state.step)
      )

      # The loss goes through `forward`, so soft masks (PDP) get their
      # gradient too; for hard masks `forward` is the identity.
      def loss_fn(params, *args):
        return self._loss(forward(params, opt_state), *args)

      grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
      (loss, batch_stats), grads = grad_fn(
        state.params,
        state.batch_stats,
        self.layout.constrain(images[batch]),
        self.layout.constrain(labels[batch]),
      )
      if self.layout.axis_name:
        # Each replica saw its share of the batch: the optimizer and the
        # pruner see the whole batch's loss, gradient and statistics.
        loss, grads, batch_stats = jax.lax.pmean(
          (loss, grads, batch_stats), self.layout.axis_name
        )
      extra = state.extra
      if self._example_hook is not None:
        logits = self.model.apply(state.variables, images[batch], train=False)
        correct = jnp.argmax(logits, -1) == labels[batch]
        extra = self._example_hook(extra, batch, correct)
      updates, opt_state = self.tx.update(grads, opt_state, state.params)
      # What the step costs: whether its update reads the dense gradient
      # and, where it may change the masks, the new masks' kept counts
      # (counted on update steps only: a count every step, reading the
      # masks beside the update, made a LeNet step 25% slower).
      pruner_step = state_of(state.opt_state).step  # from 0 at `init`
      update = self.pruner.is_update_step(pruner_step)
      counts = no_counts(opt_state)
      if update is not False:
        counts = jax.lax.cond(
          update, kept_counts, lambda _: counts, masks_of(opt_state)
        )
      cost = (
        jnp.asarray(update, bool),
        counts,
        jnp.asarray(dense_gradient(pruner_step), bool),
      )
      new = TrainState(
        step=state.step + 1,
        seed=state.seed,
        params=optax.apply_updates(state.params, updates),
        batch_stats=batch_stats,
        opt_state=opt_state,
        extra=extra,
      )
      return new, (loss, *cost)

    dense_gradient = getattr(self.pruner, "dense_gradient", lambda _: False)

    def no_counts(opt_state):
      shape = jax.eval_shape(kept_counts, masks_of(opt_state)).shape
      return jnp.zeros(shape, jnp.int32)

    def skip(state, batch):
      del batch
      no = jnp.zeros((), bool)
      zero = jnp.zeros((), jnp.float32)
      return state, (zero, no, no_counts(state.opt_state), no)

    def one(state, xs):
      batch, on = xs
      return jax.lax.cond(on, train, skip, state, batch)

    if self.steps_per_dispatch == 1:
      # XLA:CPU runs convolutions inside loops and conditionals about 50x
      # slower than at top level: conv nets train one step per dispatch.
      state, out = train(state, indices[0])
      return state, jax.tree.map(lambda x: x[None], out)
    return jax.lax.scan(one, state, (indices, active))

  def _evaluate_splits(self, state, params, val, test):
    logits = lambda v, x: self.model.apply(v, x, train=False)
    variables = state.variables
    if params is not None:
      variables = {**variables, "params": params}
    return tuple(
      evaluation.evaluate(
        logits, variables, split, axis_name=self.layout.axis_name
      )
      for split in (val, test)
    )

  def _evaluate_placed(
    self, placed: TrainState, params: Params | None = None
  ) -> dict[str, float]:
    val, test = self._evaluate(placed, params, self._val, self._test)
    return {
      f"{split}_{name}": float(self.layout.local(value))
      for split, values in (("val", val), ("test", test))
      for name, value in values.items()
    }

  def evaluate(
    self, state: TrainState, params: Params | None = None
  ) -> dict[str, float]:
    """Loss and accuracy on the whole validation and test splits.

    Args:
      state: the model to evaluate (its effective params, `forward`).
      params: evaluate these params instead, used as they are, with the
        state's BatchNorm statistics (e.g. PDP's hard-masked model during
        the soft phase).
    """
    layout = self.layout
    return self._evaluate_placed(
      layout.place(state), None if params is None else layout.place(params)
    )

  def fit(
    self,
    state: TrainState,
    num_steps: int,
    *,
    checkpoint_dir: str | None = None,
    callback: Callable[[dict], None] | None = None,
  ) -> FitResult:
    """Trains from `state` until step `num_steps`.

    Args:
      state: where to start (from `init`); with a checkpoint in
        `checkpoint_dir` the latest checkpoint is resumed instead.
      num_steps: the step to stop at (an absolute step, not a count).
      checkpoint_dir: where to checkpoint; None for no checkpoints.
      callback: called with every new evaluation record (records after the
        resumed checkpoint are recomputed and passed again after a resume).

    Returns:
      The final state and every evaluation record.

    Raises:
      FloatingPointError: on a non-finite training loss, naming the step;
        the checkpoints written before it are kept.
    """
    callback = callback or (lambda record: None)
    ckpt = Checkpoints(checkpoint_dir) if checkpoint_dir else None
    layout = self.layout
    cost = ForwardCost(self.flops, masks_of(state.opt_state))
    state = layout.place(state)
    try:
      history = []
      if ckpt is not None and ckpt.latest_step() is not None:
        saved, meta = ckpt.restore(layout.saveable(state))
        state = layout.from_saved(saved)
        history = meta["history"]
      step, seed = int(layout.local(state.step)), int(layout.local(state.seed))
      kept = np.asarray(kept_counts(masks_of(layout.fetch(state).opt_state)))
      if not history:
        record = {"step": step, "train_loss": None, "train_macs": 0}
        history.append({**record, **self._evaluate_placed(state)})
        callback(history[-1])
      losses, macs = [], history[-1]["train_macs"]
      chunk = self.steps_per_dispatch
      while step < num_steps:
        stop = min(
          (step // chunk + 1) * chunk,
          (step // self.eval_every + 1) * self.eval_every,
          num_steps,
        )
        if self._subset is None:
          indices = batch_indices(
            seed, self._num_train, self.batch_size, step, chunk
          )
        else:
          indices = self._subset[
            batch_indices(seed, len(self._subset), self.batch_size, step, chunk)
          ]
        active = np.arange(chunk) < stop - step
        state, (chunk_losses, *out) = self.train_chunk(
          state,
          self._images,
          self._labels,
          layout.batches(indices),
          layout.shared(active),
        )
        chunk_losses = layout.local(chunk_losses)[: stop - step]
        bad = np.flatnonzero(~np.isfinite(chunk_losses))
        if bad.size:
          last = f" ({ckpt.latest_step()} in {ckpt.directory})" if ckpt else ""
          raise FloatingPointError(
            f"training loss is {chunk_losses[bad[0]]} at step "
            f"{step + bad[0]}; the last good checkpoint is kept{last}"
          )
        losses.extend(chunk_losses.tolist())
        changed, after, dense = (layout.local(x)[: stop - step] for x in out)
        counts, kept = in_force(kept, changed, after)
        macs += cost.training(counts, dense, self.batch_size)
        step = stop
        if step % self.eval_every and step != num_steps:
          continue
        record = {
          "step": step,
          "train_loss": float(np.mean(losses)),
          "train_macs": macs,
        }
        check(layout.fetch(state).opt_state)
        history.append({**record, **self._evaluate_placed(state)})
        losses = []
        callback(history[-1])
        if ckpt is not None and (
          step % self.checkpoint_every == 0 or step == num_steps
        ):
          # A copy: the save is asynchronous and `history` keeps growing.
          ckpt.save(step, layout.saveable(state), {"history": list(history)})
    finally:
      if ckpt is not None:
        ckpt.close()
    return FitResult(state=layout.fetch(state), history=history)
