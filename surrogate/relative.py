"""The relative surrogate: every cell's exact probability under the supernet's sampling process.

The supernet samples each cell independently: every edge ``e`` of the complete DAG on ``V``
vertices is present with probability ``q_e``, every interior module ``m`` takes operation ``o``
with probability ``p_m(o)``, and a sample whose input cannot reach its output is redrawn. The
sampled cell is the pruned graph with the operations of its surviving vertices. The probability
of a cell ``c`` of the space is the total probability of the samples that prune to a cell
isomorphic to ``c``, conditioned on the sample being valid *and in the space* (a sample with more
edges than the space allows has no cell there; the mass left outside is reported).

Exact algorithm (vectorised; no loop over samples or cells):

1. Once per space (:class:`SampleMap`): all ``2 ** E`` edge sets of the complete DAG are pruned at
   once; the distinct pruned graphs *on their supernet positions* ``g`` are canonicalised
   (:func:`dagspace.enumeration.canonical_codes`), which gives each ``g`` its topology class ``C``
   and an embedding ``sigma`` of ``C``'s interior vertices into supernet positions.
2. Per cell of the supernet: ``P(g) = sum of prod_e q_e^b (1-q_e)^(1-b)`` over the edge sets that
   prune to ``g`` (one bincount), ``W(C, sigma) = sum P(g)`` (another), and for a labelled space
   ``P(C, labelling L) = sum_sigma W(C, sigma) prod_a p_sigma(a)(L_a)``: one
   ``(classes x embeddings) @ (embeddings x labellings)`` product per interior-vertex count.
   Labellings that are relabellings of each other under ``C``'s automorphisms are summed into the
   same canonical cell.

This is exact for every space that :func:`dagspace.enumerate_space` can build (up to 7 vertices:
2,097,152 edge sets). :func:`monte_carlo_probabilities` estimates the same numbers by sampling,
one canonical hash per sample, with standard errors; the tests check one against the other.

**The score** (:data:`SCORES`). The raw probability ranks by how often the process *produces* a
cell, not by what the supernet learned: under untrained multinomials every kept module costs
``ln n_ops`` and every edge decision ``ln 2``, pruning pools every raw sample that collapses onto a
small cell and isomorphism pools every relabelling of a wide one, so the empty cell is the
most probable cell of an untrained supernet. The default score is therefore the log-likelihood
ratio against the untrained prior,

    ``likelihood_ratio``: ``s(c) = log P_theta(c) - log P_0(c)``,

where ``P_0`` is the same exact process with every logit at 0 (ops uniform, edges 1/2). The
pruning and isomorphism multiplicities cancel, and ``s`` is identically 0 before training.
``sampling`` is the raw ``log P_theta(c)``; ``per_decision`` is the likelihood ratio divided by
the number of decisions that describe the cell (its modules plus the vertex pairs of its
matrix, ``(v - 2) + v (v - 1) / 2``), so cells of different sizes are compared per choice.

An architecture (one cell per supernet cell) scores the sum of its cells' scores;
:func:`joint_top_k` finds the best ``k`` architectures by an exact k-best merge.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from dagspace import CellSpec, Space, canonical_hash, try_prune
from dagspace.enumeration import canonical_codes, canonical_label_codes, edge_set_bits
from dagspace.hashing import interior_permutations
from dagspace.random import SeedLike, check_random_state
from surrogate.errors import ConfigError

__all__ = [
    "DEFAULT_SCORE",
    "SCORES",
    "CellScores",
    "Ranking",
    "SampleMap",
    "cell_probabilities",
    "distinct_top_k",
    "joint_top_k",
    "monte_carlo_probabilities",
    "prior_probabilities",
    "rank_space",
    "score_cells",
]

SCORES = ("likelihood_ratio", "sampling", "per_decision")
"""The relative surrogate's scores (see the module docstring); the first is the default."""
DEFAULT_SCORE = SCORES[0]


