"""Pruning algorithms, each a factory returning a pruner value."""

from jaxprune.algorithms.dst import granet as granet
from jaxprune.algorithms.dst import rigl as rigl
from jaxprune.algorithms.dst import set_ as set_
from jaxprune.algorithms.fixed import fixed as fixed
from jaxprune.algorithms.magnitude import global_magnitude as global_magnitude
from jaxprune.algorithms.magnitude import gradual_magnitude as gradual_magnitude
from jaxprune.algorithms.magnitude import magnitude as magnitude
from jaxprune.algorithms.pdp import pdp as pdp
from jaxprune.algorithms.random import random as random
from jaxprune.algorithms.saliency import saliency as saliency

ALGORITHMS = {
  "fixed": fixed,
  "magnitude": magnitude,
  "global_magnitude": global_magnitude,
  "gradual_magnitude": gradual_magnitude,
  "random": random,
  "saliency": saliency,
  "granet": granet,
  "rigl": rigl,
  "set": set_,
  "pdp": pdp,
}
"""Factories by name, as `jaxprune.create` looks them up."""
