"""A whole study in one config: the supernet, the candidate recipe, validation and search.

One TOML file describes everything the jobs (``validate``, ``trajectory``, ``compare``,
``demo``) run with::

    preset = "quick"            # where the values not given here come from

    [supernet]                  # surrogate.SupernetConfig (the data live here: dataset, data_root)
    dataset = "npz:~/data/mine.npz"

    [candidate]                 # surrogate.candidate.CandidateConfig: training from scratch
    epochs = 10

    [validation]                # analysis.validation.ValidationConfig, bar supernet/candidate
    n = 30

    [search]                    # analysis.search.SearchConfig, bar supernet/candidate
    objective = "surrogate"
    [search.bayes]
    q = 8

Settings resolve in the order ``supernet train`` uses: the defaults (the ``quick`` preset),
then a preset (``--preset``, else the file's ``preset`` key), then the file, then explicit
flags (:func:`resolve_study`). :func:`study_toml` writes a complete, commented TOML of a study
that :func:`load_study` reads back to the same study (``dagrank config show``), and
:func:`run_study` runs a whole study from Python the way the command line does.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.errors import AnalysisError
from analysis.rundir import job as hold_run
from surrogate.presets import PRESET_NAMES, get_preset, plain

__all__ = [
    "SECTIONS",
    "StudyConfig",
    "StudyConfigError",
    "StudyResult",
    "check_study_run",
    "load_study",
    "resolve_study",
    "run_study",
    "study_preset",
    "study_toml",
]

SECTIONS = ("supernet", "candidate", "validation", "search")
JOBS = ("validate", "trajectory", "compare")


class StudyConfigError(AnalysisError, ValueError):
    """A study config file or value is malformed (unknown section or key, bad value)."""


@dataclass(frozen=True)
class StudyConfig:
    """One supernet, one candidate recipe, and the options of the validation and search jobs.

    ``validation`` holds the :class:`~analysis.validation.ValidationConfig` fields other than
    ``supernet`` and ``candidate``; ``search`` those of :class:`~analysis.search.SearchConfig`.
    :meth:`validation_config` and :meth:`search_config` build the jobs' configs (and check them).
    """

    supernet: Any
    candidate: Any
    validation: Mapping[str, Any] = field(default_factory=dict)
    search: Mapping[str, Any] = field(default_factory=dict)
    preset: str = "quick"

    def validation_config(self) -> Any:
        from analysis.validation import ValidationConfig

        options = dict(self.validation)
        for name in ("seeds", "estimators"):
            if name in options:
                options[name] = tuple(options[name])
        _check_validation(options)
        return _build(ValidationConfig, "validation", self.supernet, self.candidate, options)

    def search_config(self) -> Any:
        from analysis.search import SearchConfig

        options = dict(self.search)
        if "methods" in options:
            options["methods"] = tuple(options["methods"])
        for name in ("fd", "bayes"):
            if name in options and isinstance(options[name], Mapping):
                options[name] = dict(options[name])
        return _build(SearchConfig, "search", self.supernet, self.candidate, options)

    def replace(self, **changes: Any) -> StudyConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "supernet": self.supernet.to_dict(),
            "candidate": self.candidate.to_dict(),
            "validation": _plain(dict(self.validation)),
            "search": _plain(dict(self.search)),
        }


def _plain(value: Any) -> Any:
    """Tuples as lists, mappings as dicts: what TOML and JSON hold."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _job_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in ("supernet", "candidate"))


def _build(cls: type, section: str, supernet: Any, candidate: Any, options: dict) -> Any:
    unknown = sorted(set(options) - set(_job_fields(cls)))
    if unknown:
        raise StudyConfigError(
            f"Unknown key(s) {unknown} in the [{section}] section; expected keys from "
            f"{sorted(_job_fields(cls))}."
        )
    try:
        return cls(supernet=supernet, candidate=candidate, **options)
    except TypeError as err:  # a dataclass without checks of its own
        raise StudyConfigError(f"The [{section}] section: {err}.") from None


