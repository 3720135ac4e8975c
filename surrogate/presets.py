"""The one table of named presets (``smoke``, ``quick``, ``paper``): every job's size at a scale.

A preset is a set of overrides of each job's defaults, one section per job:

- ``supernet``: :class:`~surrogate.config.SupernetConfig` keys
  (:func:`surrogate.config.supernet_preset`);
- ``candidate``: :class:`~surrogate.candidate.CandidateConfig` keys, the stand-alone recipe
  (:func:`surrogate.candidate.candidate_preset`);
- ``search``: :class:`~analysis.search.SearchConfig` sizes (budget, epochs, top-k, repeats, the
  Bayesian search's options);
- ``validation``: :class:`~analysis.validation.ValidationConfig` sizes (uniform sample, pool,
  each estimator's top, training seeds);
- ``demo``: what ``dagrank demo`` changes on top, one section per job (``supernet``,
  ``candidate``, ``validation``, ``search``): its data and space, its sizes.

This module imports nothing of the toolkit but its errors, so the command line reads the
names without loading torch; each job turns its section into its own config dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from surrogate.errors import ConfigError

__all__ = ["PRESETS", "PRESET_NAMES", "Preset", "get_preset", "plain"]


@dataclass(frozen=True)
class Preset:
    """One row of the table: the overrides of every job's defaults at one scale."""

    name: str
    purpose: str
    supernet: Mapping[str, Any]
    candidate: Mapping[str, Any]
    search: Mapping[str, Any]
    validation: Mapping[str, Any]
    demo: Mapping[str, Any]

    def __post_init__(self) -> None:  # read-only sections: a preset is shared by every job
        for section in ("supernet", "candidate", "search", "validation", "demo"):
            object.__setattr__(self, section, _read_only(getattr(self, section)))


def _read_only(value: Any) -> Any:
    """``value`` with every mapping in it made a read-only copy."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _read_only(v) for k, v in value.items()})
    return value


def plain(value: Any) -> Any:
    """A preset's section (or a value in it) as plain, mutable dicts: what a config takes."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


_TABLE = (
    Preset(
        "smoke",
        "seconds on a 2-core CPU: tests, and checking that a pipeline runs end to end",
        # the supernet trains in seconds, a candidate in about a second on the digits (8 x 8)
        supernet={
            "dataset": "digits",
            "vertices": 4,
            "cells": 2,
            "channels": 8,
            "epochs": 12,
            "arch_steps": 50,
            "arch_samples": 4,
            "arch_batch": 64,
        },
        candidate={"channels": 8, "epochs": 3, "batch_size": 64},
        search={"budget": 16, "epochs": 4, "top_k": 3, "bayes": {"q": 4, "n_init": 6}},
        validation={"n": 6, "pool": 12, "include_top": 1, "seeds": (0, 1)},
        demo={"supernet": {"vertices": 4}},
    ),
    Preset(
        "quick",
        "minutes on a laptop CPU: the defaults of every job, and the demo (make run)",
        # about a minute: the whole digits set, 5-vertex cells (~89% accuracy); a candidate
        # in a few seconds, enough to rank candidates
        supernet={},
        candidate={},
        search={"budget": 100, "epochs": 100, "top_k": 10, "bayes": {"q": 8, "n_init": 10}},
        # 150 uniform architectures, 2 seeds: a tau interval of about +/-0.11
        validation={"n": 150, "pool": 300, "include_top": 3, "seeds": (0, 1)},
        # the demo: MNIST-1D at full size (5,000 examples), 40% of them for the test accuracy
        # that ranks the sample, fewer architectures than `validate`: a noise ceiling of 0.63
        # [0.50, 0.74] and a surrogate interval of +/-0.16 in about 5 minutes on 2 cores
        demo={
            "supernet": {"dataset": "mnist1d", "test_fraction": 0.4},
            "validation": {"n": 50, "pool": 100, "include_top": 1},
        },
    ),
    Preset(
        "paper",
        "a GPU: NAS-Bench-101's scale on MNIST-1D",
        # 7-vertex cells, 3 stages of 3 cells, 128-channel stem, a DARTS-length search
        supernet={
            "dataset": "mnist1d",
            "vertices": 7,
            "cells": 9,
            "num_stages": 3,
            "channels": 128,
            "epochs": 50,
            "batch_size": 256,
            "weight_lr": 0.1,
            "amp": True,
        },
        # NAS-Bench-101's longest budget and network width (108 epochs, 128-channel stem,
        # 3 stages, batch 256, weight decay 1e-4), with SGD and shifts
        candidate={
            "channels": 128,
            "num_stages": 3,
            "epochs": 108,
            "batch_size": 256,
            "lr": 0.1,
            "weight_decay": 1e-4,
            "augment": True,
            "amp": True,
        },
        search={
            "budget": 300,
            "epochs": 100,
            "top_k": 10,
            "repeats": 5,
            "bayes": {"q": 8, "n_init": 20},
        },
        validation={"n": 200, "pool": 1000, "include_top": 5, "seeds": (0, 1, 2)},
        demo={"supernet": {"vertices": 7}},
    ),
)

PRESETS: Mapping[str, Preset] = MappingProxyType({p.name: p for p in _TABLE})
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)  # ("smoke", "quick", "paper")


def get_preset(name: object, error: type[Exception] = ConfigError) -> Preset:
    """The preset called ``name``.

    Raises:
        error (default :class:`~surrogate.errors.ConfigError`): ``name`` is not a preset.
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise error(f"Unknown preset {name!r}; expected one of {list(PRESET_NAMES)}.")
    return PRESETS[name]
