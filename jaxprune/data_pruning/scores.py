"""Per-example difficulty scores of a training set, computed in batches.

Each score maps `n` examples to `n` floats, larger meaning harder:

- `el2n`: the L2 distance between the softmax output and the one-hot label
  (Paul et al. 2021); average it over several independently trained models
  (`jnp.mean(jnp.stack([...]), 0)`), scored early in their training.
- `grand`: the L2 norm, over every param, of the per-example gradient of
  the cross-entropy loss (vmapped over a chunk of examples, so that at most
  `batch_size` per-example gradients are held at once); `grand_dense`, the
  same for networks of Dense layers from one backward pass per batch (no
  per-example gradient is formed: about 40x faster for LeNet-300-100).
- `input_norm`: the L2 norm of the input, the baseline GraNd at
  initialisation is known to follow (Kirsch 2023).
- `random_scores`: uniform draws, the random-pruning baseline.

Forgetting counts, which need the whole training run, are in
`jaxprune.data_pruning.forgetting`.

`apply_fn(params, images) -> logits` is the model in inference mode; pass
the same function object on every call, so that the compiled scorer is
reused (`jit` keys its cache on it).
"""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxprune.core.types import Params

ApplyFn = Callable[[Params, jax.Array], jax.Array]


def _map_batches(fn, images, labels, batch_size: int) -> jax.Array:
  """`fn(images, labels) -> (b,)` over consecutive batches of `batch_size`.

  Batches are sliced from the arrays in place (a reshape into batches
  costs a copy of the data: EL2N took 2.6x an evaluation pass with one);
  the last batch is the last `batch_size` examples, overlapping the one
  before it, whose overlapping scores it recomputes identically.
  """
  n = labels.shape[0]
  size = min(batch_size, n)

  def body(i, out):
    start = jnp.minimum(i * size, n - size)
    x = jax.lax.dynamic_slice_in_dim(images, start, size)
    y = jax.lax.dynamic_slice_in_dim(labels, start, size)
    return jax.lax.dynamic_update_slice_in_dim(out, fn(x, y), start, 0)

  return jax.lax.fori_loop(0, -(-n // size), body, jnp.zeros(n, jnp.float32))


@functools.partial(jax.jit, static_argnames=("apply_fn", "batch_size"))
def el2n(
  apply_fn: ApplyFn,
  params: Params,
  images: jax.Array,
  labels: jax.Array,
  *,
  batch_size: int = 1000,
) -> jax.Array:
  """EL2N scores: `|| softmax(f(x)) - onehot(y) ||_2` per example.

  Args:
    apply_fn: `(params, images) -> logits`.
    params: the model's params.
    images: `(n, ...)` inputs.
    labels: `(n,)` int labels.
    batch_size: examples per forward pass.

  Returns:
    `(n,)` float32 scores in `[0, sqrt(2)]`.

  >>> import jax.numpy as jnp
  >>> apply_fn = lambda p, x: x @ p
  >>> scores = el2n(apply_fn, jnp.eye(2), jnp.array([[9., -9.], [0., 0.]]),
  ...   jnp.array([0, 1]))
  >>> [round(float(s), 4) for s in scores]
  [0.0, 0.7071]
  """

  def batch(x, y):
    probs = jax.nn.softmax(apply_fn(params, x).astype(jnp.float32))
    onehot = jax.nn.one_hot(y, probs.shape[-1], dtype=probs.dtype)
    return jnp.linalg.norm(probs - onehot, axis=-1)

  return _map_batches(batch, images, labels, batch_size)


@functools.partial(jax.jit, static_argnames=("apply_fn", "batch_size"))
def grand(
  apply_fn: ApplyFn,
  params: Params,
  images: jax.Array,
  labels: jax.Array,
  *,
  batch_size: int = 128,
) -> jax.Array:
  """GraNd scores: the norm of each example's loss gradient.

  The loss is the softmax cross-entropy of one example; the norm is taken
  over all params together.

  Args:
    apply_fn: `(params, images) -> logits`.
    params: the model's params.
    images: `(n, ...)` inputs.
    labels: `(n,)` int labels.
    batch_size: examples whose gradients are computed (and held) at once.

  Returns:
    `(n,)` float32 scores.

  >>> import jax.numpy as jnp
  >>> apply_fn = lambda p, x: x @ p
  >>> # Logits 0: the gradient is x (softmax - onehot) = x (0.5, -0.5).
  >>> scores = grand(apply_fn, jnp.zeros((2, 2)), jnp.array([[3., 4.]]),
  ...   jnp.array([1]))
  >>> round(float(scores[0]), 4)
  3.5355
  """

  def norm(x, y):
    def loss(p):
      logits = apply_fn(p, x[None])
      return optax.softmax_cross_entropy_with_integer_labels(logits, y[None])[0]

    grads = jax.grad(loss)(params)
    leaves = jax.tree.leaves(grads)
    return jnp.sqrt(
      sum(jnp.sum(jnp.square(g.astype(jnp.float32))) for g in leaves)
    )

  return _map_batches(jax.vmap(norm), images, labels, batch_size)


def _dense_layers(model, params, x):
  """Runs `model` on `x`, adding `offsets[path]` to the output of each
  `nn.Dense`; returns the logits and each Dense's input, by path."""

  def run(offsets):
    inputs = {}

    def intercept(next_fun, args, kwargs, context):
      module = context.module
      if not (
        isinstance(module, nn.Dense) and context.method_name == "__call__"
      ):
        return next_fun(*args, **kwargs)
      if module.path in inputs:
        raise ValueError(
          f"grand_dense: layer {'/'.join(module.path)} is called twice; "
          "use grand"
        )
      inputs[module.path] = args[0]
      out = next_fun(*args, **kwargs)
      return out if offsets is None else out + offsets[module.path]

    with nn.intercept_methods(intercept):
      logits = model.apply({"params": params}, x, train=False)
    return logits, inputs

  return run


@functools.partial(jax.jit, static_argnames=("model", "batch_size"))
def grand_dense(
  model: nn.Module,
  params: Params,
  images: jax.Array,
  labels: jax.Array,
  *,
  batch_size: int = 1000,
) -> jax.Array:
  """GraNd of a network of `nn.Dense` layers, without per-example
  gradients.

  A Dense layer maps each example's input `x` to `x W + b`, so the
  example's gradient with respect to `W` is the outer product of `x` and
  the loss gradient `d` at the layer's output: its squared norm is
  `|x|^2 |d|^2`, and the bias gradient's is `|d|^2`. `d` comes from one
  backward pass per batch, through zero offsets added to every layer's
  output. Equal to `grand` (up to rounding) when every param belongs to a
  Dense layer applied once to `(batch, features)` inputs.

  Args:
    model: the linen module (`model.apply(variables, x, train=False)`).
    params: its params.
    images: `(n, ...)` inputs.
    labels: `(n,)` int labels.
    batch_size: examples per backward pass.

  Returns:
    `(n,)` float32 scores.

  Raises:
    ValueError: if some param is outside the Dense layers, a Dense layer
      is called twice or on inputs that are not `(batch, features)`.
  """
  covered = 0

  def batch(x, y):
    nonlocal covered
    run = _dense_layers(model, params, x)
    shapes = jax.eval_shape(lambda: run(None)[1])
    offsets = {
      path: jnp.zeros(v.shape[:-1] + (model_output(path),), v.dtype)
      for path, v in shapes.items()
    }
    for path, v in shapes.items():
      if len(v.shape) != 2:
        raise ValueError(
          f"grand_dense: layer {'/'.join(path)} has inputs of shape "
          f"{v.shape}, not (batch, features); use grand"
        )

    def loss(offsets):
      logits, inputs = run(offsets)
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, y)
      return jnp.sum(losses), inputs

    deltas, inputs = jax.grad(loss, has_aux=True)(offsets)
    total = 0.0
    covered = 0
    for path, d in deltas.items():
      layer = _at(params, path)
      covered += len(layer)
      d2 = jnp.sum(jnp.square(d.astype(jnp.float32)), -1)
      x2 = jnp.sum(jnp.square(inputs[path].astype(jnp.float32)), -1)
      total = total + d2 * (x2 + ("bias" in layer))
    return jnp.sqrt(total)

  def model_output(path):
    return _at(params, path)["kernel"].shape[-1]

  scores = _map_batches(batch, images, labels, batch_size)
  leaves = len(jax.tree.leaves(params))
  if covered != leaves:
    raise ValueError(
      f"grand_dense: {leaves - covered} of the {leaves} param leaves are "
      "outside Dense layers; use grand"
    )
  return scores


def _at(params, path):
  for name in path:
    params = params[name]
  return params


@jax.jit
def input_norm(images: jax.Array) -> jax.Array:
  """The L2 norm of each input, over all its axes but the first.

  >>> import jax.numpy as jnp
  >>> input_norm(jnp.array([[3., 4.], [0., 1.]])).tolist()
  [5.0, 1.0]
  """
  flat = images.reshape(images.shape[0], -1).astype(jnp.float32)
  return jnp.linalg.norm(flat, axis=-1)


def random_scores(key: jax.Array, num_examples: int) -> jax.Array:
  """Uniform scores in `[0, 1)` from `key`: random pruning.

  >>> random_scores(jax.random.key(0), 3).shape
  (3,)
  """
  return jax.random.uniform(key, (num_examples,))
