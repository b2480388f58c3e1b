"""One-shot pruning of LeNet-300-100: prints the per-layer sparsity table.

python -m launch.prune_demo --sparsity=0.9 --distribution=global
"""

import jax
import jax.numpy as jnp
from absl import app, flags

import jaxprune
from jaxprune import models

_SPARSITY = flags.DEFINE_float("sparsity", 0.9, "fraction of weights removed")
_DISTRIBUTION = flags.DEFINE_string(
  "distribution", "global", "uniform, erk, er or global"
)
_SEED = flags.DEFINE_integer("seed", 0, "initialization seed")


def main(argv):
  del argv
  model = models.get("lenet300")
  params = model.init(jax.random.key(_SEED.value), jnp.ones((1, 28, 28, 1)))
  pruned, masks = jaxprune.prune(
    params,
    _SPARSITY.value,
    distribution=_DISTRIBUTION.value,
    min_fraction=0.0005 if _DISTRIBUTION.value == "global" else 0.0,
    key=jax.random.key(_SEED.value),
  )
  print(jaxprune.summary(pruned, masks))


if __name__ == "__main__":
  app.run(main)
