"""jaxprune: pruning and sparse training as pure mask transforms over pytrees,
composed into optax."""

from jaxprune import algorithms as algorithms
from jaxprune.api import create as create
from jaxprune.api import prune as prune
from jaxprune.compact.flops import flops as flops
from jaxprune.core.policy import Policy as Policy
from jaxprune.core.summary import summary as summary
from jaxprune.core.tree import apply_masks as apply_masks
from jaxprune.pruner import NM as NM
from jaxprune.pruner import Channel as Channel
from jaxprune.pruner import ScorePruner as ScorePruner
from jaxprune.transform import PruneState as PruneState
from jaxprune.transform import check as check
from jaxprune.transform import forward as forward
from jaxprune.transform import masks_of as masks_of
from jaxprune.transform import set_masks as set_masks
from jaxprune.transform import state_of as state_of
from jaxprune.transform import wrap as wrap

__version__ = "0.1.0"
