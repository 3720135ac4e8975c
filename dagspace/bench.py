"""Benchmark of the space: vectorised enumeration and features against per-graph networkx."""

from __future__ import annotations

import time
import warnings
from dataclasses import asdict, dataclass

import networkx as nx
import numpy as np

from dagspace.cell import NASBENCH101_OPS
from dagspace.features import FEATURES, compute_features
from dagspace.space import Space, enumerate_space

__all__ = ["SpaceBench", "bench_bo", "bench_nasbench_hash", "bench_space"]


@dataclass(frozen=True)
class SpaceBench:
    """Timings in seconds. Measured: ``enumerate_s``, ``features_s`` (the whole space) and the
    networkx baseline on its samples (``baseline_*_sample_s``, over ``baseline_*_sample_size``
    raw matrices or cells). Extrapolated linearly from those samples to the whole space, and
    named so: ``baseline_*_extrapolated_s`` and the ``*_speedup_vs_extrapolated`` ratios."""

    cells: int
    enumerate_s: float
    features_s: float
    baseline_enumerate_sample_s: float
    baseline_features_sample_s: float
    baseline_enumerate_extrapolated_s: float
    baseline_features_extrapolated_s: float
    enumerate_speedup_vs_extrapolated: float
    features_speedup_vs_extrapolated: float
    baseline_enumerate_sample_size: int  # raw matrices timed
    baseline_features_sample_size: int  # cells timed
    baseline_hash: str

    def to_dict(self) -> dict:
        return asdict(self)


def _networkx_enumerate(bit_patterns: np.ndarray, v: int, ops, max_edges: int) -> dict:
    """NAS-Bench-101's own generator, one graph at a time: check the matrix, then hash every
    labelling with networkx's Weisfeiler-Lehman hash."""
    rows, cols = np.triu_indices(v, 1)
    buckets: dict[str, tuple] = {}
    for bits in bit_patterns:
        edges = [(int(r), int(c)) for r, c, b in zip(rows, cols, bits, strict=True) if b]
        if len(edges) > max_edges:
            continue
        graph = nx.DiGraph(edges)
        graph.add_nodes_from(range(v))
        if any(graph.out_degree(u) == 0 for u in range(v - 1)) or any(
            graph.in_degree(u) == 0 for u in range(1, v)
        ):
            continue
        for labels in np.ndindex(*([len(ops)] * (v - 2))):
            names = ["input", *(ops[i] for i in labels), "output"]
            nx.set_node_attributes(graph, dict(enumerate(names)), "op")
            key = nx.weisfeiler_lehman_graph_hash(graph, node_attr="op", iterations=3)
            buckets.setdefault(key, (edges, names))
    return buckets


def _networkx_features(cells) -> list[tuple[float, ...]]:
    out = []
    for cell in cells:
        graph = cell.to_networkx()
        ecc = np.array(list(nx.eccentricity(graph.to_undirected()).values()), dtype=float)
        deg = np.array([d for _, d in graph.degree()], dtype=float)
        out.append((ecc.var(), deg.var(), graph.number_of_edges()))
    return out


