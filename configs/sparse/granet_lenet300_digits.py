r"""GraNet (dense-to-sparse) on the embedded 8x8 digits: the smoke config.

  python -m launch.train \
    --config=configs/sparse/granet_lenet300_digits.py \
    --workdir=/tmp/sparse_granet_digits

LeNet-300-100, 300 steps of Adam, pruned globally from 100% to 10% of the
weights between steps 30 and 150 (every 10 steps), regenerating until the
end; one seed. About 14 s on 2 idle cores (17 s of CPU time;
docs/benchmarks.md; under a load average of 18, 207 s of wall time);
measured: 97% test accuracy at 10% of the weights (300 test images).
`:quick` (100 steps, pruning between 10 and 50) is the test's smoke run.
"""

import ml_collections

from configs.sparse.base import preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; presets `quick` and `sparsity=S`, comma-separated."""
  config = recipe(
    "granet_dense",
    dataset="digits",
    frequency=10,
    steps=300,
    eval_every=25,
    steps_per_dispatch=25,
    checkpoint_every=100,
    eval_batch_size=500,
    seeds=(0,),
  )
  return preset(config, arg, steps=100, checkpoint_every=50)
