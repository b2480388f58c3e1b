"""Training loops for experiments: scanned masked steps, evaluation,
checkpoints."""

from jaxprune.train.checkpoints import Checkpoints as Checkpoints
from jaxprune.train.evaluation import Batched as Batched
from jaxprune.train.evaluation import batched as batched
from jaxprune.train.evaluation import evaluate as evaluate
from jaxprune.train.order import batch_indices as batch_indices
from jaxprune.train.trainer import FitResult as FitResult
from jaxprune.train.trainer import Trainer as Trainer
from jaxprune.train.trainer import TrainState as TrainState
