"""``report.md`` and redrawn plots for a run directory, from what the run stored.

:func:`redraw_plots` rebuilds every plot of a run from its stored tables (``multinomials.csv``,
``validation.csv``, the descent's state in ``results.sqlite``, ``top10.csv``); :func:`write_report`
writes ``report.md`` with every table and plot the run has and the configs it ran with. Both read
only; neither trains anything, so they work on a run copied off another machine.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.errors import AnalysisError
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


def _summary(run: Path) -> dict[str, Any]:
    path = run / "summary.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _trajectory_frame(run: Path) -> pd.DataFrame | None:
    """The descent's trajectory, rebuilt from its strategy state in the store (else the CSV)."""
    config = _summary(run).get("trajectory", {}).get("config")
    if config and (run / "results.sqlite").exists() and (run / "space.npz").exists():
        from analysis.store import SQLiteStore
        from dagspace import Space
        from dagspace.strategies import make_strategy

        with SQLiteStore(run / "results.sqlite") as store:
            saved = store.get_state("trajectory/fd/0")
        if saved is not None:
            space = Space.load(run / "space.npz")
            strategy = make_strategy("fd", space, int(config["supernet"]["cells"]), seed=0,
                                     **config.get("fd", {}))  # fmt: skip
            strategy.load_state_dict(json.loads(saved)["strategy"])
            return pd.DataFrame(strategy.trajectory)
    csv = run / "trajectories.csv"
    return pd.read_csv(csv) if csv.exists() else None


def redraw_plots(run: str | os.PathLike) -> list[Path]:
    """Redraw every plot the run has tables for; returns the paths written."""
    run = _check_run(run)
    written: list[Path] = []
    config_path = run / "config.json"
    if (run / "multinomials.csv").exists() and config_path.exists():
        from analysis.plots import plot_multinomials

        frame = pd.read_csv(run / "multinomials.csv")
        last = frame[(frame["epoch"] == frame["epoch"].max())
                     & frame["module"].str.startswith("vertex ")]  # fmt: skip
        ops = list(dict.fromkeys(last["option"]))
        module = last["module"].str.removeprefix("vertex ").astype(int) - 1
        probs = np.zeros((int(last["cell"].max()) + 1, int(module.max()) + 1, len(ops)))
        for cell, m, op, p in zip(last["cell"], module, last["option"], last["probability"],
                                  strict=True):  # fmt: skip
            probs[int(cell), int(m), ops.index(op)] = p
        final = frame[frame["epoch"] == frame["epoch"].max()]
        edge_rows = final[final["module"].str.startswith("edge ")]
        v = probs.shape[1] + 2
        edges = np.zeros((probs.shape[0], v * (v - 1) // 2))
        index = {pair: e for e, pair in enumerate(zip(*np.triu_indices(v, 1), strict=True))}
        for cell, module, p in zip(edge_rows["cell"], edge_rows["module"],
                                   edge_rows["probability"], strict=True):  # fmt: skip
            i, j = (int(x) for x in module.removeprefix("edge ").split("-"))
            edges[int(cell), index[(i, j)]] = p
        dataset = json.loads(config_path.read_text()).get("dataset", "")
        title = f"Multinomials after {int(last['epoch'].max()) + 1} epochs ({dataset})"
        written.append(plot_multinomials(probs, ops, run / "multinomials.png", title=title,
                                         edge_probs=edges if len(edge_rows) else None))  # fmt: skip
    if (run / "validation.csv").exists():
        from analysis.validation import plot_validation, summarize_validation

        frame = pd.read_csv(run / "validation.csv")
        saved = _summary(run).get("validate", {}).get("summary", {})
        summary = summarize_validation(frame, top_k=saved.get("top_k", 10),
                                       target=saved.get("target", "test_accuracy"))  # fmt: skip
        written.append(plot_validation(frame, summary, run / "validation.png"))
    trajectory = _trajectory_frame(run)
    if trajectory is not None and len(trajectory):
        from analysis.search_plots import plot_trajectories

        objective = _summary(run).get("trajectory", {}).get("objective", "surrogate")
        written.append(plot_trajectories(trajectory, run / "trajectory.png", objective=objective))
    if (run / "top10.csv").exists():
        from analysis.search_plots import plot_compare

        report = _summary(run).get("compare")
        written.append(plot_compare(pd.read_csv(run / "top10.csv"), run / "compare.png", report))
    tabular = _summary(run).get("tabular_compare")
    if (run / "tabular_curves.csv").exists() and tabular is not None:
        from analysis.tabular_plots import plot_tabular_compare

        curves = pd.read_csv(run / "tabular_curves.csv")
        written.append(plot_tabular_compare(curves, run / "tabular_compare.png", tabular))
    if (run / "space6.npz").exists():
        from analysis.space_plot import plot_space
        from dagspace import Space

        written.append(plot_space(Space.load(run / "space6.npz"), run / "space6.png"))
    return written


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "nan" if not np.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


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
    history = pd.read_csv(run / "history.csv")
    last = history.iloc[-1]
    train, val = _fmt(float(last["train_acc"])), _fmt(float(last["val_acc"]))
    lines = ["## Supernet", "",
             f"{len(history)} epochs; final train accuracy {train}, validation accuracy {val} "
             "(sampled architectures).", ""]  # fmt: skip
    lines += _image(run, "multinomials.png", "operation probabilities")
    lines += _image(run, "multinomial_history.png", "multinomials over the epochs")
    if (run / "joint_topk.csv").exists():
        lines += _top_architectures(pd.read_csv(run / "joint_topk.csv"))
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
             "| rank | score | log p | cells |", "|---|---|---|---|"]  # fmt: skip
    for _, row in top.head(limit).iterrows():
        cells = "<br>".join(f"`{_cell_text(c)}`" for c in json.loads(row["architecture"]))
        lines.append(f"| {row['rank']} | {_fmt(row[score])} | {_fmt(row['log_probability'])} | "
                     f"{cells} |")  # fmt: skip
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
                     f"{_fmt(f['precision_at_k'])} | {_fmt(f['regret_at_k'], 4)} | "
                     f"{versus} |")  # fmt: skip
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
    if (run / "top10.csv").exists():
        top = pd.read_csv(run / "top10.csv")
        cols = ["method", "repeat", "rank", "arch_hash", "objective_value", "test_accuracy",
                "params", "status"]  # fmt: skip
        lines += ["<details><summary>top10.csv</summary>", "", _table(top[cols]), "",
                  "</details>", ""]  # fmt: skip
    return lines


def write_report(run: str | os.PathLike) -> Path:
    """Write ``run/report.md``: every table and plot of the run, and its configs."""
    run = _check_run(run)
    summary = _summary(run)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# dagrank report: {run.name}", "", f"Written {now} from `{run}`.", ""]
    lines += _image(run, "space6.png", "the 6-vertex DAG space in its feature embedding")
    lines += _supernet_section(run)
    if "validate" in summary:
        lines += _validate_section(run, summary["validate"])
    if "trajectory" in summary:
        lines += _trajectory_section(run, summary["trajectory"])
    if "compare" in summary:
        lines += _compare_section(run, summary["compare"])
    from analysis.tabular_report import premise_section, tabular_compare_section

    if "tabular_compare" in summary:
        lines += tabular_compare_section(run, summary["tabular_compare"])
    if "premise" in summary:
        lines += premise_section(run, summary["premise"])
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
