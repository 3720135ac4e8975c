"""Run directories: train (or resume) a supernet into one and rank its space.

A supernet run directory holds ``config.json`` (the resolved config), ``supernet.pt`` (the
checkpoint, every epoch), ``history.csv`` and ``multinomials.csv`` (both rewritten with every
checkpoint, so an interrupted run can be looked at), ``multinomials.png``,
``multinomial_history.png``, ``space.npz``, ``ranking.csv`` and ``joint_topk.csv``. Running
again with the same config resumes from the checkpoint; a different config is refused with
:class:`~analysis.errors.RunConflictError` and nothing in the directory is touched.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.errors import RunConflictError
from dagspace.io import atomic_write

__all__ = [
    "SupernetRun",
    "check_run_config",
    "dataset_spec",
    "register_job",
    "run_identity",
    "set_aside",
    "supernet_run",
    "update_summary",
]


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


def _write_text(path: Path, text: str) -> None:
    with atomic_write(path, newline="") as handle:
        handle.write(text)


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


def supernet_run(
    run: Path, config: Any, *, progress: bool = True, top_k: int = 10, candidate: Any = None
) -> SupernetRun:
    """Train (or resume) the supernet of ``config`` in ``run``, write its files, rank its space.

    ``candidate``: the stand-alone recipe (a ``CandidateConfig``; default: its defaults) whose
    networks a distillation target (``config.arch_target``, e.g. ``"snip"``) scores."""
    from analysis.distillation import check_arch_target
    from analysis.plots import plot_multinomial_history, plot_multinomials
    from surrogate.device import resolve_device
    from surrogate.training import (
        HISTORY_COLUMNS,
        MULTINOMIAL_COLUMNS,
        history_rows,
        multinomial_rows,
        train_supernet,
    )

    run = Path(run)
    check_run_config(run, config)
    check_arch_target(config.arch_target)
    device = resolve_device(config.device)
    dataset = dataset_spec(config).load(device)
    run.mkdir(parents=True, exist_ok=True)
    if not (run / "config.json").exists():
        _write_text(run / "config.json", config.to_json())
    elif _extends_finished(run, _stored_config(run), config):
        old = run / f"config.json.epochs-{_stored_config(run).epochs}"  # kept, not overwritten
        _write_text(old, (run / "config.json").read_text())
        _write_text(run / "config.json", config.to_json())

    def write_tables(history: Sequence[Any]) -> None:
        """history.csv and multinomials.csv: with every checkpoint, so that an interrupted
        run can be looked at, and once more at the end."""
        _write_text(run / "history.csv", _csv_text(HISTORY_COLUMNS, history_rows(history)))
        _write_text(
            run / "multinomials.csv",
            _csv_text(MULTINOMIAL_COLUMNS, multinomial_rows(history, config.ops)),
        )

    target = _arch_target(run, config, dataset, candidate)
    result = train_supernet(config, dataset, checkpoint_path=run / "supernet.pt",
                            progress=progress, on_checkpoint=write_tables,
                            arch_target=target)  # fmt: skip
    history = result.history
    write_tables(history)
    plot_multinomials(
        result.final.op_probabilities,
        config.ops,
        run / "multinomials.png",
        title=f"Multinomials after {len(history)} epochs ({config.dataset})",
        edge_probs=result.final.edge_probabilities,
    )
    plot_multinomial_history(history, run / "multinomial_history.png", config.ops)
    return SupernetRun(result, _rank(run, result.supernet, config, top_k), run, dataset)


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


def _rank(run: Path, supernet: Any, config: Any, top_k: int) -> Any:
    """Rank the labelled space of the supernet's cells; write ranking.csv and joint_topk.csv."""
    from dagspace.enumeration import MAX_ENUMERATION_VERTICES
    from surrogate.relative import rank_space

    if config.vertices > MAX_ENUMERATION_VERTICES:
        return None
    space = _space(run, config)
    ranking = rank_space(
        space, supernet.op_probabilities(), supernet.edge_probabilities(), op_names=config.ops
    )
    with atomic_write(run / "ranking.csv", newline="") as handle:
        ranking.frame().to_csv(handle, index=False)
    with atomic_write(run / "joint_topk.csv", newline="") as handle:
        ranking.top_k(top_k).to_csv(handle, index=False)
    return ranking


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


def set_aside(run: str | Path) -> Path | None:
    """Move the run directory ``run`` aside to ``<run>.old-<UTC time>`` (never deleted), so
    that a job starts it over (``--fresh``); returns where it went (``None``: no directory)."""
    import datetime as dt

    run = Path(run)
    if not run.exists():
        return None
    if not run.is_dir():
        raise RunConflictError(f"The run path {str(run)!r} exists and is not a directory.")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    aside, n = run.with_name(f"{run.name}.old-{stamp}"), 1
    while aside.exists():
        aside, n = run.with_name(f"{run.name}.old-{stamp}-{n}"), n + 1
    run.rename(aside)
    return aside


def update_summary(run: Path, section: str, data: dict[str, Any]) -> Path:
    """Set ``section`` of ``run/summary.json`` (one section per job), keeping the others."""
    path = Path(run) / "summary.json"
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = json.loads(path.read_text())
        except json.JSONDecodeError:  # a summary is derived data: rebuild it, but keep a copy
            path.replace(path.with_suffix(".json.unreadable"))
    current[section] = data
    with atomic_write(path) as handle:
        json.dump(current, handle, indent=2, default=float, allow_nan=True)
    return path
