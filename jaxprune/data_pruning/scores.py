"""Per-example difficulty scores of a training set, computed in batches.

Each score maps `n` examples to `n` floats, larger meaning harder:

- `el2n`: the L2 distance between the softmax output and the one-hot label
  (Paul et al. 2021); average it over several independently trained models
  (`jnp.mean(jnp.stack([...]), 0)`), scored early in their training.
- `grand`: the L2 norm, over every param, of the per-example gradient of
  the cross-entropy loss (vmapped over a chunk of examples, so that at most
  `batch_size` per-example gradients are held at once).
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

import jax
import jax.numpy as jnp
import optax

from jaxprune.core.types import Params

ApplyFn = Callable[[Params, jax.Array], jax.Array]


def _map_batches(fn, images, labels, batch_size: int) -> jax.Array:
  """`fn(images, labels) -> (b,)` over batches of `batch_size`, the last
  one padded with copies of the first example (their outputs dropped)."""
  n = labels.shape[0]
  batches = -(-n // batch_size)
  pad = batches * batch_size - n
  if pad:
    images = jnp.concatenate([images, jnp.repeat(images[:1], pad, 0)])
    labels = jnp.concatenate([labels, jnp.repeat(labels[:1], pad, 0)])
  shape = (batches, batch_size)
  out = jax.lax.map(
    lambda xs: fn(*xs),
    (images.reshape(shape + images.shape[1:]), labels.reshape(shape)),
  )
  return out.reshape(-1)[:n]


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
