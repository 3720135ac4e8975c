"""Report sections of the tabular jobs: the regret table of a comparison and the premise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["premise_section", "tabular_compare_section"]


def _fmt(value: Any, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}f}" if value == value else "nan"
    return str(value)


def _image(run: Path, name: str, alt: str) -> list[str]:
    return [f"![{alt}]({name})", ""] if (run / name).exists() else []


def tabular_compare_section(run: Path, section: dict[str, Any]) -> list[str]:
    from analysis.search import METHOD_LABELS

    checkpoints = sorted({int(q) for m in section["methods"].values() for q in m["median_regret"]})
    final = str(section["budget"])
    lines = ["## Search methods on a tabular benchmark", "",
             f"{section['repeats']} repeats of {section['budget']} queries on "
             f"`{Path(section['table']).name}` ({section['cells']} cells, keyed by "
             f"{section['key']}; searched column `{section['column']}`, best "
             f"{_fmt(section['optimum'])}). Median over repeats of the regret of the best found "
             f"(the table's best minus it), its quartiles after {final} queries, and the seconds "
             "each method took (all its repeats):", "",
             "| method | " + " | ".join(f"regret @{q}" for q in checkpoints)
             + f" | quartiles @{final} | seconds |",
             "|---|" + "---|" * len(checkpoints) + "---|---|"]  # fmt: skip
    for method, m in section["methods"].items():
        cells = [_fmt(m["median_regret"][str(q)]) if str(q) in m["median_regret"] else "-"
                 for q in checkpoints]  # fmt: skip
        quartiles = m.get("regret_quartiles", {}).get(final)
        spread = f"{_fmt(quartiles[0])} - {_fmt(quartiles[1])}" if quartiles else "-"
        label = METHOD_LABELS.get(method, method)
        lines.append(f"| {label} (`{method}`) | " + " | ".join(cells)
                     + f" | {spread} | {m['seconds']} |")  # fmt: skip
    lines += ["", f"Mann-Whitney U tests (two-sided) on the best accuracy after "
              f"{section['budget']} queries (effect size: the rank-biserial correlation, in "
              "[-1, 1], positive when the first method's runs find better cells):", "",
              "| pair | U | p | effect size |", "|---|---|---|---|"]  # fmt: skip
    for pair, t in section["mann_whitney"].items():
        lines.append(f"| {pair} | {_fmt(t['u'], 1)} | {_fmt(t['p_value'])} | "
                     f"{_fmt(t['effect_size'], 3)} |")  # fmt: skip
    lines.append("")
    return lines + _image(run, "tabular_compare.png", "median regret curves per method")


def premise_section(run: Path, section: dict[str, Any]) -> list[str]:
    lines = ["## What the embedding can see", "",
             f"On `{Path(section['table']).name}` ({section['cells']} cells, column "
             f"`{section['column']}`): the share of the variance between distinct points of each "
             "encoding (the rest lies within a point, invisible to a search in it), and a GP "
             f"fitted on {section['train']} cells, scored on held-out ones.", "",
             "| encoding | dims | distinct points | variance share | without worst 1% | "
             "GP R^2 | R^2 w/o worst 1% | Kendall tau |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, e in section["encodings"].items():
        lines.append(f"| {name} | {e['dimensions']} | {e['distinct_points']} | "
                     f"{_fmt(e['variance_share'], 3)} | {_fmt(e['variance_share_trimmed'], 3)} | "
                     f"{_fmt(e['r2'], 3)} | {_fmt(e['r2_trimmed'], 3)} | "
                     f"{_fmt(e['kendall_tau'], 3)} |")  # fmt: skip
    lines += ["", f"Seed features: {', '.join(section['seed_features'])}; op-aware features: "
              f"{', '.join(section['op_aware_features'])}.", ""]  # fmt: skip
    return lines + _image(run, "premise.png", "accuracy over the seed's feature space")
