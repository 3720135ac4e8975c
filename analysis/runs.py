"""Run directories: train (or resume) a supernet into one and rank its space; the run's summary.

A supernet run directory holds ``config.json`` (the resolved config), ``supernet.pt`` (the
checkpoint, every epoch), ``history.csv`` and ``multinomials.csv`` (both rewritten with every
checkpoint, so an interrupted run can be looked at), ``multinomials.png``,
``multinomial_history.png``, ``space.npz``, ``ranking.npz`` (the whole ranking: every supernet
cell's probability of every space cell, and the untrained prior's; :func:`load_ranking`),
``ranking.csv`` (its best :data:`RANKING_ROWS` cells per supernet cell, or every cell when
asked) and ``joint_topk.csv``. Running again with the same config resumes from the checkpoint
and rewrites only what changed (a finished run: nothing, so a read-only one can be read); a
different config is refused with :class:`~analysis.errors.RunConflictError` and nothing in the
directory is touched. Who may write a run directory, and when: :mod:`analysis.rundir`.

``summary.json`` is strict JSON (:func:`update_summary`, :func:`read_summary`): a NaN or
infinite number is written as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (as
protobuf's JSON mapping does) and read back as the float.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.errors import RunConflictError, RunDamagedError
from analysis.rundir import job, set_aside
from dagspace.io import atomic_write

__all__ = [
    "RANKING_ROWS",
    "SupernetRun",
    "check_run_config",
    "check_stored_job",
    "dataset_spec",
    "load_ranking",
    "read_summary",
    "register_job",
    "run_identity",
    "save_ranking",
    "set_aside",
    "supernet_run",
    "update_summary",
]

RANKING_ROWS = 1000  # ranking.csv: the best cells of each supernet cell (None: every cell)
RANKING_FORMAT = "dagrank-ranking-1"


@dataclass(frozen=True)
class SupernetRun:
    """A trained supernet (``result``: a ``SupernetResult``) and its ranking (or ``None`` when the
    space is too large to enumerate)."""

    result: Any
    ranking: Any
    run_dir: Path
    dataset: Any = None  # the splits it trained on, on its device


def _csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def _write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it already holds exactly that; whether it wrote."""
    try:
        if path.read_bytes() == text.encode():
            return False
    except OSError:
        pass
    with atomic_write(path, newline="") as handle:
        handle.write(text)
    return True


def check_run_config(run: Path, config: Any) -> None:
    """Refuse a run directory whose config.json holds another config (touching nothing)."""
    from surrogate.config import config_differences, stored_config
    from surrogate.errors import ConfigError

    if run.exists() and not run.is_dir():
        raise RunConflictError(f"The run path {str(run)!r} exists and is not a directory.")
    path = run / "config.json"
    if not path.exists():
        return
    try:
        existing = stored_config(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ConfigError) as err:
        raise RunConflictError(
            f"{path} is not a readable supernet config ({err}); use another run directory."
        ) from None
    if _extends_finished(run, existing, config):  # a larger --epochs extends a finished run
        return
    if (
        existing.arch_schedule == "after"
        and config.epochs > existing.epochs
        and (existing.replace(epochs=config.epochs, device=config.device) == config)
    ):
        raise RunConflictError(
            f"{path} holds a run whose multinomials were fitted after its {existing.epochs} "
            f"epochs of weights (arch_schedule 'after'): more epochs cannot extend it; use "
            f"--fresh to start it over with {config.epochs}, or another run directory."
        )
    if existing.replace(device=config.device) != config:  # the device is not the run's identity
        diffs = "; ".join(config_differences(existing.replace(device=config.device), config))
        raise RunConflictError(
            f"{path} holds a different config (in the run != asked: {diffs}); use another "
            "run directory, or the run's own settings to resume it."
        )


def _extends_finished(run: Path, existing: Any, config: Any) -> bool:
    """Whether ``config`` asks for more epochs of the finished supernet run in ``run`` (its
    history.csv has every epoch of ``existing``; the checkpoint checks it again)."""
    from surrogate.training import extends

    history = run / "history.csv"
    if config.epochs <= existing.epochs or not history.exists():
        return False
    try:
        done = sum(1 for line in history.read_text(encoding="utf-8").splitlines()[1:] if line)
    except (OSError, UnicodeDecodeError):
        return False
    return extends(existing, config, done)