def bench_space(sample: int = 2000, seed: int = 0) -> SpaceBench:
    """Time the labelled 7-vertex NAS-Bench-101 space: enumeration and every feature, each
    beside a per-graph networkx baseline timed on ``sample`` graphs in the same run and
    extrapolated linearly (to the 2**21 raw 7-vertex matrices, and to every cell)."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    space = enumerate_space(7, NASBENCH101_OPS, max_edges=9)
    enumerate_s = time.perf_counter() - start

    start = time.perf_counter()
    compute_features(space.matrices, tuple(FEATURES))
    features_s = time.perf_counter() - start

    v, num = 7, 21
    ints = rng.choice(1 << num, size=sample, replace=False)
    patterns = (ints[:, None] >> np.arange(num)) & 1
    start = time.perf_counter()
    with warnings.catch_warnings():  # networkx notes that its directed hashes changed in 3.5
        warnings.simplefilter("ignore", UserWarning)
        _networkx_enumerate(patterns, v, NASBENCH101_OPS, 9)
    enumerate_sample_s = time.perf_counter() - start
    per_matrix = enumerate_sample_s / sample
    raw_matrices = sum(1 << (k * (k - 1) // 2) for k in range(2, v + 1))

    cells = [space[int(i)] for i in rng.choice(len(space), size=sample, replace=False)]
    start = time.perf_counter()
    _networkx_features(cells)
    features_sample_s = time.perf_counter() - start
    per_cell = features_sample_s / sample

    baseline_enum = per_matrix * raw_matrices
    baseline_feat = per_cell * len(space)
    return SpaceBench(
        cells=len(space),
        enumerate_s=round(enumerate_s, 3),
        features_s=round(features_s, 3),
        baseline_enumerate_sample_s=round(enumerate_sample_s, 3),
        baseline_features_sample_s=round(features_sample_s, 3),
        baseline_enumerate_extrapolated_s=round(baseline_enum, 1),
        baseline_features_extrapolated_s=round(baseline_feat, 1),
        enumerate_speedup_vs_extrapolated=round(baseline_enum / enumerate_s, 1),
        features_speedup_vs_extrapolated=round(baseline_feat / features_s, 1),
        baseline_enumerate_sample_size=sample,
        baseline_features_sample_size=sample,
        baseline_hash="networkx.weisfeiler_lehman_graph_hash per labelling",
    )


def bench_bo(
    space: Space,
    q: int = 8,
    n_train: int = 64,
    seed: int = 0,
    num_cells: int = 3,
    repeats: int = 3,
) -> dict:
    """Time one ``q``-architecture proposal of :class:`dagspace.strategies.bayes.BayesianSearch` on
    ``space`` (meant for the labelled NAS-Bench-101 space) after ``n_train`` random observations
    of a synthetic objective (the distance of the architecture's standardised features to a random
    target architecture's). Returns the median over ``repeats`` proposals (each from a fresh
    strategy restored to the same state) of the total and of every phase, in seconds;
    ``propose_cpu_s`` is the process CPU time of the proposal, which (torch runs it on one
    thread) is what the wall time would be on an idle machine."""
    from dagspace.strategies.bayes import BayesianSearch

    start = time.perf_counter()
    strategy = BayesianSearch(space, num_cells, seed, q=q, n_init=n_train)
    setup_s = time.perf_counter() - start
    points = strategy.embedding.cell_points_
    rng = np.random.default_rng(seed)
    target = points[rng.integers(len(space), size=num_cells)]  # (K, d)
    archs = strategy.ask(n_train)
    values = [float(np.linalg.norm(points[list(a)] - target, axis=1).sum()) for a in archs]
    strategy.tell(archs, values)
    state = strategy.state_dict()
    runs = []
    for _ in range(repeats):
        strategy.load_state_dict(state)
        start, cpu = time.perf_counter(), time.process_time()
        proposed = strategy.ask(q)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        runs.append({"propose_s": wall, "propose_cpu_s": cpu, **strategy.timings_})
    timing = {key: float(np.median([run[key] for run in runs])) for key in runs[0]}
    return {
        "bench": "bo",
        "cells": len(space),
        "num_cells": num_cells,
        "points_per_cell": len(strategy.embedding.points_),
        "q": q,
        "n_train": n_train,
        "proposed": len(proposed),
        "candidates": int(timing.pop("candidates")),
        "setup_s": round(setup_s, 3),
        **{key: round(value, 3) for key, value in timing.items()},
    }


def bench_nasbench_hash(space: Space | None = None, sample: int = 2000, seed: int = 0) -> dict:
    """NAS-Bench-101's module hash over a whole space (default: the NAS-Bench-101 space): the
    stacked computation, and the per-cell reference timed on ``sample`` cells and extrapolated.
    """
    from dagspace.nasbench import nasbench101_hash, nasbench101_hashes, nasbench101_labels

    start = time.perf_counter()
    space = space if space is not None else enumerate_space(7, NASBENCH101_OPS, max_edges=9)
    enumerate_s = time.perf_counter() - start
    labels = nasbench101_labels(space.ops, space.vocabulary)
    start = time.perf_counter()
    hashes = nasbench101_hashes(space.matrices, labels, space.num_vertices.astype(np.int64))
    stacked_s = time.perf_counter() - start
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(space), size=min(sample, len(space)), replace=False)
    cells = [space[int(i)] for i in picks]
    start = time.perf_counter()
    reference = [nasbench101_hash(c) for c in cells]
    per_cell_s = (time.perf_counter() - start) / len(cells)
    reference_s = per_cell_s * len(space)
    return {"cells": len(space), "enumerate_s": round(enumerate_s, 3),
            "stacked_s": round(stacked_s, 3), "reference_s": round(reference_s, 1),
            "reference_sample": len(cells), "speedup": round(reference_s / stacked_s, 1),
            "agree": bool(all(hashes[picks] == np.asarray(reference))),
            "distinct": len(np.unique(hashes))}  # fmt: skip