def _check_validation(options: Mapping[str, Any]) -> None:
    """The checks :class:`~analysis.validation.ValidationConfig` does not do itself."""

    def is_int(value: Any, low: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= low

    for name, low in (("n", 2), ("top_k", 1), ("seed", 0)):
        if name in options and not is_int(options[name], low):
            raise StudyConfigError(
                f"The validation config's {name!r} must be an integer >= {low}; got "
                f"{options[name]!r}."
            )
    seeds = options.get("seeds", (0,))
    if not seeds or not all(is_int(s, 0) for s in seeds) or len(set(seeds)) < len(seeds):
        raise StudyConfigError(
            f"The validation config's 'seeds' must be a non-empty list of distinct integers "
            f">= 0; got {list(seeds)!r}."
        )


def study_preset(name: str = "quick", *, demo: bool = False) -> StudyConfig:
    """The study of a named preset (``smoke``, ``quick``, ``paper``; :mod:`surrogate.presets`):
    the jobs' presets, with one supernet and candidate recipe for all of them; ``demo``: with
    the demo's changes on top (its data and space, its candidate recipe and sizes: the preset
    table's ``demo`` row, one section per job)."""
    from analysis.search import search_preset
    from analysis.validation import validation_preset

    preset = get_preset(name, StudyConfigError)
    validation, search = validation_preset(name), search_preset(name)
    sizes = {k: getattr(validation, k) for k in _job_fields(type(validation))}
    searching = {k: getattr(search, k) for k in _job_fields(type(search))}
    supernet, candidate = validation.supernet, validation.candidate
    if demo:
        changes = plain(preset.demo)
        supernet = supernet.replace(**changes.get("supernet", {}))
        candidate = candidate.replace(**changes.get("candidate", {}))
        sizes.update(changes.get("validation", {}))
        searching.update(changes.get("search", {}))
    return StudyConfig(supernet=supernet, candidate=candidate, validation=sizes,
                       search=searching, preset=name)  # fmt: skip


# -- files -------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    if path.suffix.lower() != ".toml":
        raise StudyConfigError(f"A study config file must end in .toml; got {str(path)!r}.")
    try:
        return tomllib.loads(path.read_bytes().decode())
    except OSError as err:
        raise StudyConfigError(
            f"Cannot read the study config {str(path)!r}: {err.strerror}."
        ) from None
    except (ValueError, UnicodeDecodeError) as err:  # TOMLDecodeError
        raise StudyConfigError(f"Cannot parse the study config {str(path)!r}: {err}.") from None


def load_study(
    path: str | os.PathLike, base: StudyConfig | None = None, *, preset: str | None = None
) -> StudyConfig:
    """The study of the TOML file at ``path``, over ``base`` (default: the file's ``preset``
    key, else ``preset``, else ``quick``). ``preset`` (an explicit ``--preset``) wins over the
    file's key.

    Raises:
        StudyConfigError, ConfigError: the file cannot be read or parsed, names an unknown
            section or key, or holds a bad value (the message names the file and section).
    """
    path = Path(path)
    data = _read_toml(path)
    unknown = sorted(set(data) - {"preset", *SECTIONS})
    if unknown:
        raise StudyConfigError(
            f"{path}: unknown top-level key(s) {unknown}; expected 'preset' and the sections "
            f"{['[' + s + ']' for s in SECTIONS]}."
        )
    for section in SECTIONS:
        if section in data and not isinstance(data[section], dict):
            raise StudyConfigError(
                f"{path}: {section!r} must be a [{section}] section (a table); got "
                f"{type(data[section]).__name__}."
            )
    if base is None:
        name = preset or data.get("preset") or "quick"
        if not isinstance(name, str):
            raise StudyConfigError(f"{path}: 'preset' must be a string; got {name!r}.")
        base = study_preset(name)
    try:
        study = apply_study_dict(base, data)
    except AnalysisError as err:
        raise type(err)(f"{path}: {err}") from None
    except Exception as err:  # ConfigError of the supernet or candidate config
        from surrogate.errors import SurrogateError

        if isinstance(err, SurrogateError):
            raise type(err)(f"{path}: {err}") from None
        raise
    return study


def apply_study_dict(base: StudyConfig, data: Mapping[str, Any]) -> StudyConfig:
    """``base`` with the sections of ``data`` applied (and checked by building the jobs'
    configs)."""
    from surrogate.candidate import CandidateConfig
    from surrogate.config import config_from_dict

    supernet, candidate = base.supernet, base.candidate
    if "supernet" in data:
        supernet = _section_error("supernet", lambda: config_from_dict(data["supernet"], supernet))
    if "candidate" in data:
        section = dict(data["candidate"])
        candidate = _section_error(
            "candidate",
            lambda: CandidateConfig.from_dict({**candidate.to_dict(), **section}),
        )
    validation = {**base.validation, **data.get("validation", {})}
    search = dict(base.search)
    for key, value in data.get("search", {}).items():
        if key in ("fd", "bayes") and isinstance(value, Mapping):
            search[key] = {**search.get(key, {}), **value}
        else:
            search[key] = value
    study = StudyConfig(supernet, candidate, validation, search, base.preset)
    study.validation_config()  # every value checked now, not when a job starts
    study.search_config()
    return study


def _section_error(section: str, build: Any) -> Any:
    from surrogate.errors import ConfigError

    try:
        return build()
    except ConfigError as err:
        raise ConfigError(f"[{section}] {err}") from None


def resolve_study(
    *,
    preset: str | None = None,
    config: str | os.PathLike | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    demo: bool = False,
) -> StudyConfig:
    """The study the command line asks for: the defaults (``quick``), then ``preset`` (else
    the file's ``preset`` key), then the file ``config``, then ``overrides`` (``{section:
    {key: value}}``: the explicit flags; ``None`` values are skipped).

    ``demo``: the demo's study (:func:`study_preset`), whose space's vertices a file or a flag
    may change; a file's validation starts from the preset's, not from the demo's smaller one."""
    name = preset
    data: dict[str, Any] = {}
    if config is not None:
        data = _read_toml(Path(config))
        name = name or data.get("preset")
    name = name or "quick"
    if not isinstance(name, str):
        raise StudyConfigError(f"{config}: 'preset' must be a string; got {name!r}.")
    study = study_preset(name, demo=demo)
    if config is not None:
        if demo:
            study = dataclasses.replace(study, validation=study_preset(name).validation)
        study = load_study(config, study)
    changes = {
        section: {k: v for k, v in values.items() if v is not None}
        for section, values in (overrides or {}).items()
    }
    changes = {section: values for section, values in changes.items() if values}
    return apply_study_dict(study, changes) if changes else study


# -- the commented TOML ------------------------------------------------------------------------

_COMMENTS: dict[str, dict[str, str]] = {
    "supernet": {
        "dataset": "digits, mnist1d, mnist, fashion-mnist, cifar10, or npz:PATH (arrays x, y)",
        "data_root": "directory of the mnist / fashion-mnist / cifar10 files",
        "data_limit": "a stratified subset of this many examples (unset: all)",
        "val_fraction": "validation split: trains the multinomials",
        "test_fraction": "test split: reported only",
        "vertices": "vertices per cell, input and output included (at most 7 to rank)",
        "cells": "cells per architecture",
        "ops": "interior operations",
        "channels": "stem channels",
        "num_stages": "stages (each halves the resolution)",
        "learn_topology": "learn the edges too (false: fixed by topology)",
        "topology": "with learn_topology = false: one V x V 0/1 matrix per cell",
        "mode": "hard (GDAS single-op sampling) or soft (every op weighted)",
        "epochs": "supernet training epochs",
        "batch_size": "batch size",
        "weight_lr": "SGD learning rate of the shared weights (cosine-annealed)",
        "weight_lr_min": "its final value",
        "weight_momentum": "SGD momentum",
        "weight_decay": "L2 on the shared weights",
        "grad_clip": "gradient-norm clipping (0: none)",
        "arch_lr": "Adam learning rate of the multinomials (unset: 3e-3 straight-through, "
        "0.05 score-function)",
        "arch_weight_decay": "L2 on the multinomials",
        "tau_start": "Gumbel-softmax temperature at the first epoch",
        "tau_end": "... at the last epoch (exponential decay)",
        "warmup_epochs": "weight-only epochs before the multinomials learn (joint schedule)",
        "weight_sampling": "uniform (a cell drawn uniformly per weight step) or learned",
        "edge_lr": "the edge logits' own learning rate (unset: arch_lr)",
        "shortcut": "frozen (the input -> output edge keeps 1/2) or learned",
        "arch_gradient": "score_function (REINFORCE over sampled losses) or straight_through",
        "arch_schedule": "after (fit on the frozen, trained weights) or joint (alternate)",
        "arch_target": "loss (the supernet's validation loss) or an estimator to distil (snip)",
        "arch_samples": "architectures sampled per score-function step",
        "arch_batch": "validation examples each sampled architecture is scored on",
        "arch_steps": "steps of the multinomials' fit (after schedule)",
        "arch_entropy": "entropy weight, in sd of the sampled losses (0: fit the mode)",
        "seed": "data split, weights, batches and samples",
        "device": "auto, cpu, cuda or cuda:N (not part of the run's identity)",
        "amp": "mixed precision (CUDA only)",
    },
    "candidate": {
        "channels": "stem channels of a network trained from scratch",
        "num_stages": "stages (at most the architecture's cells)",
        "epochs": "training epochs",
        "batch_size": "batch size",
        "lr": "SGD (Nesterov) learning rate, cosine-annealed to 0",
        "momentum": "SGD momentum",
        "weight_decay": "L2 on every parameter",
        "label_smoothing": "cross-entropy label smoothing",
        "augment": "random shifts of the training images",
        "amp": "mixed precision (CUDA only)",
    },
    "validation": {
        "n": "architectures drawn uniformly, trained from scratch (plus every estimator's top)",
        "seeds": "training seeds per architecture (2 or more: the noise ceiling)",
        "top_k": "k of the precision@k and regret@k figures",
        "include_top": "each estimator's top architectures of the pool added to the sample",
        "pool": "architectures drawn uniformly and scored by every estimator",
        "estimators": "names from analysis.estimators.ESTIMATORS",
        "target": "test_accuracy or val_accuracy",
        "seed": "seed of the sample and of the bootstrap",
    },
    "search": {
        "objective": "surrogate, supernet, standalone, or module:function (your own)",
        "budget": "evaluations per method and repeat",
        "budget_mode": "evaluations (equal counts) or compute (equal wall time)",
        "epochs": "finite-difference descent epochs of the trajectory job",
        "repeats": "seeds per method",
        "top_k": "architectures per method trained from scratch",
        "seed": "seed of the strategies",
        "pseudo_steps": "mini-batches the pseudo environment trains per descent step",
        "fd": "options of FiniteDifferenceDescent (probes, evidence_alpha, walkers, h, patience, "
        "restart, init)",
        "bayes": "options of BayesianSearch (q, n_init, prefilter, max_candidates, mc_samples, "
        "refit_growth)",
    },
}

_HEADER = """\
# A dagrank study: one file for the supernet, the candidate recipe, validation and search.
# Use it with --config on validate, trajectory, compare and demo (and supernet train);
# explicit flags override it. A key left out takes the preset's value; an unset key
# (commented out below) is null.
"""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise StudyConfigError(f"Cannot write {value!r} ({type(value).__name__}) as a TOML value.")


# what an unset (null) key would hold if set, shown commented out
_EXAMPLES = {"data_root": "~/data", "data_limit": 1000, "topology": [[[0, 1], [0, 0]]],
             "arch_lr": 0.05, "edge_lr": 0.01}  # fmt: skip


def _toml_table(name: str, values: Mapping[str, Any], comments: Mapping[str, str]) -> list[str]:
    lines = [f"[{name}]"]
    tables = []
    for key, value in values.items():
        note = comments.get(key, "")
        if isinstance(value, Mapping):
            tables.append((key, value, note))
            continue
        if note:
            lines.append(f"# {note}")
        if value is None:
            example = _toml_value(_EXAMPLES[key]) if key in _EXAMPLES else "..."
            lines.append(f"# {key} = {example}    (unset)")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    for key, value, note in tables:
        lines += ["", *([f"# {note}"] if note else []), f"[{name}.{key}]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
    return lines


def study_toml(study: StudyConfig) -> str:
    """A complete, commented TOML of ``study`` that :func:`load_study` reads back to it."""
    from dagspace.strategies.registry import STRATEGIES

    data = study.to_dict()
    methods = {"methods": f"subset of {', '.join(STRATEGIES)}"}
    comments = {**_COMMENTS, "search": {**_COMMENTS["search"], **methods}}
    lines = [_HEADER.rstrip(), "", f"preset = {_toml_value(study.preset)}"]
    for section in SECTIONS:
        lines += ["", *_toml_table(section, data[section], comments.get(section, {}))]
    return "\n".join(lines) + "\n"


# -- running a study ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyResult:
    """What :func:`run_study` ran: each job's result (``None`` when not asked), the report."""

    run_dir: Path
    validation: Any
    trajectory: Any
    compare: Any
    report: Path
    seconds: float


def check_study_run(run: Path, validation: Any, search: Any, jobs: Sequence[str] = JOBS) -> None:
    """Refuse, before anything is written, a study whose jobs cannot run in ``run``: the
    supernet's ``config.json``, and each job's config in the run's store, must be the ones
    asked for (or absent), and the space enumerable."""
    from analysis.runs import check_run_config
    from analysis.search import check_search_job
    from analysis.validation import check_validation_job

    check_run_config(run, validation.supernet)
    if "validate" in jobs:
        check_validation_job(run, validation)
    for job in ("trajectory", "compare"):
        if job in jobs:
            check_search_job(run, search, job)


@hold_run("analysis.study.run_study")
def run_study(
    run: str | os.PathLike,
    study: StudyConfig | str | os.PathLike = "quick",
    *,
    jobs: Sequence[str] = JOBS,
    executor: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
) -> StudyResult:
    """Run a whole study into the run directory ``run`` the way the command line does:
    ``validate``, ``trajectory`` and ``compare`` (those of ``jobs``, in that order) on one
    supernet, then ``report.md``. ``study`` is a :class:`StudyConfig`, a TOML file, or a preset
    name. Re-running resumes: nothing is trained twice (``retry_failed``: candidates that failed
    their last allowed attempt are retrained).

    Example::

        from analysis.study import load_study, run_study

        study = load_study("study.toml")
        result = run_study("runs/mine", study)
        print(result.report)
    """
    from analysis.evaluation import default_executor
    from analysis.report import write_report
    from analysis.search import run_compare, run_trajectory
    from analysis.validation import run_validation

    start = time.perf_counter()
    unknown = [job for job in jobs if job not in JOBS]
    if unknown or not jobs:
        raise StudyConfigError(
            f"The jobs of a study must be some of {list(JOBS)}; got {list(jobs)}."
        )
    if isinstance(study, (str, os.PathLike)):
        study = study_preset(str(study)) if str(study) in PRESET_NAMES else load_study(study)
    if not isinstance(study, StudyConfig):
        raise StudyConfigError(
            f"run_study needs a StudyConfig, a .toml file or a preset name; got "
            f"{type(study).__name__}."
        )
    validation, search = study.validation_config(), study.search_config()
    run = Path(run)
    check_study_run(run, validation, search, jobs)
    own = executor is None
    executor = executor or default_executor(study.supernet.device)
    results: dict[str, Any] = dict.fromkeys(JOBS)
    try:
        if "validate" in jobs:
            results["validate"] = run_validation(
                run, validation, executor=executor, progress=progress, retry_failed=retry_failed
            )
        if "trajectory" in jobs:
            results["trajectory"] = run_trajectory(run, search, progress=progress)
        if "compare" in jobs:
            results["compare"] = run_compare(
                run, search, executor=executor, progress=progress, retry_failed=retry_failed
            )
    finally:
        if own:
            executor.close()
    report = write_report(run)
    return StudyResult(run, results["validate"], results["trajectory"], results["compare"],
                       report, time.perf_counter() - start)  # fmt: skip
