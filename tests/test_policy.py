"""Which leaves are pruned, by key-path pattern."""

import numpy as np
import pytest

from jaxprune.core.policy import Policy, default_prunable

PARAMS = {
  "params": {
    "embed": {"embedding": np.zeros((50, 8))},
    "fc1": {"kernel": np.zeros((8, 4)), "bias": np.zeros(4)},
    "norm": {"scale": np.zeros(4)},
    "fc2": {"kernel": np.zeros((4, 2)), "bias": np.zeros(2)},
  }
}


def test_default_prunes_kernels_only():
  rules = Policy().rules(PARAMS)
  assert sorted(rules) == ["params/fc1/kernel", "params/fc2/kernel"]


def test_default_prunable_nnx_value_suffix():
  assert default_prunable("fc/kernel/value", np.zeros((2, 2)))
  assert not default_prunable("fc/bias/value", np.zeros(2))
  assert not default_prunable("emb/embedding/value", np.zeros((5, 2)))


def test_exclude_include_fixed_scale():
  policy = Policy(
    exclude=["fc2"], include=["embed"], fixed={"fc1": 0.0}, scale={"embed": 0.5}
  )
  rules = policy.rules(PARAMS)
  assert sorted(rules) == ["params/embed/embedding", "params/fc1/kernel"]
  assert rules["params/fc1/kernel"].fixed == 0.0
  assert rules["params/embed/embedding"].scale == 0.5


def test_pattern_matching_nothing_raises():
  with pytest.raises(ValueError, match="Policy.fixed pattern 'fc9' matches no"):
    Policy(fixed={"fc9": 0.5}).rules(PARAMS)


def test_fixed_out_of_range():
  with pytest.raises(ValueError, match=r"Policy.fixed\['fc1'\] = 1.5"):
    Policy(fixed={"fc1": 1.5})


def test_custom_predicate():
  policy = Policy(prunable=lambda path, leaf: "fc2" in path and leaf.ndim == 2)
  assert list(policy.rules(PARAMS)) == ["params/fc2/kernel"]
