"""Data pruning: score training examples, keep a subset, train on it.

Scores (`el2n`, `grand`, `input_norm`, `random_scores`, forgetting counts
from `forgetting`) and selection (`select`) are pure functions under `jit`;
`jaxprune.experiments.data_pruning` runs the data-diet experiment.
"""

from jaxprune.data_pruning import forgetting as forgetting
from jaxprune.data_pruning.noise import corrupt_labels as corrupt_labels
from jaxprune.data_pruning.scores import el2n as el2n
from jaxprune.data_pruning.scores import grand as grand
from jaxprune.data_pruning.scores import grand_dense as grand_dense
from jaxprune.data_pruning.scores import input_norm as input_norm
from jaxprune.data_pruning.scores import random_scores as random_scores
from jaxprune.data_pruning.selection import METHODS as METHODS
from jaxprune.data_pruning.selection import check_scores as check_scores
from jaxprune.data_pruning.selection import keep_count as keep_count
from jaxprune.data_pruning.selection import keep_mask as keep_mask
from jaxprune.data_pruning.selection import select as select