@dataclass(frozen=True)
class CellScores:
    """One supernet cell's distribution over the space.

    ``probability`` ``(N,)`` sums to 1 over the space; ``log_probability`` is its log (``-inf``
    for cells the process never produces); ``valid_mass`` is the probability that a raw sample is
    valid (before redrawing) and ``in_space`` the share of valid samples that land in the space.
    ``standard_error`` is set for Monte-Carlo estimates only.
    """

    probability: np.ndarray
    valid_mass: float
    in_space: float
    standard_error: np.ndarray | None = None

    @cached_property
    def log_probability(self) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self.probability)

    def ranks(self) -> np.ndarray:
        """``(N,)`` rank of every cell, 1 = most probable (ties share the lowest rank)."""
        return _ranks(self.probability)


def _prune_all(bits: np.ndarray, v: int) -> np.ndarray:
    """``(N, v)`` bool: which vertices of every edge set lie on an input -> output path."""
    rows, cols = np.triu_indices(v, 1)
    dense = np.zeros((len(bits), v, v), dtype=bool)
    dense[:, rows, cols] = bits.astype(bool)
    fwd = np.zeros((len(bits), v), dtype=bool)
    bwd = np.zeros((len(bits), v), dtype=bool)
    fwd[:, 0] = True
    bwd[:, v - 1] = True
    for j in range(1, v):
        fwd[:, j] = (dense[:, :j, j] & fwd[:, :j]).any(axis=1)
    for i in range(v - 2, -1, -1):
        bwd[:, i] = (dense[:, i, i + 1 :] & bwd[:, i + 1 :]).any(axis=1)
    return fwd & bwd


@dataclass(frozen=True)
class _Group:
    """The pruned graphs with ``k`` interior vertices: classes, embeddings, labelled cells."""

    k: int
    class_cells: np.ndarray  # (C_k, n**k) space index of (class, labelling); -1 none
    sigmas: np.ndarray  # (S_k, k) supernet positions of the class's interior vertices
    pair_of_g: np.ndarray  # (G,) class * S_k + sigma for the graphs of this group, else -1


