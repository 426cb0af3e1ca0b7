"""The mapping engine: ``config/mapping.yaml`` and the pure functions it drives.

``load_mapping`` reads the file into a :class:`MappingSpec`; a :class:`Mapper` turns each
:class:`~sync.model.RowChange` into target operations, keeping a :class:`LookupState` in step;
``map_snapshot`` maps a whole source state from scratch (validation's reference).
"""

from sync.mapping.engine import Mapper
from sync.mapping.lookups import LookupState
from sync.mapping.resolve import load_mapping
from sync.mapping.snapshot import map_snapshot
from sync.mapping.spec import LookupSource, MappingSpec, TargetTable

__all__ = [
    "LookupSource",
    "LookupState",
    "Mapper",
    "MappingSpec",
    "TargetTable",
    "load_mapping",
    "map_snapshot",
]