@job("dagrank supernet train")
def supernet_run(
    run: Path,
    config: Any,
    *,
    progress: bool = True,
    top_k: int = 10,
    ranking_rows: int | None = RANKING_ROWS,
    candidate: Any = None,
) -> SupernetRun:
    """Train (or resume) the supernet of ``config`` in ``run``, write its files, rank its space
    (``ranking.csv``: the best ``ranking_rows`` cells of each supernet cell, ``None``: every
    cell; ``joint_topk.csv``: the best ``top_k`` architectures). Files already holding what
    they would be rewritten with are left alone.

    ``candidate``: the stand-alone recipe (a ``CandidateConfig``; default: its defaults) whose
    networks a distillation target (``config.arch_target``, e.g. ``"snip"``) scores."""
    from analysis.distillation import check_arch_target
    from analysis.plots import plot_multinomial_history, plot_multinomials
    from dagspace.checks import check_int
    from surrogate.device import resolve_device, training_threads
    from surrogate.errors import ConfigError
    from surrogate.training import (
        HISTORY_COLUMNS,
        MULTINOMIAL_COLUMNS,
        history_rows,
        multinomial_rows,
        train_supernet,
    )

    check_int("supernet_run", "top_k", top_k, 1, ConfigError)
    if ranking_rows is not None:
        check_int("supernet_run", "ranking_rows", ranking_rows, 1, ConfigError)
    check_run_config(run, config)
    check_arch_target(config.arch_target)
    device = resolve_device(config.device)
    dataset = dataset_spec(config).load(device)
    if not (run / "config.json").exists():
        _write_text(run / "config.json", config.to_json())
    elif _extends_finished(run, _stored_config(run), config):
        old = run / f"config.json.epochs-{_stored_config(run).epochs}"  # kept, not overwritten
        _write_text(old, (run / "config.json").read_text())
        _write_text(run / "config.json", config.to_json())

    def write_tables(history: Sequence[Any]) -> bool:
        """history.csv and multinomials.csv: with every checkpoint, so that an interrupted
        run can be looked at, and once more at the end; whether either changed."""
        rows = multinomial_rows(history, config.ops)
        wrote = _write_text(run / "history.csv", _csv_text(HISTORY_COLUMNS, history_rows(history)))
        return _write_text(run / "multinomials.csv", _csv_text(MULTINOMIAL_COLUMNS, rows)) or wrote

    with training_threads(device) as threads:
        target = _arch_target(run, config, dataset, candidate)
        result = train_supernet(config, dataset, checkpoint_path=run / "supernet.pt",
                                progress=progress, on_checkpoint=write_tables,
                                arch_target=target)  # fmt: skip
    history = result.history
    changed = write_tables(history) or result.resumed_epochs < len(history)
    if changed or "supernet" not in _summary_sections(run):
        update_summary(run, "supernet", _supernet_section(run, result, threads))
    if changed or not (run / "multinomials.png").exists():
        plot_multinomials(
            result.final.op_probabilities,
            config.ops,
            run / "multinomials.png",
            title=f"Multinomials after {len(history)} epochs ({config.dataset})",
            edge_probs=result.final.edge_probabilities,
        )
    if changed or not (run / "multinomial_history.png").exists():
        plot_multinomial_history(history, run / "multinomial_history.png", config.ops)
    ranking = _rank(run, result.supernet, config, top_k, ranking_rows, changed)
    return SupernetRun(result, ranking, run, dataset)


def _summary_sections(run: Path) -> dict[str, Any]:
    try:
        return read_summary(run / "summary.json")
    except (OSError, ValueError):
        return {}


def _supernet_section(run: Path, result: Any, threads: int | None) -> dict[str, Any]:
    """The ``supernet`` section of ``summary.json``: epochs of weights, rounds of the
    multinomials' fit after them, time, and where and with how many intra-op threads each
    session trained (a supernet's numbers depend on both). A session's ``epochs`` (and
    ``arch_rounds``) are the first and last it ran, counted from 1."""
    sessions = list(_summary_sections(run).get("supernet", {}).get("sessions", []))
    phases = [getattr(h, "phase", "joint") for h in result.history]
    if result.resumed_epochs < len(result.history):
        session = {"epochs": _span(phases, result.resumed_epochs, arch=False)}
        rounds = _span(phases, result.resumed_epochs, arch=True)
        if rounds:
            session["arch_rounds"] = rounds
        sessions.append({**session, "device": str(result.device), "threads": threads,
                         "seconds": round(result.seconds, 2)})  # fmt: skip
    return {
        "epochs": sum(p != "arch" for p in phases),
        "arch_rounds": sum(p == "arch" for p in phases),
        "train_seconds": round(result.train_seconds, 2),
        "threads": threads,
        "sessions": sessions,
    }