class SampleMap:
    """How every raw sample of the complete DAG on ``V`` vertices lands on the space's cells.

    Built once per space (about 3 s for 7 vertices); :meth:`probabilities` then takes a fraction
    of a second per supernet cell.
    """

    def __init__(self, space: Space) -> None:
        self.space = space
        v = space.max_vertices
        self.num_vertices = v
        self.bits = edge_set_bits(v)  # (2**E, E) every edge set, triu order
        keep = _prune_all(self.bits, v)
        valid = keep[:, 0]
        rows, cols = np.triu_indices(v, 1)
        pruned = self.bits & keep[:, rows] & keep[:, cols]
        code = pruned.astype(np.int64) @ (np.int64(1) << np.arange(len(rows), dtype=np.int64))
        code[~valid] = -1
        g_codes, first, inverse = np.unique(code, return_index=True, return_inverse=True)
        start = 1 if g_codes[0] == -1 else 0
        self.g_of_sample = inverse.ravel() - start  # -1 for invalid samples
        self.num_graphs = len(g_codes) - start
        g_keep = keep[first[start:]]  # (G, v)
        g_bits = pruned[first[start:]]  # (G, E)
        self.n_ops = 0 if space.ops is None else len(space.op_names)
        self.groups = [self._group(k, g_keep, g_bits) for k in range(0, v - 1)]

    # -- building --------------------------------------------------------------------------
    def _space_classes(self, v: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The space's cells on ``v`` vertices: (cell indices, class id per cell, class codes,
        canonical permutation index of each class representative)."""
        space = self.space
        cells = np.flatnonzero(space.num_vertices == v)
        rows, cols = np.triu_indices(v, 1)
        bits = space.matrices[cells][:, rows, cols]
        keys = bits.astype(np.int64) @ (np.int64(1) << np.arange(len(rows), dtype=np.int64))
        _, rep_first, class_of_cell = np.unique(keys, return_index=True, return_inverse=True)
        codes, auto = canonical_codes(bits[rep_first], v)
        if len(np.unique(codes)) != len(codes):
            raise ConfigError(
                "The space holds two isomorphic topologies under different matrices; the "
                "relative surrogate needs a space built by dagspace.enumerate_space."
            )
        return cells, class_of_cell.ravel(), codes, auto

    def _group(self, k: int, g_keep: np.ndarray, g_bits: np.ndarray) -> _Group:
        v_full, v = self.num_vertices, k + 2
        n = max(self.n_ops, 1)
        positions = list(itertools.permutations(range(1, v_full - 1), k))
        sigmas = np.asarray(positions, dtype=np.int64).reshape(len(positions), k)
        pair_of_g = np.full(self.num_graphs, -1, dtype=np.int64)
        cells, class_of_cell, class_codes, class_auto = self._space_classes(v)
        class_cells = np.full((len(class_codes), n**k), -1, dtype=np.int64)
        members = np.flatnonzero(g_keep.sum(axis=1) == v)
        if len(class_codes) == 0:
            return _Group(k, class_cells, sigmas, pair_of_g)
        # graphs g with v kept vertices, compressed to v vertices in position order
        kept = np.sort(np.flatnonzero(g_keep[members].ravel()).reshape(-1, v) % v_full, axis=1)
        index = np.full((v_full, v_full), -1, dtype=np.int64)
        r_full, c_full = np.triu_indices(v_full, 1)
        index[r_full, c_full] = np.arange(len(r_full))
        ra, rb = np.triu_indices(v, 1)
        comp = g_bits[members[:, None], index[kept[:, ra], kept[:, rb]]]  # (G_v, E_v)
        codes, auto = canonical_codes(comp, v)
        order = np.argsort(class_codes)
        where = np.searchsorted(class_codes[order], codes)
        found = (where < len(order)) & (
            class_codes[order][np.minimum(where, len(order) - 1)] == codes
        )
        cls = order[np.minimum(where, len(order) - 1)]
        # g vertex i -> canonical position perm_g[i]; class rep vertex a -> perm_0[a]
        perms = interior_permutations(v)
        inverse = np.argsort(perms, axis=1)
        perm_g = np.argmax(auto, axis=1)
        perm_0 = np.argmax(class_auto, axis=1)[cls]
        rep_interior = perms[perm_0][:, 1 : v - 1]  # (G_v, k) canonical position of rep vertex a
        g_vertex = np.take_along_axis(inverse[perm_g], rep_interior, axis=1)  # g vertex of a
        sigma = np.take_along_axis(kept, g_vertex, axis=1)  # supernet position of rep vertex a
        sigma_key = sigma @ (v_full ** np.arange(k, dtype=np.int64))
        lookup = np.full(v_full**k, -1, dtype=np.int64)
        lookup[sigmas @ (v_full ** np.arange(k, dtype=np.int64))] = np.arange(len(sigmas))
        pair_of_g[members[found]] = cls[found] * len(sigmas) + lookup[sigma_key[found]]
        # labelled cells of every class, addressed by labelling in the representative's frame
        if self.n_ops == 0 or k == 0:
            class_cells[class_of_cell, 0] = cells
        else:
            codes_space = self.space.ops[cells][:, 1 : v - 1].astype(np.int64) - 2  # op index
            lab_int = codes_space @ (n ** np.arange(k - 1, -1, -1))
            patterns, pattern_of = np.unique(class_auto, axis=0, return_inverse=True)
            canon = canonical_label_codes(patterns, v, n)[pattern_of.ravel()]  # (C, n**k)
            cell_canon = canon[class_of_cell, lab_int]
            table = np.full(len(class_codes) * n**k, -1, dtype=np.int64)
            table[class_of_cell * n**k + cell_canon] = cells
            offsets = (np.arange(len(class_codes)) * n**k)[:, None]
            class_cells = table[offsets + canon]
        return _Group(k, class_cells, sigmas, pair_of_g)

    # -- evaluating -----------------------------------------------------------------------------
    def probabilities(self, op_probs: np.ndarray | None, edge_probs: np.ndarray) -> CellScores:
        """The exact distribution over the space for one supernet cell.

        Args:
            op_probs: ``(V-2, n_ops)`` per-module operation probabilities, columns in the
                space's ``op_names`` order (ignored for an unlabelled space).
            edge_probs: ``(E,)`` probability that each edge is present, ``triu_indices`` order.
        """
        v = self.num_vertices
        edge_probs = np.asarray(edge_probs, dtype=np.float64)
        if edge_probs.shape != (v * (v - 1) // 2,) or not np.all(
            (edge_probs >= 0) & (edge_probs <= 1)
        ):
            raise ConfigError(
                f"'edge_probs' must be {v * (v - 1) // 2} probabilities (one per edge of the "
                f"complete DAG on {v} vertices); got shape {edge_probs.shape}."
            )
        with np.errstate(divide="ignore", invalid="ignore"):
            log_q = np.log(edge_probs)
            log_not = np.log1p(-edge_probs)
        on = self.bits.astype(bool)
        log_p = np.where(on, log_q, 0.0).sum(axis=1) + np.where(on, 0.0, log_not).sum(axis=1)
        p_sample = np.exp(log_p)
        valid = self.g_of_sample >= 0
        p_graph = np.bincount(
            self.g_of_sample[valid], weights=p_sample[valid], minlength=self.num_graphs
        )
        valid_mass = float(p_graph.sum())
        if valid_mass <= 0:
            raise ConfigError(
                "The edge probabilities give no valid cell (input never reaches the output)."
            )
        out = np.zeros(len(self.space))
        labelled = self.n_ops > 0
        if labelled:
            op_probs = self._check_ops(op_probs)
        for group in self.groups:
            inside = group.pair_of_g >= 0
            if not inside.any():
                continue
            n_pairs = group.class_cells.shape[0] * len(group.sigmas)
            weight = np.bincount(
                group.pair_of_g[inside], weights=p_graph[inside], minlength=n_pairs
            ).reshape(group.class_cells.shape[0], -1)
            if labelled and group.k > 0:
                n, k = self.n_ops, group.k
                digits = (np.arange(n**k)[:, None] // n ** np.arange(k - 1, -1, -1)) % n
                per_position = op_probs[group.sigmas - 1]  # (S, k, n)
                lab = np.ones((len(group.sigmas), n**k))
                for a in range(k):
                    lab *= per_position[:, a, :][:, digits[:, a]]
                mass = weight @ lab  # (C, n**k)
            else:
                mass = weight.sum(axis=1, keepdims=True)
            cells = group.class_cells
            ok = cells >= 0
            out += np.bincount(cells[ok], weights=mass[ok], minlength=len(out))
        in_space = float(out.sum())
        if in_space <= 0:
            raise ConfigError("No valid sample of these probabilities lands in the space.")
        return CellScores(out / in_space, valid_mass, in_space / valid_mass)

    def _check_ops(self, op_probs: np.ndarray | None) -> np.ndarray:
        shape = (self.num_vertices - 2, self.n_ops)
        op_probs = None if op_probs is None else np.asarray(op_probs, dtype=np.float64)
        if op_probs is None or op_probs.shape != shape or not np.all(op_probs >= 0):
            raise ConfigError(
                f"'op_probs' must be a non-negative {shape} array (modules x the space's ops "
                f"{list(self.space.op_names)}); got "
                f"{None if op_probs is None else op_probs.shape}."
            )
        return op_probs / op_probs.sum(axis=1, keepdims=True)


def cell_probabilities(
    space: Space,
    op_probs: np.ndarray,
    edge_probs: np.ndarray,
    op_names: Sequence[str] | None = None,
    sample_map: SampleMap | None = None,
) -> list[CellScores]:
    """Exact distributions for every supernet cell.

    Args:
        op_probs: ``(K, V-2, n_ops)`` from :meth:`Supernet.op_probabilities`.
        edge_probs: ``(K, E)`` from :meth:`Supernet.edge_probabilities`.
        op_names: the supernet's operation order (default: the space's).
    """
    sample_map = sample_map or SampleMap(space)
    op_probs = np.asarray(op_probs, dtype=np.float64)
    if space.is_labelled and op_names is not None:
        missing = [name for name in space.op_names if name not in op_names]
        if missing:
            raise ConfigError(
                f"The supernet has no op {missing} of the space; its ops are {list(op_names)}."
            )
        op_probs = op_probs[..., [list(op_names).index(name) for name in space.op_names]]
    return [sample_map.probabilities(op_probs[c], edge_probs[c]) for c in range(len(edge_probs))]


def prior_probabilities(space: Space, sample_map: SampleMap | None = None) -> CellScores:
    """The distribution of an *untrained* supernet cell: every logit 0 (ops uniform, edges 1/2).

    The reference ``P_0`` of the default score; one distribution serves every supernet cell.
    """
    sample_map = sample_map or SampleMap(space)
    v = space.max_vertices
    n_ops = len(space.op_names) if space.is_labelled else 1
    op_probs = np.full((v - 2, n_ops), 1.0 / n_ops) if space.is_labelled else None
    return sample_map.probabilities(op_probs, np.full(v * (v - 1) // 2, 0.5))


def num_decisions(space: Space) -> np.ndarray:
    """``(N,)`` the decisions that describe each cell: its modules' operations (labelled spaces)
    plus one present/absent choice per vertex pair of its matrix, ``(v-2) + v(v-1)/2``."""
    v = space.num_vertices.astype(np.int64)
    modules = (v - 2) if space.is_labelled else 0
    return modules + v * (v - 1) // 2


def score_cells(
    scores: CellScores, prior: CellScores, kind: str = DEFAULT_SCORE, space: Space | None = None
) -> np.ndarray:
    """``(N,)`` the relative surrogate's score of every cell under ``kind`` (:data:`SCORES`).

    ``likelihood_ratio``: ``log P_theta - log P_0`` (exactly 0 where the distributions agree);
    ``sampling``: ``log P_theta``; ``per_decision``: the likelihood ratio over
    :func:`num_decisions` (needs ``space``). Cells the trained process never produces score
    ``-inf``.
    """
    if kind not in SCORES:
        raise ConfigError(f"The 'score' must be one of {list(SCORES)}; got {kind!r}.")
    if kind == "sampling":
        return scores.log_probability
    with np.errstate(invalid="ignore"):
        ratio = scores.log_probability - prior.log_probability
    ratio = np.where(scores.probability == prior.probability, 0.0, ratio)  # exact null
    if kind == "likelihood_ratio":
        return ratio
    if space is None:
        raise ConfigError("The 'per_decision' score needs the space (its cells' sizes).")
    return ratio / num_decisions(space)


def monte_carlo_probabilities(
    space: Space,
    op_probs: np.ndarray | None,
    edge_probs: np.ndarray,
    samples: int,
    seed: SeedLike = 0,
) -> CellScores:
    """The same distribution as :meth:`SampleMap.probabilities`, estimated from ``samples``
    draws of the sampling process, each pruned and hashed on its own (the reference path), with
    binomial standard errors."""
    rng = check_random_state(seed)
    v = space.max_vertices
    rows, cols = np.triu_indices(v, 1)
    counts = np.zeros(len(space))
    drawn = valid = 0
    while valid < samples:
        drawn += 1
        matrix = np.zeros((v, v), dtype=np.uint8)
        matrix[rows, cols] = rng.random(len(rows)) < edge_probs
        ops = None
        if space.is_labelled:
            names = space.op_names
            ops = [
                "input",
                *(names[rng.choice(len(names), p=p / p.sum())] for p in op_probs),
                "output",
            ]
        cell = try_prune(CellSpec(matrix, ops))
        if cell is None:
            continue
        valid += 1
        index = space.find(cell)
        if index is not None:
            counts[index] += 1
    inside = counts.sum()
    p = counts / inside
    return CellScores(p, valid / drawn, inside / valid, np.sqrt(p * (1 - p) / inside))


def joint_top_k(log_probs: Sequence[np.ndarray], k: int) -> list[tuple[float, tuple[int, ...]]]:
    """The ``k`` architectures with the highest summed log-probability, exactly.

    Each cell contributes its own top ``k`` (no better architecture can use a cell outside
    them); the lists are merged pairwise, keeping the best ``k`` sums of each merge.
    Returns ``(score, cell indices)`` pairs, best first.
    """
    if k < 1:
        raise ConfigError(f"'k' must be a positive int; got {k!r}.")
    best: list[tuple[float, tuple[int, ...]]] = [(0.0, ())]
    for scores in log_probs:
        scores = np.asarray(scores, dtype=np.float64)
        top = np.argsort(-scores, kind="stable")[:k]
        pairs = ((s + float(scores[i]), (*idx, int(i))) for s, idx in best for i in top)
        best = heapq.nlargest(k, pairs, key=lambda pair: pair[0])
    return best


TIE_DECIMALS = 9
"""Scores equal to this many decimals are a tie (the same score up to floating-point rounding)."""


def distinct_top_k(
    scores: Sequence[np.ndarray], k: int, prefer: Sequence[np.ndarray]
) -> list[tuple[float, tuple[int, ...], int]]:
    """The ``k`` best *distinct scores* of an architecture, exactly, each shown once.

    Cells of one supernet cell whose scores tie (to :data:`TIE_DECIMALS` decimals; e.g. cells
    that differ only in an edge whose probability was never learned, such as a frozen input ->
    output edge) form one level, represented by the cell with the highest ``prefer`` value (the
    untrained prior's log-probability: the cell the sampler produces most often; then the lowest
    index). The levels are merged as in :func:`joint_top_k`. Returns ``(score, cell indices,
    ties)`` triples, best first; ``ties`` is how many architectures share that choice of levels
    (the product of the levels' sizes).
    """
    if k < 1:
        raise ConfigError(f"'k' must be a positive int; got {k!r}.")
    levels, reps, sizes = [], [], []
    for cell_scores, cell_prefer in zip(scores, prefer, strict=True):
        values = np.round(np.asarray(cell_scores, dtype=np.float64), TIE_DECIMALS)
        order = np.lexsort((np.arange(len(values)), -np.asarray(cell_prefer), -values))
        ordered = values[order]
        first = np.r_[0, np.flatnonzero(ordered[1:] != ordered[:-1]) + 1]  # one per level
        counts = np.diff(np.r_[first, len(ordered)])
        levels.append(np.asarray(cell_scores, dtype=np.float64)[order[first]])
        reps.append(order[first])
        sizes.append(counts)
    best = joint_top_k(levels, k)
    out = []
    for score, idx in best:
        cells = tuple(int(reps[c][i]) for c, i in enumerate(idx))
        ties = int(np.prod([sizes[c][i] for c, i in enumerate(idx)], dtype=np.int64))
        out.append((score, cells, ties))
    return out


def architecture_hash(space: Space, indices: Sequence[int]) -> str:
    """The canonical hash of the architecture made of these space cells."""
    return canonical_hash([space[int(i)] for i in indices])


def _ranks(values: np.ndarray) -> np.ndarray:
    """``(N,)`` rank of every value, 1 = highest (ties share the lowest rank)."""
    order = np.argsort(-values, kind="stable")
    sorted_v = values[order]
    first = np.r_[0, np.flatnonzero(sorted_v[1:] != sorted_v[:-1]) + 1]
    rank_sorted = np.repeat(first + 1, np.diff(np.r_[first, len(order)]))
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = rank_sorted
    return ranks


@dataclass(frozen=True)
class Ranking:
    """The relative surrogate's answer for a trained supernet: one distribution per cell, the
    untrained prior they are measured against, and the name of the score that ranks them."""

    space: Space
    cells: tuple[CellScores, ...]
    seconds: float
    prior: CellScores | None = None
    score: str = DEFAULT_SCORE

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"The 'score' must be one of {list(SCORES)}; got {self.score!r}.")
        if self.prior is None:
            object.__setattr__(self, "prior", prior_probabilities(self.space))

    def cell_scores(self, kind: str | None = None) -> list[np.ndarray]:
        """One ``(N,)`` score array per supernet cell under ``kind`` (default: the ranking's)."""
        assert self.prior is not None
        kind = kind or self.score
        return [score_cells(c, self.prior, kind, self.space) for c in self.cells]

    def architecture_scores(self, indices: np.ndarray, kind: str | None = None) -> np.ndarray:
        """``(n,)`` the score of each architecture of ``indices`` ``(n, K)`` (summed over cells)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1, len(self.cells))
        per_cell = self.cell_scores(kind)
        return np.sum([per_cell[c][idx[:, c]] for c in range(len(self.cells))], axis=0)

    def frame(self) -> pd.DataFrame:
        """One row per (supernet cell, space cell): probability, log-probability, the prior's
        log-probability, every score, and the rank under the ranking's score."""
        assert self.prior is not None
        parts = []
        base = self.space.to_frame()[
            ["hash", "num_vertices", "num_edges", "edges"]
            + (["ops"] if self.space.is_labelled else [])
        ]
        base = base.astype({"num_vertices": int, "num_edges": int})
        for c, scores in enumerate(self.cells):
            part = base.copy()
            part.insert(0, "space_index", np.arange(len(self.space)))
            part.insert(0, "cell", c)
            part["probability"] = scores.probability
            part["log_probability"] = scores.log_probability
            part["log_prior"] = self.prior.log_probability
            for kind in SCORES[:1] + SCORES[2:]:
                part[kind] = score_cells(scores, self.prior, kind, self.space)
            main = score_cells(scores, self.prior, self.score, self.space)
            part["score"] = main
            part["score_name"] = self.score
            part["rank"] = _ranks(main)
            parts.append(part.sort_values(["rank", "space_index"]))
        return pd.concat(parts, ignore_index=True)

    def top(self, k: int) -> list[tuple[float, tuple[int, ...], int]]:
        """The ``k`` best distinct scores of an architecture (exact; :func:`distinct_top_k`):
        architectures that tie are one entry, the one the untrained prior makes most probable,
        with how many tie."""
        assert self.prior is not None
        prefer = [self.prior.log_probability] * len(self.cells)
        return distinct_top_k(self.cell_scores(), k, prefer)

    def top_k(self, k: int) -> pd.DataFrame:
        """The ``k`` best architectures under the ranking's score (exact, tied architectures
        once: :meth:`top`), with their cells in NAS-Bench-101 JSON, how many architectures tie
        with each (``ties``), and their raw log-probability beside the score."""
        rows = []
        logp = [s.log_probability for s in self.cells]
        for rank, (score, idx, ties) in enumerate(self.top(k), start=1):
            cells = [self.space[i] for i in idx]
            rows.append(
                {
                    "rank": rank,
                    "score": score,
                    "ties": ties,
                    "score_name": self.score,
                    "log_probability": float(sum(lp[i] for lp, i in zip(logp, idx, strict=True))),
                    "arch_hash": canonical_hash(cells),
                    "cell_hashes": ",".join(self.space.hashes[list(idx)]),
                    "architecture": json.dumps([cell.to_dict() for cell in cells]),
                }
            )
        return pd.DataFrame(rows)


def rank_space(
    space: Space,
    op_probs: np.ndarray,
    edge_probs: np.ndarray,
    op_names: Sequence[str] | None = None,
    score: str = DEFAULT_SCORE,
) -> Ranking:
    """Rank ``space`` for every supernet cell under ``score`` (exact; see the module docstring)."""
    if score not in SCORES:
        raise ConfigError(f"The 'score' must be one of {list(SCORES)}; got {score!r}.")
    if space.max_vertices * (space.max_vertices - 1) // 2 != np.shape(edge_probs)[-1]:
        raise ConfigError(
            f"The space has {space.max_vertices} vertices but the supernet's edge probabilities "
            f"have shape {np.shape(edge_probs)}."
        )
    start = time.perf_counter()
    sample_map = SampleMap(space)
    cells = cell_probabilities(space, op_probs, edge_probs, op_names, sample_map)
    prior = prior_probabilities(space, sample_map)
    return Ranking(space, tuple(cells), time.perf_counter() - start, prior, score)
