"""Forgetting events (Toneva et al. 2019), counted during training.

Each time an example is in a training batch, whether the model (before that
step's update) classifies it correctly is compared with the previous time it
was seen; a change from correct to wrong is a forgetting event. Examples
never classified correctly count as the most forgotten.

The state is a small pytree updated inside the trainer's scanned step
(`Trainer(example_hook=update)`, `trainer.init(..., extra=init(n))`):

>>> import jax.numpy as jnp
>>> state = init(3)
>>> for correct in ([1, 1, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]):
...   state = update(state, jnp.arange(3), jnp.array(correct, bool))
>>> state.events.tolist(), scores(state).tolist()
([2, 1, 0], [2.0, 1.0, 3.0])
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Forgetting(NamedTuple):
  """Per-example counters.

  Attributes:
    previous: `(n,)` bool, correct the last time seen (False before).
    learned: `(n,)` bool, correct at least once.
    events: `(n,)` int32, correct-to-wrong transitions so far.
  """

  previous: jax.Array
  learned: jax.Array
  events: jax.Array


def init(num_examples: int) -> Forgetting:
  """Counters of `num_examples` examples, none seen yet."""
  false = jnp.zeros((num_examples,), bool)
  return Forgetting(false, false, jnp.zeros((num_examples,), jnp.int32))


def update(
  state: Forgetting, indices: jax.Array, correct: jax.Array
) -> Forgetting:
  """Records one batch: `indices` of the examples, `correct` per example.

  An example twice in one batch (a batch straddling two epochs) is counted
  once: both copies are judged by the same params.
  """
  forgot = state.previous[indices] & ~correct
  flags = jnp.zeros_like(state.previous).at[indices].set(forgot)
  return Forgetting(
    previous=state.previous.at[indices].set(correct),
    learned=state.learned.at[indices].max(correct),
    events=state.events + flags.astype(jnp.int32),
  )


@jax.jit
def scores(state: Forgetting) -> jax.Array:
  """Forgetting counts as float32 scores; never-learned examples score one
  more than the most forgotten learned example."""
  learned = jnp.where(state.learned, state.events, 0)
  top = jnp.max(learned, initial=0) + 1
  return jnp.where(state.learned, state.events, top).astype(jnp.float32)
