"""The relative surrogate: datasets, operations, cells and networks, the Gumbel-softmax supernet,
its training, and the exact ranking of a space that its trained multinomials induce; and the
stand-alone training of candidates it is validated against (one recipe, single or stacked).

Names are imported on first use (PEP 562), so that ``import surrogate.errors`` or
``surrogate.config`` does not load torch.
"""

from __future__ import annotations

from dagspace.lazy import lazy_exports

_EXPORTS = {  # module -> the names it exports here
    "surrogate.batched": ("BatchedExecutor", "train_candidates"),
    "surrogate.candidate": ("CandidateConfig", "candidate_preset", "train_candidate"),
    "surrogate.config": ("SupernetConfig", "load_config", "supernet_preset"),
    "surrogate.data": ("DATASETS", "Dataset", "Split", "load_dataset"),
    "surrogate.device": ("resolve_device",),
    "surrogate.errors": ("ConfigError", "DatasetError", "SurrogateError", "TrainingError"),
    "surrogate.faults": ("FaultPlan", "TrainingHook"),
    "surrogate.network": ("Network", "count_macs", "count_parameters"),
    "surrogate.ops": ("OPERATIONS", "register_operation"),
    "surrogate.presets": ("PRESETS", "PRESET_NAMES", "Preset", "get_preset"),
    "surrogate.recipe": ("CandidateResult", "CandidateStatus", "Recipe"),
    "surrogate.relative": (
        "CellScores",
        "Ranking",
        "SampleMap",
        "distinct_top_k",
        "joint_top_k",
        "monte_carlo_probabilities",
        "rank_space",
    ),
    "surrogate.score_function": ("leave_one_out_advantages", "score_function_objective"),
    "surrogate.stacked": ("StackedNetwork",),
    "surrogate.supernet": ("Supernet", "embed_cell"),
    "surrogate.training": ("SupernetResult", "train_supernet"),
}

__all__ = sorted(name for names in _EXPORTS.values() for name in names)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