def _span(phases: list[str], resumed: int, *, arch: bool) -> list[int]:
    """``[first, last]`` (from 1) of the epochs (or arch rounds) among ``phases[resumed:]``;
    ``[]`` when it ran none."""
    kind = [(p == "arch") == arch for p in phases]
    before, ran = sum(kind[:resumed]), sum(kind[resumed:])
    return [before + 1, before + ran] if ran else []


def _stored_config(run: Path) -> Any:
    from surrogate.config import stored_config

    return stored_config(json.loads((run / "config.json").read_text(encoding="utf-8")))


def _arch_target(run: Path, config: Any, dataset: Any, candidate: Any) -> Any:
    """The distillation target of ``config.arch_target`` (``None`` for ``"loss"``), scored on the
    CPU copy of the data, on the run's space."""
    from analysis.distillation import distillation_target
    from surrogate.candidate import CandidateConfig

    if config.arch_target == "loss":
        return None
    return distillation_target(config.arch_target, _space(run, config), config.cells,
                               dataset.to("cpu"), candidate or CandidateConfig(),
                               seed=config.seed)  # fmt: skip


def _space(run: Path, config: Any) -> Any:
    """The labelled space of the supernet's cells, from ``run/space.npz`` (written once)."""
    from dagspace import Space, enumerate_space

    path = run / "space.npz"
    if path.exists():
        return Space.load(path)
    space = enumerate_space(config.vertices, config.ops)
    space.save(path)
    return space


def dataset_spec(config: Any) -> Any:
    """The :class:`surrogate.tasks.DatasetSpec` of a supernet config: the data (and split)
    that the supernet, the pseudo environment and every stand-alone candidate of a run use."""
    from surrogate.tasks import DatasetSpec

    c = config
    return DatasetSpec(name=c.dataset, seed=c.seed, root=c.data_root, limit=c.data_limit,
                       val_fraction=c.val_fraction, test_fraction=c.test_fraction)  # fmt: skip


def _rank(run: Path, supernet: Any, config: Any, top_k: int, rows: int | None,
          trained: bool) -> Any:  # fmt: skip
    """Rank the labelled space of the supernet's cells; write ranking.npz (when trained now or
    absent), ranking.csv and joint_topk.csv (when they would change)."""
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES
    from surrogate.relative import rank_space

    if config.vertices > MAX_ENUMERATION_VERTICES:
        return None
    space = _space(run, config)
    ranking = rank_space(
        space, supernet.op_probabilities(), supernet.edge_probabilities(), op_names=config.ops
    )
    if trained or not (run / "ranking.npz").exists():
        save_ranking(ranking, run / "ranking.npz")
    frame = ranking.frame()
    if rows is not None:
        frame = frame.groupby("cell", sort=False).head(rows)  # sorted by rank within a cell
    _write_text(run / "ranking.csv", frame.to_csv(index=False, lineterminator="\n"))
    _write_text(
        run / "joint_topk.csv", ranking.top_k(top_k).to_csv(index=False, lineterminator="\n")
    )
    return ranking


def _space_digest(space: Any) -> str:
    """SHA-256 of the space's cell hashes, in order: ties a ranking file to its space."""
    return hashlib.sha256("\n".join(space.hashes.tolist()).encode()).hexdigest()


