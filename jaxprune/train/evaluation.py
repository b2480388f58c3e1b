"""Evaluation over a whole split: padded batches with a validity mask."""

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxprune.data import Split


class Batched(NamedTuple):
  """A split cut into equal batches, the last one padded.

  Attributes:
    images: `(batches, batch_size, ...)` inputs (float32 images, or int32
      tokens), zeros as padding.
    labels: `(batches, batch_size, ...)` int32 labels: one per example, or a
      sequence of them (per token).
    valid: `(batches, batch_size)` bool, False on padding.
  """

  images: jax.Array
  labels: jax.Array
  valid: jax.Array


def batched(split: Split, batch_size: int) -> Batched:
  """Pads `split` to a multiple of `batch_size` and puts it on device.

  >>> import numpy as np
  >>> b = batched(Split(np.zeros((5, 2, 2, 1), np.float32),
  ...                   np.zeros(5, np.int32)), 2)
  >>> b.images.shape, b.valid.sum().item()
  ((3, 2, 2, 2, 1), 5)
  """
  n = len(split.labels)
  batches = -(-n // batch_size)
  pad = batches * batch_size - n
  images = np.concatenate(
    [
      split.images,
      np.zeros((pad,) + split.images.shape[1:], split.images.dtype),
    ]
  )
  labels = np.concatenate(
    [split.labels, np.zeros((pad,) + split.labels.shape[1:], np.int32)]
  )
  valid = np.arange(batches * batch_size) < n
  shape = (batches, batch_size)
  return Batched(
    jnp.asarray(images.reshape(shape + split.images.shape[1:])),
    jnp.asarray(labels.reshape(shape + split.labels.shape[1:])),
    jnp.asarray(valid.reshape(shape)),
  )


def evaluate(
  logits_fn: Callable[[Any, jax.Array], jax.Array],
  variables: Any,
  data: Batched,
  axis_name: str | None = None,
) -> dict[str, jax.Array]:
  """Mean cross-entropy and accuracy over the valid examples of `data`:
  over its labels, so per token for sequence labels.

  Args:
    logits_fn: `(variables, images) -> logits`, in inference mode.
    variables: what `logits_fn` needs (params, batch statistics).
    data: from `batched`.
    axis_name: inside `pmap`, the device axis over which each device's
      share of every batch is summed.

  Returns:
    `{'loss': ..., 'accuracy': ...}` as float32 scalars; padding counts in
    neither.
  """

  def body(totals, batch):
    images, labels, valid = batch
    logits = logits_fn(variables, images)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = jnp.argmax(logits, -1) == labels
    # One label per example, or a sequence of them (one per token).
    valid = jnp.broadcast_to(
      valid.reshape(valid.shape + (1,) * (labels.ndim - 1)), labels.shape
    )
    return (
      totals[0] + jnp.sum(jnp.where(valid, loss, 0.0)),
      totals[1] + jnp.sum(correct & valid),
      totals[2] + jnp.sum(valid),
    ), None

  zero = (jnp.zeros((), jnp.float32),) + (jnp.zeros((), jnp.int32),) * 2
  (loss, correct, n), _ = jax.lax.scan(body, zero, tuple(data))
  if axis_name:
    loss, correct, n = jax.lax.psum((loss, correct, n), axis_name)
  return {"loss": loss / n, "accuracy": correct / n}
