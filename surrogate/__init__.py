"""The relative surrogate: datasets, operations, cells and networks, the Gumbel-softmax supernet,
its training, and the exact ranking of a space that its trained multinomials induce.

Names are imported on first use (PEP 562), so that ``import surrogate.errors`` or
``surrogate.config`` does not load torch.
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {  # module -> the names it exports here
    "surrogate.candidate": ("candidate_preset",),
    "surrogate.config": ("SupernetConfig", "load_config", "supernet_preset"),
    "surrogate.data": ("DATASETS", "Dataset", "Split", "load_dataset"),
    "surrogate.device": ("resolve_device",),
    "surrogate.errors": ("ConfigError", "DatasetError", "SurrogateError", "TrainingError"),
    "surrogate.network": ("Network", "count_macs", "count_parameters"),
    "surrogate.ops": ("OPERATIONS", "register_operation"),
    "surrogate.presets": ("PRESETS", "PRESET_NAMES", "Preset", "get_preset"),
    "surrogate.relative": (
        "CellScores",
        "Ranking",
        "SampleMap",
        "joint_top_k",
        "monte_carlo_probabilities",
        "rank_space",
    ),
    "surrogate.supernet": ("Supernet", "embed_cell"),
    "surrogate.training": ("SupernetResult", "train_supernet"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
