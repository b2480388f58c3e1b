r"""Dense ResNet-20 on Fashion-MNIST: the structured experiment's model.

  python -m launch.train \
    --config=configs/sparse/dense_resnet20_fashion_mnist.py \
    --workdir=/tmp/sparse_dense_resnet20_fashion_mnist

No pruning. ResNet-20 (`jaxprune.models.ResNet20`, BatchNorm, option-A
shortcuts) reads the 28x28x1 images as they are (its convolutions and
global pooling take any size: 28, 14 and 7 pixels a side in its three
stages). A short CPU recipe: Adam 1e-3 decayed by a cosine to 0, batch
128, 800 steps (1.9 epochs), evaluation every 400, one seed. A step takes
0.9 s on 2 idle CPU cores (about 12 minutes of training), three times
that on the shared machine.
Preset: `quick` (20 steps: a smoke run).
"""

import ml_collections

from configs.sparse.base import CONV_QUICK, preset, recipe


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; see the module docstring for the presets."""
  config = recipe(
    "dense",
    dataset="fashion_mnist",
    model="resnet20",
    learning_rate=1e-3,
    steps=800,
    eval_every=400,
    steps_per_dispatch=1,
    checkpoint_every=400,
    seeds=(0,),
  )
  config.train.batch_size = 128
  config.schedule = dict(
    name="cosine_decay_schedule", decay_steps=config.train.get_ref("steps")
  )
  return preset(config, arg, **CONV_QUICK)
