"""Physical compaction of structured masks, unit selection, sparse export
and FLOP counts (see docs/compact.md)."""

from jaxprune.compact.compaction import Compacted as Compacted
from jaxprune.compact.compaction import compact as compact
from jaxprune.compact.compaction import compact_model as compact_model
from jaxprune.compact.compaction import kept_units as kept_units
from jaxprune.compact.compaction import unit_masks as unit_masks
from jaxprune.compact.groups import Group as Group
from jaxprune.compact.groups import Member as Member
from jaxprune.compact.groups import Units as Units
from jaxprune.compact.groups import find_groups as find_groups
