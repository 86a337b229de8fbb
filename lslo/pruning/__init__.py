"""Gradual unstructured L1 pruning of LSLo B matrices (Eq. 4) and the subspace scores built on it (Eq. 6)."""

from lslo.pruning.pools import Pool, PoolMember, language_pools, layer_pools
from lslo.pruning.pruner import Pruner
from lslo.pruning.schedule import PruningSchedule
from lslo.pruning.scores import SubspaceScore, subspace_scores

__all__ = [
    "Pool",
    "PoolMember",
    "Pruner",
    "PruningSchedule",
    "SubspaceScore",
    "language_pools",
    "layer_pools",
    "subspace_scores",
]
