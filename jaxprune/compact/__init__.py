"""Physical compaction of structured masks, unit selection, sparse export
and FLOP counts (see docs/compact.md)."""

from jaxprune.compact.compaction import Compacted as Compacted
from jaxprune.compact.compaction import compact as compact
from jaxprune.compact.compaction import compact_model as compact_model
from jaxprune.compact.compaction import kept_units as kept_units
from jaxprune.compact.compaction import unit_masks as unit_masks
from jaxprune.compact.flops import Flops as Flops
from jaxprune.compact.flops import flops as flops
from jaxprune.compact.flops import training_flops as training_flops
from jaxprune.compact.groups import Group as Group
from jaxprune.compact.groups import Member as Member
from jaxprune.compact.groups import Units as Units
from jaxprune.compact.groups import find_groups as find_groups
from jaxprune.compact.select import masks_from_keep as masks_from_keep
from jaxprune.compact.select import select_units as select_units
from jaxprune.compact.select import unit_scores as unit_scores
from jaxprune.compact.sparse import apply_sparse as apply_sparse
from jaxprune.compact.sparse import export_bcsr as export_bcsr
from jaxprune.compact.sparse import sparse_matmul as sparse_matmul
from jaxprune.compact.sparse import to_bcsr as to_bcsr
