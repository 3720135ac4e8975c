"""The relative surrogate: datasets, operations, cells and networks, the Gumbel-softmax supernet,
its training, and the exact ranking of a space that its trained multinomials induce; and the
stand-alone training of candidates it is validated against (one recipe, single or stacked).

Names are imported on first use (PEP 562), so that ``import surrogate.errors`` or
``surrogate.config`` does not load torch.
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {
    "BatchedExecutor": "surrogate.batched",
    "CandidateConfig": "surrogate.candidate",
    "CandidateResult": "surrogate.recipe",
    "CandidateStatus": "surrogate.recipe",
    "CellScores": "surrogate.relative",
    "ConfigError": "surrogate.errors",
    "DATASETS": "surrogate.data",
    "Dataset": "surrogate.data",
    "DatasetError": "surrogate.errors",
    "FaultPlan": "surrogate.faults",
    "Network": "surrogate.network",
    "OPERATIONS": "surrogate.ops",
    "PRESETS": "surrogate.config",
    "Ranking": "surrogate.relative",
    "Recipe": "surrogate.recipe",
    "SampleMap": "surrogate.relative",
    "Split": "surrogate.data",
    "StackedNetwork": "surrogate.stacked",
    "Supernet": "surrogate.supernet",
    "SupernetConfig": "surrogate.config",
    "SupernetResult": "surrogate.training",
    "SurrogateError": "surrogate.errors",
    "TrainingError": "surrogate.errors",
    "TrainingHook": "surrogate.faults",
    "count_macs": "surrogate.network",
    "count_parameters": "surrogate.network",
    "embed_cell": "surrogate.supernet",
    "joint_top_k": "surrogate.relative",
    "load_config": "surrogate.config",
    "load_dataset": "surrogate.data",
    "monte_carlo_probabilities": "surrogate.relative",
    "rank_space": "surrogate.relative",
    "register_operation": "surrogate.ops",
    "resolve_device": "surrogate.device",
    "train_candidate": "surrogate.candidate",
    "train_candidates": "surrogate.batched",
    "train_supernet": "surrogate.training",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
