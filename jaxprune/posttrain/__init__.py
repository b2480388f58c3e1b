"""Post-training pruning: prune a trained model once from calibration data.

>>> from jaxprune import posttrain
>>> sorted(posttrain.METHODS)
['least_squares', 'magnitude', 'sparsegpt', 'wanda']
"""

from jaxprune.posttrain.calibration import Layer as Layer
from jaxprune.posttrain.calibration import NnxModel as NnxModel
from jaxprune.posttrain.calibration import calibrate as calibrate
from jaxprune.posttrain.calibration import conv_patches as conv_patches
from jaxprune.posttrain.calibration import layers as layers
from jaxprune.posttrain.method import PostTrain as PostTrain
from jaxprune.posttrain.sequential import LayerReport as LayerReport
from jaxprune.posttrain.sequential import Result as Result
from jaxprune.posttrain.sequential import block_name as block_name
from jaxprune.posttrain.sequential import blocks_of as blocks_of
from jaxprune.posttrain.sequential import prune as prune
from jaxprune.posttrain.sequential import pruned_layers as pruned_layers
from jaxprune.posttrain.solvers import METHODS as METHODS
from jaxprune.posttrain.solvers import Stats as Stats
from jaxprune.posttrain.solvers import least_squares as least_squares
from jaxprune.posttrain.solvers import magnitude as magnitude
from jaxprune.posttrain.solvers import relative_error as relative_error
from jaxprune.posttrain.solvers import sparsegpt as sparsegpt
from jaxprune.posttrain.solvers import wanda as wanda
