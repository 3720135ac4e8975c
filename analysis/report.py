"""``report.md`` and redrawn plots for a run directory, from what the run stored.

:func:`redraw_plots` rebuilds every plot of a run from its stored tables (``multinomials.csv``,
``validation.csv``, the descent's state in ``results.sqlite``, ``top<k>.csv``); :func:`write_report`
writes ``report.md`` with every table and plot the run has and the configs it ran with. Both read
only; neither trains anything, so they work on a run copied off another machine.

Reading never changes a run: the results store is opened read-only (a damaged one is reported
with a :class:`~analysis.errors.RunDamagedWarning` and left as it is; the plots then come from
the run's CSV files), and a damaged ``summary.json`` or table is a
:class:`~analysis.errors.RunDamagedError` that names the file.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError, RunDamagedError, RunDamagedWarning
from dagspace.io import atomic_write

__all__ = ["RunNotFoundError", "redraw_plots", "write_report"]


class RunNotFoundError(AnalysisError, FileNotFoundError):
    """The directory is not a dagrank run directory (it holds none of a run's files)."""


_MARKERS = ("config.json", "results.sqlite", "summary.json", "space6.npz")


def _check_run(run: str | os.PathLike) -> Path:
    run = Path(run)
    if not run.is_dir() or not any((run / name).exists() for name in _MARKERS):
        raise RunNotFoundError(
            f"Expected a dagrank run directory (holding one of {list(_MARKERS)}); got {run}."
        )
    return run


_REBUILD = (
    "it was left as it is. Run the job that wrote it (validate, trajectory or compare) on this "
    "run directory again to rebuild it from the store, or move it away"
)


def _summary(run: Path) -> dict[str, Any]:
    """``summary.json`` (``{}`` when absent); :class:`RunDamagedError` naming it when damaged."""
    path = run / "summary.json"
    if not path.exists():
        return {}
    from analysis.runs import read_summary

    try:
        text = path.read_text(encoding="utf-8")
        data = read_summary(path)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        what = "is empty" if not text.strip() else f"is not readable JSON ({err})"
        raise RunDamagedError(f"{path} {what}; {_REBUILD}.") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise RunDamagedError(
            f"{path} is not a run summary (expected a JSON object with one object per job; got "
            f"{type(data).__name__}); {_REBUILD}."
        )
    return data


def _read_csv(path: Path, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A table of the run; :class:`RunDamagedError` naming it when it is damaged."""
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        detail = " ".join(str(err).split())
        raise RunDamagedError(f"{path} is not a readable CSV table ({detail}).") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RunDamagedError(
            f"{path} lacks the column(s) {missing} that the run writes; got {list(frame.columns)}."
        )
    return frame


def _store_damage(run: Path) -> str | None:
    """A warning's text if the run's store is damaged (found read-only), else ``None``."""
    from analysis.results import store_problem

    path = run / "results.sqlite"
    problem = store_problem(path)
    if problem is None:
        return None
    return (
        f"{path} is damaged ({problem}); it was left as it is (plot and report change nothing). "
        f"Run a job on this run directory to move it aside and recover its readable records."
    )


def _trajectory_frame(run: Path) -> pd.DataFrame | None:
    """The descent's trajectory, rebuilt from its strategy state in the store (else the CSV)."""
    config = _summary(run).get("trajectory", {}).get("config")
    store_ok = (run / "results.sqlite").exists() and _store_damage(run) is None
    if config and store_ok and (run / "space.npz").exists():
        from analysis.results import read_state
        from dagspace import Space
        from dagspace.strategies import make_strategy

        saved = read_state(run / "results.sqlite", "trajectory/fd/0")
        if saved is not None:
            space = Space.load(run / "space.npz")
            strategy = make_strategy("fd", space, int(config["supernet"]["cells"]), seed=0,
                                     **config.get("fd", {}))  # fmt: skip
            strategy.load_state_dict(json.loads(saved)["strategy"])
            from analysis.search import trajectory_frame

            return trajectory_frame(strategy)
    csv = run / "trajectories.csv"
    return _read_csv(csv, ("epoch", "cell", "dimension", "objective")) if csv.exists() else None


def _multinomials(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``multinomials.csv``'s op rows: ``(epochs (E,), probabilities (E, K, V-2, n_ops), ops)``."""
    ops_rows = frame[frame["module"].str.startswith("vertex ")]
    if not len(ops_rows):
        raise RunDamagedError("multinomials.csv holds no operation rows ('vertex j' modules).")
    ops = list(dict.fromkeys(ops_rows["option"]))
    epochs = np.unique(ops_rows["epoch"].to_numpy(dtype=np.int64))
    e = np.searchsorted(epochs, ops_rows["epoch"].to_numpy(dtype=np.int64))
    k = ops_rows["cell"].to_numpy(dtype=np.int64)
    m = ops_rows["module"].str.removeprefix("vertex ").astype(int).to_numpy() - 1
    o = np.asarray([ops.index(op) for op in ops_rows["option"]])
    probs = np.zeros((len(epochs), int(k.max()) + 1, int(m.max()) + 1, len(ops)))
    probs[e, k, m, o] = ops_rows["probability"].to_numpy(dtype=float)
    return epochs, probs, ops


def _final_edges(frame: pd.DataFrame, cells: int, v: int) -> np.ndarray | None:
    """``multinomials.csv``'s edge rows of the last epoch as ``(K, E)``, or ``None``."""
    final = frame[frame["epoch"] == frame["epoch"].max()]
    rows = final[final["module"].str.startswith("edge ")]
    if not len(rows):
        return None
    edges = np.zeros((cells, v * (v - 1) // 2))
    index = {pair: e for e, pair in enumerate(zip(*np.triu_indices(v, 1), strict=True))}
    for cell, module, p in zip(rows["cell"], rows["module"], rows["probability"], strict=True):
        i, j = (int(x) for x in module.removeprefix("edge ").split("-"))
        edges[int(cell), index[(i, j)]] = p
    return edges


def _top_k_table(run: Path) -> Path | None:
    """The compare job's ``top<k>.csv``: the one its summary names, else the only one there."""
    from analysis.search import top_k_filename

    compare = _summary(run).get("compare", {})
    name = compare.get("table") or (top_k_filename(compare["top_k"]) if "top_k" in compare
                                    else None)  # fmt: skip
    if name and (run / str(name)).exists():
        return run / str(name)
    found = sorted(p for p in run.glob("top*.csv") if p.stem[3:].isdigit())
    return found[0] if len(found) == 1 else None


def _config_dataset(path: Path) -> str:
    if not path.exists():
        return ""
    try:
        return str(json.loads(path.read_text(encoding="utf-8")).get("dataset", ""))
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        raise RunDamagedError(f"{path} is not a readable supernet config (JSON).") from None


def _epochs_done(epochs: np.ndarray) -> int:
    """The number of epochs trained when the last row was recorded (files count from 1)."""
    return int(epochs.max())


def redraw_plots(run: str | os.PathLike, *, dpi: float = 110.0) -> list[Path]:
    """Redraw every plot the run has tables for, at ``dpi``; returns the paths written."""
    from analysis.plots import check_plot_path

    check_plot_path("plot.png", dpi)
    run = _check_run(run)
    written: list[Path] = []
    damage = _store_damage(run)
    if damage is not None:
        warnings.warn(damage, RunDamagedWarning, stacklevel=2)
    config_path = run / "config.json"
    if (run / "multinomials.csv").exists():
        from analysis.plots import plot_multinomial_history, plot_multinomials

        frame = _read_csv(run / "multinomials.csv", ("epoch", "cell", "module", "option",
                                                     "probability"))  # fmt: skip
        epochs, probs, ops = _multinomials(frame)
        edges = _final_edges(frame, probs.shape[1], probs.shape[2] + 2)  # (K, E) or None
        dataset = _config_dataset(config_path)
        title = f"Multinomials after {_epochs_done(epochs)} epochs ({dataset})"
        written.append(plot_multinomials(probs[-1], ops, run / "multinomials.png", title=title,
                                         edge_probs=edges, dpi=dpi))  # fmt: skip
        records = [SimpleNamespace(epoch=int(x) - 1, op_probabilities=p)  # 0-based records
                   for x, p in zip(epochs, probs, strict=True)]  # fmt: skip
        written.append(plot_multinomial_history(records, run / "multinomial_history.png", ops,
                                                dpi=dpi))  # fmt: skip
    if (run / "validation.csv").exists():
        from analysis.validation import plot_validation, summarize_validation

        frame = _read_csv(run / "validation.csv", ("uniform", "params", "test_accuracy"))
        saved = _summary(run).get("validate", {}).get("summary", {})
        summary = summarize_validation(frame, top_k=saved.get("top_k", 10),
                                       target=saved.get("target", "test_accuracy"))  # fmt: skip
        written.append(plot_validation(frame, summary, run / "validation.png", dpi=dpi))
    trajectory = _trajectory_frame(run)
    if trajectory is not None and len(trajectory):
        from analysis.search_plots import plot_trajectories

        objective = _summary(run).get("trajectory", {}).get("objective", "surrogate")
        written.append(plot_trajectories(trajectory, run / "trajectory.png", objective=objective,
                                          dpi=dpi))  # fmt: skip
    table = _top_k_table(run)
    if table is not None:
        from analysis.search_plots import plot_compare

        report = _summary(run).get("compare")
        top = _read_csv(table, ("method", "test_accuracy"))
        written.append(plot_compare(top, run / "compare.png", report,
                                     dpi=dpi))  # fmt: skip
    tabular = _summary(run).get("tabular_compare")
    if (run / "tabular_curves.csv").exists() and tabular is not None:
        from analysis.tabular_plots import plot_tabular_compare

        curves = pd.read_csv(run / "tabular_curves.csv")
        written.append(plot_tabular_compare(curves, run / "tabular_compare.png", tabular,
                                            dpi=dpi))  # fmt: skip
    premise = _summary(run).get("premise")
    if premise is not None and (run / "premise.csv").exists():
        written += _redraw_premise(run, premise, dpi)
    if (run / "space6.npz").exists():
        from analysis.space_plot import plot_space
        from dagspace import Space

        written.append(plot_space(Space.load(run / "space6.npz"), run / "space6.png", dpi=dpi))
    return written


def _redraw_premise(run: Path, section: dict[str, Any], dpi: float) -> list[Path]:
    """``premise.png`` from the table the job read (its path is in the summary) over the run's
    cached space; a warning, and nothing drawn, when either is gone (nothing is recomputed)."""
    from analysis.tabular import TabularConfig, tabular_space_path

    config = section.get("config")
    if config is None:
        return _not_redrawn("premise.png", "its summary predates what plot needs; run `dagrank "
                            "analyze features` again")  # fmt: skip
    config = TabularConfig(**{k: tuple(v) if isinstance(v, list) else v
                              for k, v in config.items()})  # fmt: skip
    cached = tabular_space_path(run, config.vertices, config.max_edges, config.space)
    for path in (Path(config.table), cached):
        if not path.exists():
            return _not_redrawn("premise.png", f"{path} is gone")
    from analysis.premise import premise_points
    from analysis.tabular_plots import plot_premise

    space, y, objective = premise_points(run, config)
    return [plot_premise(space, y, run / "premise.png", column=objective.column, dpi=dpi)]


def _not_redrawn(name: str, why: str) -> list[Path]:
    warnings.warn(f"{name} was not redrawn: {why}.", RunDamagedWarning, stacklevel=3)
    return []


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _na(value: float, digits: int = 3) -> str:
    """A figure that is not defined for this run (NaN) as ``n/a``."""
    return "n/a" if not np.isfinite(value) else _fmt(float(value), digits)


def _table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def _ci(c: dict[str, Any]) -> str:
    return f"{_fmt(c['value'])} [{_fmt(c['low'])}, {_fmt(c['high'])}]"


def _image(run: Path, name: str, alt: str) -> list[str]:
    return [f"![{alt}]({name})", ""] if (run / name).exists() else []


def _supernet_section(run: Path) -> list[str]:
    if not (run / "history.csv").exists():
        return []
    history = _read_csv(run / "history.csv", ("train_acc", "val_acc"))
    if not len(history):
        return ["## Supernet", "", "No epoch has been recorded yet.", ""]
    phases = history["phase"] if "phase" in history else pd.Series(["joint"] * len(history))
    epochs = history[phases != "arch"]
    rounds = int((phases == "arch").sum())
    last = epochs.iloc[-1] if len(epochs) else history.iloc[-1]
    train, val = _fmt(float(last["train_acc"])), _fmt(float(last["val_acc"]))
    fitted = (
        f"; then {rounds} rounds of the multinomials' fit on the frozen weights (final "
        f"mean sampled loss {_fmt(float(history['val_loss'].iloc[-1]))})"
        if rounds
        else ""
    )
    lines = ["## Supernet", "",
             f"{len(epochs)} epochs; final train accuracy {train}, validation accuracy {val} "
             f"(sampled architectures){fitted}.", ""]  # fmt: skip
    lines += _image(run, "multinomials.png", "operation probabilities")
    lines += _image(run, "multinomial_history.png", "multinomials over the epochs")
    if (run / "joint_topk.csv").exists():
        lines += _top_architectures(_read_csv(run / "joint_topk.csv", ("rank", "architecture")))
    return lines


def _cell_text(cell: dict[str, Any]) -> str:
    """A cell as its matrix rows and ops, e.g. ``0110/0001/0001/0000 in,conv3x3,maxpool,out``."""
    rows = "/".join("".join(str(int(b)) for b in row) for row in cell["matrix"])
    short = {"input": "in", "output": "out", "conv3x3-bn-relu": "conv3x3",
             "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool"}  # fmt: skip
    ops = cell.get("ops")
    return rows if ops is None else f"{rows} {','.join(short.get(o, o) for o in ops)}"


def _top_architectures(top: pd.DataFrame, limit: int = 10) -> list[str]:
    """The joint top-k as a table of cells drawn as matrix rows and ops, not hashes only."""
    import json

    name = str(top["score_name"].iloc[0]) if "score_name" in top and len(top) else "score"
    score = "score" if "score" in top else "log_probability"
    lines = [f"Best architectures under the surrogate's `{name}` score (exact joint top-k; each "
             "cell as its adjacency rows and ops):", "",
             "| rank | score | ties | log p | cells |", "|---|---|---|---|---|"]  # fmt: skip
    for _, row in top.head(limit).iterrows():
        cells = "<br>".join(f"`{_cell_text(c)}`" for c in json.loads(row["architecture"]))
        ties = int(row["ties"]) if "ties" in top else 1
        lines.append(f"| {row['rank']} | {_fmt(row[score])} | {ties} | "
                     f"{_fmt(row['log_probability'])} | {cells} |")  # fmt: skip
    if "ties" in top and (top["ties"] > 1).any():
        lines += ["", "Architectures with the same score (e.g. differing only in an edge whose "
                  "probability was not learned) are listed once, as the one the untrained prior "
                  "makes most probable; `ties` counts them."]  # fmt: skip
    return [*lines, ""]


def _validate_section(run: Path, section: dict[str, Any]) -> list[str]:
    s = section["summary"]
    k, target = s["top_k"], s["target"].replace("_", " ")
    ceiling = s.get("ceiling")
    lines = ["## Validation of the cheap estimators", "",
             f"{s['n']} architectures ({s['n_uniform']} drawn uniformly, the rest every "
             f"estimator's top of the pool), each trained from scratch on {section['dataset']} "
             f"with seeds {section['seeds']}; every estimator against the mean {target} over "
             f"the seeds (Kendall tau and Spearman rho with bootstrap 95% intervals over "
             f"architectures; the surrogate's score is `{section.get('score', 'sampling')}`; "
             f"the surrogate's tau interval is +/-{_fmt(s['half_width'], 2)}).", ""]  # fmt: skip
    if ceiling is not None:
        between, rest = ceiling["between_seeds"], ceiling["seed_vs_rest"]
        lines += [f"**Noise ceiling**: Kendall tau between seeds {_ci(between)}; one seed "
                  f"against the mean of the others {_ci(rest)}.", ""]  # fmt: skip
    snr = s.get("signal_to_noise", {})
    if snr:
        lines += [f"Signal to noise: accuracy spread across architectures "
                  f"{_fmt(snr['spread'], 4)} against seed-to-seed noise "
                  f"{_fmt(snr['seed_noise'], 4)} (ratio {_fmt(snr['ratio'], 2)}).", ""]  # fmt: skip
    lines += [f"| estimator | Kendall tau | Spearman rho | tau (uniform part) | tau / ceiling | "
              f"precision@{k} | regret@{k} | tau - tau(params) | p |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, f in s["estimators"].items():
        d = f["vs_params"]
        versus = "—" if name == "params" else f"{_ci(d)} | {_fmt(d['p_value'])}"
        if name == "params":
            versus += " | —"
        lines.append(f"| {name} | {_ci(f['kendall'])} | {_ci(f['spearman'])} | "
                     f"{_fmt(f['kendall_uniform']['value'])} | {_fmt(f['tau_over_ceiling'], 2)} | "
                     f"{_na(f['precision_at_k'])} | {_na(f['regret_at_k'], 4)} | "
                     f"{versus} |")  # fmt: skip
    if s["estimators"] and all(not np.isfinite(f["precision_at_k"])
                               for f in s["estimators"].values()):  # fmt: skip
        from analysis.validation import MIN_PER_K

        lines += ["", f"precision@{k} and regret@{k} need at least {MIN_PER_K * k} architectures "
                  f"({MIN_PER_K}k; below that the top-{k} is most of the sample); this run has "
                  f"{s['n']}: n/a."]  # fmt: skip
    best = s["best"]
    p_best = s["estimators"][best]["vs_params"]["p_value"]
    verdict = ("distinguishable from" if best != "params" and p_best < 0.05
               else "not distinguishable from")  # fmt: skip
    lines += ["", f"Best estimator: **{best}** (its tau is {verdict} the parameter count's at "
              "the 5% level, paired bootstrap).", ""]  # fmt: skip
    if "surrogate" in s["estimators"] and "params" in s["estimators"]:
        sur = s["estimators"]["surrogate"]
        d = sur["vs_params"]
        if d["p_value"] < 0.05 and d["value"] > 0:
            says = "ranks better than the parameter count"
        elif d["p_value"] < 0.05:
            says = "ranks **worse** than the parameter count"
        else:
            says = "is **not distinguishable** from the parameter count"
        lines += [f"The relative surrogate (tau {_fmt(sur['kendall']['value'])}) {says} "
                  f"(tau - tau(params) = {_ci(d)}, p = {_fmt(d['p_value'])}).", ""]  # fmt: skip
    for other, v in s.get("surrogate_versus", {}).items():
        what = (
            f"its teacher `{other}` (the multinomials were distilled from it)"
            if v["teacher"]
            else f"`{other}` on the same supernet's shared weights (what its weights know)"
        )
        differs = "distinguishable" if v["p_value"] < 0.05 else "not distinguishable"
        lines += [f"The surrogate against {what}: tau ratio {_fmt(v['ratio'], 2)}, "
                  f"difference {_fmt(v['delta'])} [{_fmt(v['low'])}, {_fmt(v['high'])}], "
                  f"p = {_fmt(v['p_value'])} ({differs}).", ""]  # fmt: skip
    comp = s.get("composition", {})
    if comp:
        lines += ["Sample by cell size (cells counted once per architecture they belong to): "
                  + "; ".join(f"{part}: " + ", ".join(f"{c} x {v}" for v, c in sizes.items())
                              for part, sizes in comp.items()) + ".", ""]  # fmt: skip
    t = section["timing_s"]
    lines += [f"Wall time {t['wall']} s (supernet and ranking {t['supernet_and_ranking']} s, "
              f"estimators {t.get('estimators', 'n/a')} s, candidates {t['candidates']} s).",
              ""]  # fmt: skip
    lines += _image(run, "validation.png", "every estimator's tau, then the best one's scatter")
    return lines


def _trajectory_section(run: Path, section: dict[str, Any]) -> list[str]:
    lines = ["## Finite-difference descent", "",
             f"{section['epochs']} epochs, {section['evaluations']} distinct evaluations of the "
             f"{section['objective']} objective in {section['seconds']} s; objective at the "
             f"current architecture {_fmt(section['objective_first'])} -> "
             f"{_fmt(section['objective_last'])} (best seen {_fmt(section['objective_best'])}).",
             ""]  # fmt: skip
    return lines + _image(run, "trajectory.png", "trajectories per dimension per cell")


def _compare_section(run: Path, section: dict[str, Any]) -> list[str]:
    lines = ["## Top-k comparison of the search methods", "",
             f"Budget mode: {section['budget_mode']} (budget {section['budget']} evaluations per "
             f"method and repeat in 'evaluations' mode), {section['repeats']} repeat(s); each "
             f"method's top-{section['top_k']} trained from scratch.", "",
             "| method | objective | evaluations | search s | median test acc [q25, q75] | n |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for method, m in section["methods"].items():
        a = m["top_k_test_accuracy"]
        lines.append(f"| {method} | {m['search_objective']} | {m['evaluations']} | "
                     f"{m['search_seconds']} | {_fmt(a['median'])} [{_fmt(a['q25'])}, "
                     f"{_fmt(a['q75'])}] | {a['n']} |")  # fmt: skip
    lines += ["", "Mann-Whitney U tests (two-sided) on the top-k test accuracies:", "",
              "| pair | U | p | effect size |", "|---|---|---|---|"]  # fmt: skip
    for pair, t in section["mann_whitney"].items():
        lines.append(f"| {pair} | {_fmt(t['u'], 1)} | {_fmt(t['p_value'])} | "
                     f"{_fmt(t['effect_size'])} |")  # fmt: skip
    lines.append("")
    lines += _image(run, "compare.png", "top-k stand-alone accuracies per method")
    table = _top_k_table(run)
    if table is not None:
        cols = ["method", "repeat", "rank", "arch_hash", "objective_value", "test_accuracy",
                "params", "status"]  # fmt: skip
        top = _read_csv(table, tuple(cols))
        lines += [f"<details><summary>{table.name}</summary>", "", _table(top[cols]), "",
                  "</details>", ""]  # fmt: skip
    return lines


def write_report(run: str | os.PathLike) -> Path:
    """Write ``run/report.md``: every table and plot of the run, and its configs."""
    run = _check_run(run)
    summary = _summary(run)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# dagrank report: {run.name}", "", f"Written {now} from `{run}`.", ""]
    damage = _store_damage(run)
    if damage is not None:
        warnings.warn(damage, RunDamagedWarning, stacklevel=2)
        lines += ["## Damaged files", "", f"**{damage}**", ""]
    lines += _image(run, "space6.png", "the 6-vertex DAG space in its feature embedding")
    lines += _supernet_section(run)
    from analysis.tabular_report import premise_section, tabular_compare_section

    sections = (("validate", _validate_section), ("trajectory", _trajectory_section),
                ("compare", _compare_section), ("tabular_compare", tabular_compare_section),
                ("premise", premise_section))  # fmt: skip
    for job, section in sections:
        if job in summary:
            try:
                lines += section(run, summary[job])
            except (KeyError, TypeError, ValueError) as err:
                if isinstance(err, RunDamagedError):
                    raise
                raise RunDamagedError(
                    f"{run / 'summary.json'}: its {job!r} section lacks or mangles {err}; "
                    f"{_REBUILD}."
                ) from None
    configs = {"supernet": (run / "config.json").read_text() if (run / "config.json").exists()
               else None}  # fmt: skip
    for job in ("validate", "trajectory", "compare", "tabular_compare"):
        if job in summary and "config" in summary[job]:
            configs[job] = json.dumps(summary[job]["config"], indent=2)
    lines += ["## Configs", ""]
    for name, text in configs.items():
        if text:
            lines += [f"<details><summary>{name}</summary>", "", "```json", text.strip(), "```",
                      "", "</details>", ""]  # fmt: skip
    path = run / "report.md"
    with atomic_write(path) as handle:
        handle.write("\n".join(lines))
    return path