def save_ranking(ranking: Any, path: Path) -> Path:
    """Write ``ranking`` (a :class:`surrogate.relative.Ranking`) as one compressed ``.npz``:
    every supernet cell's probability of every space cell ``(K, N)``, the prior's ``(N,)``,
    their valid and in-space masses, the score's name and the space's digest."""
    cells, prior = ranking.cells, ranking.prior
    arrays = {
        "format": np.asarray(RANKING_FORMAT),
        "score": np.asarray(ranking.score),
        "space_digest": np.asarray(_space_digest(ranking.space)),
        "probability": np.stack([c.probability for c in cells]),
        "valid_mass": np.asarray([c.valid_mass for c in cells], dtype=np.float64),
        "in_space": np.asarray([c.in_space for c in cells], dtype=np.float64),
        "prior_probability": prior.probability,
        "prior_mass": np.asarray([prior.valid_mass, prior.in_space], dtype=np.float64),
    }
    with atomic_write(path, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    return path


def load_ranking(run: str | Path) -> Any:
    """The whole ranking of a supernet run (``ranking.npz`` over ``space.npz``), as a
    :class:`surrogate.relative.Ranking`: ``load_ranking(run).frame()`` is every row that
    ``ranking.csv`` holds the top of.

    Raises:
        RunDamagedError: a file is missing, unreadable, or ranks another space.
    """
    from dagspace import Space
    from surrogate.relative import CellScores, Ranking

    run = Path(run)
    path = run / "ranking.npz"
    space = Space.load(run / "space.npz")
    try:
        with np.load(path, allow_pickle=False) as data:
            fields = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise RunDamagedError(f"{path} is not a readable ranking file ({err}).") from None
    if str(fields.get("format", "")) != RANKING_FORMAT:
        raise RunDamagedError(f"{path} is not a ranking file of format {RANKING_FORMAT!r}.")
    if str(fields["space_digest"]) != _space_digest(space):
        raise RunDamagedError(f"{path} ranks another space than {run / 'space.npz'}.")
    masses = zip(fields["valid_mass"], fields["in_space"], strict=True)
    cells = tuple(
        CellScores(p, float(v), float(i))
        for p, (v, i) in zip(fields["probability"], masses, strict=True)
    )
    prior = CellScores(fields["prior_probability"], *map(float, fields["prior_mass"]))
    return Ranking(space, cells, 0.0, prior, str(fields["score"]))


def run_identity(config: dict[str, Any], ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """What of a job's config (``to_dict()``) makes a run what it is: everything but the
    device it runs on (a run started on the CPU resumes on a GPU) and the keys in ``ignore``
    (``epochs`` of the trajectory job, which a re-run with more epochs extends)."""
    out = {k: v for k, v in config.items() if k not in ignore and k != "device"}
    if isinstance(out.get("supernet"), dict):
        out["supernet"] = {k: v for k, v in out["supernet"].items() if k != "device"}
    return out


def register_job(
    store: Any, job: str, config: dict[str, Any], ignore: tuple[str, ...] = ()
) -> None:
    """Bind ``job`` to its config's :func:`run_identity` in the store, or check that it is the
    stored one (a run registered with its device, before devices stopped counting, matches too);
    :class:`RunConflictError` for another config."""
    identity = run_identity(config, ignore)
    stored = store.run_config(job)
    if stored is not None and run_identity(stored, ignore) == identity:
        return
    store.register_run(job, identity)


def check_stored_job(
    run: Path, job: str, config: dict[str, Any], ignore: tuple[str, ...] = ()
) -> None:
    """Refuse, before anything is written, a job whose config differs from the one the run's
    store registered it with (read without changing the store); :class:`RunConflictError`
    names the keys that differ."""
    from analysis.results import read_run_config
    from analysis.results.records import config_differences

    path = Path(run) / "results.sqlite"
    stored = read_run_config(path, job)
    if stored is None:
        return
    old, new = run_identity(stored, ignore), run_identity(config, ignore)
    if old != new:
        raise RunConflictError(
            f"{path} holds a different config for the {job!r} job (in the run != asked: "
            f"{config_differences(json.dumps(old), json.dumps(new))}); nothing was changed. "
            "Use another run directory, or the run's own settings to resume it."
        )


def _strict(value: Any) -> Any:
    """``value`` as strict JSON data: non-finite floats as ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``; numpy scalars and arrays as Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_strict(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "NaN"
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _numbers(value: Any) -> Any:
    """The inverse of :func:`_strict` for what JSON holds (bare ``NaN`` of older files too)."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value


def read_summary(path: str | Path) -> Any:
    """``summary.json`` (or any JSON the jobs write) with its non-finite numbers as floats.

    Raises:
        OSError, UnicodeDecodeError, json.JSONDecodeError: as reading and parsing raise them.
    """
    return _numbers(json.loads(Path(path).read_text(encoding="utf-8")))


def update_summary(run: Path, section: str, data: dict[str, Any]) -> Path:
    """Set ``section`` of ``run/summary.json`` (one section per job), keeping the others."""
    path = Path(run) / "summary.json"
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = read_summary(path)
        except (json.JSONDecodeError, UnicodeDecodeError):  # derived data: rebuilt, a copy kept
            path.replace(path.with_suffix(".json.unreadable"))
    current[section] = data
    with atomic_write(path) as handle:
        json.dump(_strict(current), handle, indent=2, allow_nan=False, default=float)
    return path
