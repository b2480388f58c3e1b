"""Shapes, parameter counts and calling conventions of the model zoo."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import models

MNIST = (2, 28, 28, 1)
CIFAR = (2, 32, 32, 3)


def _shapes(model, input_shape):
  """Variable shapes from an abstract init (no compute)."""
  variables = jax.eval_shape(
    model.init, jax.random.key(0), jnp.zeros(input_shape)
  )
  return jax.tree_util.tree_map(lambda leaf: leaf.shape, variables)


def _count(tree):
  return sum(
    math.prod(s) for s in jax.tree_util.tree_leaves(tree, is_leaf=_is_shape)
  )


def _is_shape(node):
  return isinstance(node, tuple) and all(isinstance(d, int) for d in node)


def test_lenet300_layers_and_param_count():
  params = _shapes(models.LeNet300(), MNIST)["params"]
  assert params == {
    "fc1": {"kernel": (784, 300), "bias": (300,)},
    "fc2": {"kernel": (300, 100), "bias": (100,)},
    "fc3": {"kernel": (100, 10), "bias": (10,)},
  }
  weights = 235_200 + 30_000 + 1_000
  biases = 300 + 100 + 10
  assert _count(params) == weights + biases == 266_610


def test_lenet300_init_is_glorot_normal_with_zero_biases():
  model = models.LeNet300()
  params = model.init(jax.random.key(0), jnp.zeros(MNIST))["params"]
  kernel = np.asarray(params["fc1"]["kernel"])
  assert kernel.std() == pytest.approx(math.sqrt(2 / (784 + 300)), rel=0.02)
  assert abs(kernel.mean()) < 1e-3
  for layer in params.values():
    assert not np.any(layer["bias"])


def test_lenet5_layers_and_param_count():
  params = _shapes(models.LeNet5(), MNIST)["params"]
  # 28x28 -> conv 5x5 SAME, pool -> 14x14x6 -> conv 5x5 VALID -> 10x10x16,
  # pool -> 5x5x16 = 400 features.
  assert params == {
    "conv1": {"kernel": (5, 5, 1, 6), "bias": (6,)},
    "conv2": {"kernel": (5, 5, 6, 16), "bias": (16,)},
    "fc1": {"kernel": (400, 120), "bias": (120,)},
    "fc2": {"kernel": (120, 84), "bias": (84,)},
    "fc3": {"kernel": (84, 10), "bias": (10,)},
  }
  weights = 150 + 2_400 + 48_000 + 10_080 + 840
  biases = 6 + 16 + 120 + 84 + 10
  assert _count(params) == weights + biases == 61_706


def test_lenet5_names_an_image_too_small_for_its_second_convolution():
  with pytest.raises(ValueError, match=r"LeNet5.*\(11, 11\).*12x12"):
    _shapes(models.LeNet5(), (2, 11, 11, 1))


def _conv_kernels(in_channels, widths, flat, num_classes=10):
  """Hand-written kernel shapes of a Conv-N network."""
  shapes, previous = {}, in_channels
  for i, width in enumerate(widths, start=1):
    shapes[f"conv{i}"] = (3, 3, previous, width)
    previous = width
  shapes["fc1"] = (flat, 256)
  shapes["fc2"] = (256, 256)
  shapes["fc3"] = (256, num_classes)
  return shapes


@pytest.mark.parametrize(
  "model, input_shape, expected",
  [
    # 28 -> 14 after one pool; 14 -> 7 after two; 7 -> 3 after three.
    (models.Conv2(), MNIST, _conv_kernels(1, (64, 64), 14 * 14 * 64)),
    (models.Conv4(), MNIST, _conv_kernels(1, (64, 64, 128, 128), 7 * 7 * 128)),
    (
      models.Conv6(),
      MNIST,
      _conv_kernels(1, (64, 64, 128, 128, 256, 256), 3 * 3 * 256),
    ),
    # The CIFAR-10 shapes of Frankle & Carbin (2019), Figure 2.
    (models.Conv2(), CIFAR, _conv_kernels(3, (64, 64), 16 * 16 * 64)),
    (models.Conv4(), CIFAR, _conv_kernels(3, (64, 64, 128, 128), 8 * 8 * 128)),
    (
      models.Conv6(num_classes=7),
      CIFAR,
      _conv_kernels(3, (64, 64, 128, 128, 256, 256), 4 * 4 * 256, 7),
    ),
  ],
)
def test_conv_kernel_shapes(model, input_shape, expected):
  params = _shapes(model, input_shape)["params"]
  assert {name: layer["kernel"] for name, layer in params.items()} == expected
  for name, layer in params.items():
    assert layer["bias"] == (expected[name][-1],)


def test_conv2_cifar_param_count_matches_paper():
  params = _shapes(models.Conv2(), CIFAR)["params"]
  assert round(_count(params) / 1e6, 1) == 4.3  # "4.3M" in the paper.


def test_resnet20_param_count():
  variables = _shapes(models.ResNet20(), CIFAR)
  stem = 3 * 3 * 3 * 16 + 2 * 16
  stage1 = 3 * (2 * 3 * 3 * 16 * 16 + 2 * 2 * 16)
  stage2 = (3 * 3 * 16 * 32 + 3 * 3 * 32 * 32 + 2 * 2 * 32) + 2 * (
    2 * 3 * 3 * 32 * 32 + 2 * 2 * 32
  )
  stage3 = (3 * 3 * 32 * 64 + 3 * 3 * 64 * 64 + 2 * 2 * 64) + 2 * (
    2 * 3 * 3 * 64 * 64 + 2 * 2 * 64
  )
  head = 64 * 10 + 10
  expected = stem + stage1 + stage2 + stage3 + head
  assert expected == 269_722
  assert _count(variables["params"]) == expected
  # Running mean and variance for each of the 19 BatchNorm layers.
  bn_channels = 16 + 6 * 16 + 6 * 32 + 6 * 64
  assert _count(variables["batch_stats"]) == 2 * bn_channels


def test_resnet20_layer_names():
  params = _shapes(models.ResNet20(), CIFAR)["params"]
  blocks = {f"stage{s}_block{b}" for s in (1, 2, 3) for b in (1, 2, 3)}
  assert set(params) == blocks | {"conv", "bn", "fc"}
  for block in blocks:  # Option-A shortcuts hold no parameters.
    assert set(params[block]) == {"conv1", "bn1", "conv2", "bn2"}
  assert params["stage2_block1"]["conv1"]["kernel"] == (3, 3, 16, 32)
  assert params["fc"]["kernel"] == (64, 10)


def test_resnet20_train_updates_batch_stats():
  model = models.ResNet20(num_classes=4)
  x = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
  # Constant variables: a real (random) init is slow to compile on a CPU.
  variables = jax.tree_util.tree_map(
    lambda leaf: jnp.full(leaf.shape, 0.01),
    jax.eval_shape(model.init, jax.random.key(0), x),
  )
  logits, updates = model.apply(
    variables, x, train=True, mutable=["batch_stats"]
  )
  assert logits.shape == (4, 4)
  assert np.all(np.isfinite(logits))
  before = variables["batch_stats"]["bn"]["mean"]
  assert not np.allclose(updates["batch_stats"]["bn"]["mean"], before)
  eval_logits = model.apply(variables, x, train=False)
  assert not np.allclose(eval_logits, logits)


def test_vgg11_param_count():
  variables = _shapes(models.VGG(), CIFAR)
  conv_in_out = [
    (3, 64),
    (64, 128),
    (128, 256),
    (256, 256),
    (256, 512),
    (512, 512),
    (512, 512),
    (512, 512),
  ]
  convs = sum(9 * c_in * c_out for c_in, c_out in conv_in_out)
  norms = sum(2 * c_out for _, c_out in conv_in_out)
  assert _count(variables["params"]) == convs + norms + 512 * 10 + 10
  assert set(variables["params"]) == (
    {f"conv{i}" for i in range(1, 9)} | {f"bn{i}" for i in range(1, 9)} | {"fc"}
  )


def test_vgg_without_batch_norm_has_no_batch_stats():
  model = models.VGG(stages=((8,), (16,)), batch_norm=False, num_classes=3)
  variables = _shapes(model, (2, 8, 8, 1))
  assert set(variables) == {"params"}
  assert variables["params"]["conv1"] == {"kernel": (3, 3, 1, 8), "bias": (8,)}
  assert variables["params"]["fc"]["kernel"] == (16, 3)


IMAGE_MODELS = sorted(set(models.MODELS) - {"char_lm", "bert"})


@pytest.mark.parametrize("name", IMAGE_MODELS)
@pytest.mark.parametrize("train", [False, True])
def test_every_model_takes_train_and_returns_logits(name, train):
  kwargs = {"stages": ((4,), (8,))} if name == "vgg" else {}
  model = models.get(name, num_classes=5, **kwargs)
  side = 28 if name == "lenet5" else 8  # LeNet-5 needs 12x12 at least
  x = jnp.ones((3, side, side, 1))
  variables = jax.eval_shape(model.init, jax.random.key(0), x)
  has_stats = "batch_stats" in variables
  assert has_stats == (name in ("resnet20", "vgg"))
  mutable = ["batch_stats"] if has_stats and train else False
  apply = functools.partial(model.apply, train=train, mutable=mutable)
  out = jax.eval_shape(apply, variables, x)
  logits = out[0] if mutable else out
  assert logits.shape == (3, 5)


def test_registry():
  assert set(models.MODELS) == {
    "lenet300",
    "lenet5",
    "conv2",
    "conv4",
    "conv6",
    "resnet20",
    "vgg",
    "char_lm",
    "bert",
  }
  model = models.get("conv4", num_classes=100)
  assert isinstance(model, models.Conv4)
  assert model.num_classes == 100


def test_registry_unknown_name():
  with pytest.raises(ValueError, match="'resnet50'.*lenet300.*resnet20"):
    models.get("resnet50")


def test_registry_argument_the_model_does_not_take():
  with pytest.raises(
    ValueError, match=r"'bert'.*\['num_classes'\].*no classes"
  ):
    models.get("bert", num_classes=3)
  with pytest.raises(ValueError, match=r"\['width'\].*'num_classes'"):
    models.get("lenet300", width=3)
  assert models.get("bert", depth=2).depth == 2
