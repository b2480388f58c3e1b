"""Flax linen models used in pruning experiments, and a registry by name.

Every model takes ``num_classes`` and is called as ``model.apply(variables, x,
train=...)``, with NHWC inputs for the image classifiers; only models with
BatchNorm (``ResNet20`` and ``VGG`` by default) hold a ``batch_stats``
collection. ``CharLM`` reads int tokens ``(batch, length)`` and returns
next-token logits ``(batch, length, num_classes)``; ``BertEncoder`` (no
``num_classes``; the shape of all-MiniLM-L6-v2, whose weights
``jaxprune.models.pretrained.load_minilm`` loads) reads token ids and an
attention mask and returns token states.
"""

import dataclasses

import flax.linen as nn

from jaxprune.models.bert import BertEncoder
from jaxprune.models.char_lm import CharLM
from jaxprune.models.conv import Conv2, Conv4, Conv6
from jaxprune.models.lenet5 import LeNet5
from jaxprune.models.mlp import LeNet300
from jaxprune.models.resnet import ResNet20
from jaxprune.models.vgg import VGG, VGG11_STAGES

__all__ = [
  "MODELS",
  "VGG",
  "VGG11_STAGES",
  "BertEncoder",
  "CharLM",
  "Conv2",
  "Conv4",
  "Conv6",
  "LeNet5",
  "LeNet300",
  "ResNet20",
  "get",
]

MODELS = {
  "lenet300": LeNet300,
  "lenet5": LeNet5,
  "conv2": Conv2,
  "conv4": Conv4,
  "conv6": Conv6,
  "resnet20": ResNet20,
  "vgg": VGG,
  "char_lm": CharLM,
  "bert": BertEncoder,
}


def get(name: str, **kwargs) -> nn.Module:
  """Builds the model registered under ``name``.

  Args:
    name: A key of ``MODELS``.
    **kwargs: Passed to the model's constructor, e.g. ``num_classes``.

  Returns:
    The (unbound) Flax module.

  Raises:
    ValueError: If ``name`` is not registered, or for an argument the
      model does not take (``num_classes`` for ``bert``, which returns
      token states, not logits), naming the arguments it takes.

  >>> get("lenet300", num_classes=5).num_classes
  5
  """
  if name not in MODELS:
    known = ", ".join(sorted(MODELS))
    raise ValueError(f"Unknown model {name!r}; known models: {known}.")
  cls = MODELS[name]
  fields = [f.name for f in dataclasses.fields(cls) if f.init]
  takes = [f for f in fields if f not in ("parent", "name")]
  unknown = sorted(set(kwargs) - set(takes))
  if unknown:
    why = " (it has no classes)" if "num_classes" in unknown else ""
    raise ValueError(
      f"model {name!r} ({cls.__name__}) does not take {unknown}{why}; "
      f"its arguments: {takes}"
    )
  return cls(**kwargs)
