"""The Gumbel-softmax supernet over the complete DAG: shared weights, sampled cells (GDAS-style).

Every cell of a ``V``-vertex space is a sub-graph of the complete DAG on ``V`` vertices, so one
set of weights per cell position, one instance of every operation at every interior vertex and
one input projection per vertex, can run any architecture of the space. The choice of operation
at each module (interior vertex) of each cell is a multinomial with logits ``alpha``; the
presence of each edge is a two-way multinomial with logits ``beta``. Training samples them with
hard (straight-through) Gumbel-softmax, so a step computes only the sampled operation of each
module, and only the vertices of the sampled, pruned cell.

The module is one topic at about 620 lines: the supernet, its sampler and the per-cell plans
that its forward pass runs share one private representation (:class:`_CellPlan`), so they stay
together rather than split across files that would import each other's internals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dagspace.cell import NASBENCH101_OPS, CellSpec, on_path_mask, prune
from dagspace.checks import check_int
from dagspace.errors import InvalidCellError
from surrogate.device import derive_seeds, torch_generator
from surrogate.errors import ConfigError, TrainingError
from surrogate.network import (
    check_input_shape,
    initialise_weights,
    macro_layout,
    mean_of,
    pooling,
    projection,
)
from surrogate.ops import OPERATIONS, ConvBnRelu, build_operation

__all__ = [
    "MAX_RESAMPLES",
    "MODES",
    "ArchitectureSample",
    "Supernet",
    "SupernetCell",
    "active_vertices",
    "embed_cell",
    "gumbel_noise",
]

MAX_RESAMPLES = 100
"""How many times a cell's Gumbel draw is retried (invalid topology or non-finite values)."""

MODES = ("hard", "soft")


def gumbel_noise(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """Standard Gumbel noise ``-log(-log(U))``, ``U ~ Uniform[0, 1)``, float32 on the CPU.

    ``U = 0`` gives ``-inf``; callers resample non-finite draws.
    """
    uniform = torch.rand(tuple(shape), generator=generator, dtype=torch.float32)
    return -torch.log(-torch.log(uniform))


def active_vertices(matrix: np.ndarray) -> np.ndarray:
    """Boolean ``(V,)``: the vertices on some input -> output path of the ``(V, V)`` matrix.

    All ``False`` when the input cannot reach the output (an invalid cell).
    """
    return on_path_mask(np.asarray(matrix, dtype=bool))


def embed_cell(
    spec: CellSpec, num_vertices: int, ops: Sequence[str] = NASBENCH101_OPS
) -> tuple[np.ndarray, np.ndarray]:
    """Place a cell of ``v <= num_vertices`` vertices into the ``num_vertices`` positions.

    Vertices ``0 .. v-2`` go to positions ``0 .. v-2`` and the output to position ``V-1``; the
    positions ``v-1 .. V-2`` stay empty. Pass a pruned cell to get what a network runs.

    Returns:
        ``matrix``: uint8 ``(V, V)``; ``op_index``: int64 ``(V,)``, the index into ``ops`` of each
        position's operation, ``-1`` at the input, the output, empty positions, and everywhere
        for an unlabelled cell.

    Raises:
        dagspace.InvalidCellError: the cell has more than ``num_vertices`` vertices, or an
            operation that is not in ``ops``.
    """
    v = spec.num_vertices
    if v > num_vertices:
        raise InvalidCellError(
            f"A cell with {v} vertices does not fit a supernet of {num_vertices} vertices."
        )
    positions = np.array([*range(v - 1), num_vertices - 1])  # (v,)
    matrix = np.zeros((num_vertices, num_vertices), dtype=np.uint8)
    matrix[np.ix_(positions, positions)] = spec.matrix
    op_index = np.full(num_vertices, -1, dtype=np.int64)
    if spec.ops is not None:
        for vertex, op in enumerate(spec.ops[1:-1], start=1):
            if op not in ops:
                raise InvalidCellError(
                    f"The operation {op!r} (vertex {vertex}) is not one of the supernet's "
                    f"operations {list(ops)}."
                )
            op_index[vertex] = list(ops).index(op)
    return matrix, op_index


@dataclass(frozen=True, eq=False)
class ArchitectureSample:
    """One Gumbel-softmax draw of all ``K`` cells.

    ``op_index``: int64 ``(K, V-2)`` the sampled operation of each module; ``edges``: bool
    ``(K, E)`` the sampled presence of each edge (``numpy.triu_indices(V, 1)`` order; each cell
    has an input -> output path). ``op_weights`` ``(K, V-2, n_ops)`` and ``edge_weights``
    ``(K, V, V)`` carry the gradients to ``alpha`` and ``beta``: in hard mode straight-through
    one-hots (value 1 for the sampled option, 0 elsewhere), in soft mode the relaxed
    probabilities; ``None`` when the sample is not differentiable (hard) or the edges are fixed.
    """

    op_index: np.ndarray
    edges: np.ndarray
    op_weights: torch.Tensor | None
    edge_weights: torch.Tensor | None
    tau: float
    mode: str


@dataclass(frozen=True, eq=False)
class _CellPlan:
    """What one cell computes: present edges, active vertices, ops and their weights."""

    present: np.ndarray  # bool (V, V)
    active: np.ndarray  # bool (V,)
    op_index: np.ndarray  # int (V,), -1 where there is no op or all ops run (soft)
    op_weights: torch.Tensor | None  # (V-2, n_ops)
    edge_weights: torch.Tensor | None  # (V, V)
    soft_ops: bool = False


class SupernetCell(nn.Module):
    """The shared weights of one cell position: every op at every module, a projection per
    vertex, over the complete DAG on ``num_vertices`` vertices."""

    def __init__(
        self, num_vertices: int, ops: Sequence[str], channels_in: int, channels: int
    ) -> None:
        super().__init__()
        self.num_vertices = num_vertices
        # projections[j - 1]: how the input vertex reaches vertex j (j = 1 .. V-1)
        self.projections = nn.ModuleList(
            projection(channels_in, channels) for _ in range(1, num_vertices)
        )
        # vertex_ops[j - 1][o]: operation o at module j (j = 1 .. V-2)
        self.vertex_ops = nn.ModuleList(
            nn.ModuleList(build_operation(op, channels) for op in ops)
            for _ in range(1, num_vertices - 1)
        )

    def forward(self, x: torch.Tensor, plan: _CellPlan) -> torch.Tensor:
        """``(B, channels_in, H, W)`` to ``(B, channels, H, W)`` following ``plan``.

        Only active vertices run. Vertex ``j`` aggregates the mean over its present in-edges
        from active vertices; with edge weights (a differentiable sample), every in-edge from
        an active vertex contributes ``weight * h_i`` — 1 for a present edge, exactly 0 for an
        absent one — so the straight-through gradient reaches ``beta`` for both, while the
        value stays the mean of the present predecessors.
        """
        last = self.num_vertices - 1
        states: list[torch.Tensor | None] = [None] * self.num_vertices
        weights = plan.edge_weights
        for j in range(1, last + 1):
            if not plan.active[j]:
                continue
            terms: list[torch.Tensor] = []
            count = 0
            for i in range(j):
                present = bool(plan.present[i, j])
                if not plan.active[i] or (not present and weights is None):
                    continue
                h = self.projections[j - 1](x) if i == 0 else states[i]
                assert h is not None  # active vertices before j have run
                terms.append(h if weights is None else weights[i, j] * h)
                count += present
            aggregate = mean_of(terms, count)  # (B, channels, H, W)
            if j == last:
                return aggregate
            states[j] = self._module(j, aggregate, plan)
        raise AssertionError("the output vertex is always active")  # pragma: no cover

    def _module(self, j: int, x: torch.Tensor, plan: _CellPlan) -> torch.Tensor:
        candidates = self.vertex_ops[j - 1]
        weights = plan.op_weights
        if plan.soft_ops:  # every op runs, weighted
            assert weights is not None
            out = [weights[j - 1, o] * op(x) for o, op in enumerate(candidates)]
            return mean_of(out, 1)
        o = int(plan.op_index[j])
        out_o = candidates[o](x)  # only the chosen op runs
        return out_o if weights is None else weights[j - 1, o] * out_o


def _use_batch_statistics(module: nn.Module) -> None:
    """Make every batch norm of ``module`` normalise with the batch's own statistics, always."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None


class Supernet(nn.Module):
    """A Gumbel-softmax supernet over the complete DAG on ``num_vertices`` vertices.

    The macro skeleton is :class:`surrogate.network.Network`'s (stem, ``num_stages`` stages,
    pooling between them, classifier); each of the ``num_cells`` cell positions has its own
    shared weights (:class:`SupernetCell`) and its own architecture parameters:

    - ``alpha``: op logits ``(K, V-2, n_ops)``, one multinomial per module (interior vertex);
    - ``beta``: edge logits ``(K, E, 2)``, ``E = V(V-1)/2`` in ``numpy.triu_indices(V, 1)``
      order, last dimension (absent, present); ``None`` when ``learn_topology`` is false, and
      the edges of cell ``k`` are those of ``topology[k]`` (all edges if no topology is given).

    **The sampling process** (what the relative surrogate's exact probabilities assume): every
    module's op and every edge are drawn *independently* from their multinomials (Gumbel-max,
    so the temperature does not change the distribution of the hard sample), and a cell whose
    edges leave no input -> output path is redrawn (its edges only, since ops do not affect
    validity). The process is therefore "independent edges and ops, conditioned on every cell
    being valid". A draw that is not finite (``U = 0``, or diverged logits) is redrawn too;
    after :data:`MAX_RESAMPLES` failed draws of one cell, :class:`TrainingError` is raised.
    After sampling, a cell is pruned: vertices off every input -> output path are not
    computed (their op is still sampled, but never runs).

    ``mode="hard"`` (GDAS): a module's output is ``onehot[o] * op_o(x)`` for the sampled ``o``
    alone, the straight-through one-hot passing the gradient to ``alpha`` while no other op
    runs; present edges are weighted by their straight-through one-hot. ``mode="soft"``: every
    op runs and is weighted by its relaxed Gumbel-softmax probability, and every edge is
    present, weighted by its relaxed probability of being present (the cost baseline of
    :func:`surrogate.bench.bench_supernet`).

    Batch norms always use the batch's statistics (no running statistics): shared weights see
    a different sub-network at every step, so running averages would describe none of them.
    Evaluating an architecture (:meth:`forward` with ``architecture=``) therefore depends
    mildly on the evaluation batch.

    Args:
        num_vertices: ``V``, at least 3 (input, output and one module).
        num_cells: ``K``, the cells of an architecture.
        ops: the operation names (registered in :data:`surrogate.ops.OPERATIONS`).
        input_shape: ``(C, H, W)`` of one example.
        num_classes: the classifier's outputs.
        channels: the stem's channels; each later stage doubles them.
        num_stages: stages the cells are split into.
        learn_topology: learn ``beta`` (else the edges are fixed).
        topology: with ``learn_topology=False``, ``K`` cells (labelled or not) whose matrices
            (embedded with :func:`embed_cell` if smaller) fix each cell's edges.
        mode: ``"hard"`` or ``"soft"`` (see above).
        seed: seeds the weight initialisation and the supernet's own sampling generator
            (used by ``forward(x)`` without a sample).
    """

    def __init__(
        self,
        num_vertices: int,
        num_cells: int,
        ops: Sequence[str] = NASBENCH101_OPS,
        *,
        input_shape: Sequence[int],
        num_classes: int,
        channels: int = 16,
        num_stages: int = 2,
        learn_topology: bool = True,
        topology: Sequence[CellSpec] | None = None,
        mode: str = "hard",
        seed: int = 0,
    ) -> None:
        super().__init__()
        num_vertices = check_int("Supernet", "num_vertices", num_vertices, 3, ConfigError)
        num_cells = check_int("Supernet", "num_cells", num_cells, 1, ConfigError)
        num_classes = check_int("Supernet", "num_classes", num_classes, 1, ConfigError)
        self.ops = self._check_ops(ops)
        in_channels = check_input_shape("Supernet", input_shape)[0]
        layout = macro_layout(input_shape, num_cells, channels, num_stages)
        self.num_vertices = num_vertices
        self.num_cells = num_cells
        self.learn_topology = bool(learn_topology)
        self.mode = mode
        rows, cols = np.triu_indices(num_vertices, 1)
        self.edge_rows, self.edge_cols = rows, cols
        self._fixed_edges = self._check_topology(topology)  # bool (K, E) or None

        self.stem = ConvBnRelu(in_channels, channels, 3)
        self.pools = nn.ModuleList(pooling(slot.pool) for slot in layout)
        self.cells = nn.ModuleList(
            SupernetCell(num_vertices, self.ops, slot.channels_in, slot.channels) for slot in layout
        )
        self.classifier = nn.Linear(layout[-1].channels, num_classes)
        init_seed, sample_seed = derive_seeds(seed, 2)
        initialise_weights(self, init_seed)
        _use_batch_statistics(self)

        n_ops, num_edges = len(self.ops), len(rows)
        self.alpha = nn.Parameter(torch.zeros(num_cells, num_vertices - 2, n_ops))
        self.beta = (
            nn.Parameter(torch.zeros(num_cells, num_edges, 2)) if self.learn_topology else None
        )
        self.generator = torch_generator(sample_seed)
        self.tau = 1.0

    # -- validation ---------------------------------------------------------------------------
    @staticmethod
    def _check_ops(ops: Sequence[str]) -> tuple[str, ...]:
        if isinstance(ops, str) or not all(isinstance(op, str) for op in ops) or not ops:
            raise ConfigError(
                f"The 'ops' parameter of Supernet must be a non-empty sequence of names; "
                f"got {ops!r}."
            )
        ops = tuple(ops)
        unknown = [op for op in ops if op not in OPERATIONS]
        if unknown or len(set(ops)) != len(ops):
            raise ConfigError(
                "The 'ops' parameter of Supernet must be distinct names from "
                f"{sorted(OPERATIONS)}; got {list(ops)}."
            )
        return ops

    def _check_topology(self, topology: Sequence[CellSpec] | None) -> np.ndarray | None:
        if self.learn_topology:
            if topology is not None:
                raise ConfigError(
                    "The 'topology' parameter of Supernet is used only with "
                    "learn_topology=False; got a topology with learn_topology=True."
                )
            return None
        num_edges = len(self.edge_rows)
        if topology is None:  # the complete DAG
            return np.ones((self.num_cells, num_edges), dtype=bool)
        cells = (topology,) if isinstance(topology, CellSpec) else tuple(topology)
        if len(cells) != self.num_cells or not all(isinstance(c, CellSpec) for c in cells):
            raise ConfigError(
                f"The 'topology' parameter of Supernet must be {self.num_cells} CellSpecs (one "
                f"per cell); got {topology!r:.200}."
            )
        edges = np.zeros((self.num_cells, num_edges), dtype=bool)
        for k, spec in enumerate(cells):
            matrix, _ = embed_cell(CellSpec(spec.matrix), self.num_vertices)
            if not active_vertices(matrix).any():
                raise InvalidCellError(
                    f"The topology of cell {k} has no input -> output path; got matrix "
                    f"{spec.matrix.tolist()}."
                )
            edges[k] = matrix[self.edge_rows, self.edge_cols].astype(bool)
        return edges

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in MODES:
            raise ConfigError(f"The 'mode' of Supernet must be one of {MODES}; got {value!r}.")
        self._mode = value

    # -- parameter groups ---------------------------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters: ``[alpha]`` or ``[alpha, beta]``."""
        return [self.alpha] if self.beta is None else [self.alpha, self.beta]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter except the architecture parameters (the shared weights)."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    # -- distributions ------------------------------------------------------------------------
    def op_probabilities(self) -> np.ndarray:
        """float64 ``(K, V-2, n_ops)``: each module's probability of each op."""
        return torch.softmax(self.alpha.detach().double(), dim=-1).cpu().numpy()

    def edge_probabilities(self) -> np.ndarray:
        """float64 ``(K, E)``: each edge's probability of being present (before conditioning
        on validity); the fixed edges as 0/1 when the topology is not learned."""
        if self.beta is None:
            assert self._fixed_edges is not None
            return self._fixed_edges.astype(np.float64)
        return torch.softmax(self.beta.detach().double(), dim=-1)[..., 1].cpu().numpy()

    # -- sampling -----------------------------------------------------------------------------
    def _draw(
        self,
        logits: torch.Tensor,
        generator: torch.Generator,
        tau: float,
        what: str,
        accept: Callable[[torch.Tensor], bool] | None = None,
    ) -> torch.Tensor:
        """Gumbel noise for ``logits`` (CPU), redrawn until finite and ``accept``-ed."""
        reason = "no draw"
        for _ in range(MAX_RESAMPLES):
            noise = gumbel_noise(logits.shape, generator)
            perturbed = logits + noise
            if not bool(torch.isfinite(perturbed).all()):
                reason = "a non-finite perturbed logit"
                continue
            if not bool(torch.isfinite(torch.softmax(perturbed / tau, dim=-1)).all()):
                reason = f"a non-finite softmax at temperature {tau}"
                continue
            if accept is not None and not accept(perturbed):
                reason = "no input -> output path"
                continue
            return noise
        raise TrainingError(
            f"Could not draw a valid Gumbel sample for {what} in {MAX_RESAMPLES} tries (last "
            f"failure: {reason}; logits {logits.tolist()!r:.300}); the architecture "
            "parameters may have diverged."
        )

    def _edge_matrix(self, present: np.ndarray) -> np.ndarray:
        """bool ``(V, V)`` from a bool ``(E,)`` edge vector."""
        matrix = np.zeros((self.num_vertices, self.num_vertices), dtype=bool)
        matrix[self.edge_rows, self.edge_cols] = present
        return matrix

    def _draw_noise(
        self, generator: torch.Generator, tau: float
    ) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray, np.ndarray]:
        """CPU noise for ``alpha`` and ``beta``, the sampled op indices and edges."""
        alpha = self.alpha.detach().float().cpu()
        op_noise = torch.stack(
            [
                self._draw(alpha[k], generator, tau, f"the ops of cell {k}")
                for k in range(len(alpha))
            ]
        )
        op_index = (alpha + op_noise).argmax(dim=-1).numpy()  # (K, V-2)
        if self.beta is None:
            assert self._fixed_edges is not None
            return op_noise, None, op_index, self._fixed_edges.copy()

        def valid(perturbed: torch.Tensor) -> bool:
            present = (perturbed.argmax(dim=-1) == 1).numpy()
            return bool(active_vertices(self._edge_matrix(present)).any())

        beta = self.beta.detach().float().cpu()
        edge_noise = torch.stack(
            [
                self._draw(beta[k], generator, tau, f"the edges of cell {k}", accept=valid)
                for k in range(len(beta))
            ]
        )
        edges = ((beta + edge_noise).argmax(dim=-1) == 1).numpy()  # (K, E)
        return op_noise, edge_noise, op_index, edges

    def sample(
        self, generator: torch.Generator, tau: float, *, differentiable: bool = True
    ) -> ArchitectureSample:
        """Draw every cell (see the class docstring) at temperature ``tau``.

        With ``differentiable`` the sample carries the straight-through (hard) or relaxed
        (soft) weights that pass gradients to ``alpha`` and ``beta``; without it (a weight
        step) a hard sample is plain indices and the forward pass skips the weighting.
        """
        if not tau > 0:
            raise ConfigError(f"The temperature 'tau' must be positive; got {tau!r}.")
        op_noise, edge_noise, op_index, edges = self._draw_noise(generator, tau)
        op_index.setflags(write=False)
        edges.setflags(write=False)
        soft = self.mode == "soft"
        op_weights = edge_weights = None
        if differentiable or soft:
            with torch.set_grad_enabled(differentiable and torch.is_grad_enabled()):
                op_weights = self._relaxed(self.alpha, op_noise, op_index, tau, soft)
                if self.beta is not None and edge_noise is not None:
                    present = edges.astype(np.int64)
                    dense = self._relaxed(self.beta, edge_noise, present, tau, soft)[..., 1]
                    edge_weights = dense.new_zeros(
                        self.num_cells, self.num_vertices, self.num_vertices
                    )
                    edge_weights[:, self.edge_rows, self.edge_cols] = dense  # (K, V, V)
        return ArchitectureSample(op_index, edges, op_weights, edge_weights, float(tau), self.mode)

    @staticmethod
    def _relaxed(
        logits: torch.Tensor, noise: torch.Tensor, index: Any, tau: float, soft: bool
    ) -> torch.Tensor:
        probs = torch.softmax((logits + noise.to(logits.device)) / tau, dim=-1)
        if soft:
            return probs
        index = torch.from_numpy(np.array(index, dtype=np.int64)).to(logits.device)  # a copy
        hard = F.one_hot(index, probs.shape[-1])
        return hard.to(probs.dtype) - probs.detach() + probs  # straight-through

    def sample_architecture(self, seed: int | torch.Generator) -> tuple[CellSpec, ...]:
        """One architecture drawn from the multinomials (conditioned on validity, as in
        training): ``K`` labelled, *unpruned* ``V``-vertex cells (``prune`` gives what runs)."""
        _, _, op_index, edges = self._draw_noise(torch_generator(seed), 1.0)
        return self._specs(op_index, edges)

    def argmax_architecture(self) -> tuple[CellSpec, ...]:
        """The most probable architecture under the sampling process (unpruned, ``V`` vertices).

        Ops: each module's most probable op. Edges: every edge more likely present than absent,
        plus, if those leave no input -> output path, the path whose absent edges are cheapest
        to add (cost ``beta_absent - beta_present`` each; a shortest-path DP over the DAG). That
        is the exact mode of "independent edges conditioned on a path".
        """
        op_index = self.alpha.detach().cpu().argmax(dim=-1).numpy()
        if self.beta is None:
            assert self._fixed_edges is not None
            return self._specs(op_index, self._fixed_edges)
        beta = self.beta.detach().double().cpu().numpy()  # (K, E, 2)
        edges = beta[..., 1] > beta[..., 0]
        for k in range(self.num_cells):
            matrix = self._edge_matrix(edges[k])
            if not active_vertices(matrix).any():
                cost = np.zeros((self.num_vertices, self.num_vertices))
                cost[self.edge_rows, self.edge_cols] = beta[k, :, 0] - beta[k, :, 1]
                for i, j in _cheapest_path(np.where(matrix, 0.0, cost)):
                    matrix[i, j] = True
                edges[k] = matrix[self.edge_rows, self.edge_cols]
        return self._specs(op_index, edges)

    def architecture_of(self, sample: ArchitectureSample) -> tuple[CellSpec, ...]:
        """The architecture a hard sample runs: ``K`` labelled, unpruned ``V``-vertex cells."""
        return self._specs(sample.op_index, sample.edges)

    def _specs(self, op_index: np.ndarray, edges: np.ndarray) -> tuple[CellSpec, ...]:
        cells = []
        for k in range(self.num_cells):
            ops = ["input", *(self.ops[int(o)] for o in op_index[k]), "output"]
            cells.append(CellSpec(self._edge_matrix(edges[k]).astype(np.uint8), ops))
        return tuple(cells)

    # -- forward ------------------------------------------------------------------------------
    def _sample_plans(self, sample: ArchitectureSample) -> list[_CellPlan]:
        plans = []
        soft = sample.mode == "soft"
        for k in range(self.num_cells):
            if soft and self.beta is not None:  # every edge, weighted
                present = np.triu(np.ones((self.num_vertices,) * 2, dtype=bool), 1)
            else:
                present = self._edge_matrix(sample.edges[k])
            op_index = np.full(self.num_vertices, -1, dtype=np.int64)
            op_index[1:-1] = sample.op_index[k]
            plans.append(
                _CellPlan(
                    present=present,
                    active=active_vertices(present),
                    op_index=op_index,
                    op_weights=None if sample.op_weights is None else sample.op_weights[k],
                    edge_weights=None if sample.edge_weights is None else sample.edge_weights[k],
                    soft_ops=soft,
                )
            )
        return plans

    def _fixed_plans(self, architecture: Sequence[CellSpec]) -> list[_CellPlan]:
        cells = (architecture,) if isinstance(architecture, CellSpec) else tuple(architecture)
        if len(cells) != self.num_cells:
            raise InvalidCellError(
                f"An architecture for this supernet has {self.num_cells} cells; got {len(cells)}."
            )
        plans = []
        for k, spec in enumerate(cells):
            if not isinstance(spec, CellSpec) or spec.ops is None:
                raise InvalidCellError(
                    f"Cell {k} of an architecture must be a labelled CellSpec (the supernet "
                    f"needs its ops); got {spec!r:.200}."
                )
            matrix, op_index = embed_cell(prune(spec), self.num_vertices, self.ops)
            present = matrix.astype(bool)
            plans.append(_CellPlan(present, active_vertices(present), op_index, None, None))
        return plans

    def forward(
        self,
        x: torch.Tensor,
        architecture: Sequence[CellSpec] | None = None,
        *,
        sample: ArchitectureSample | None = None,
    ) -> torch.Tensor:
        """Logits ``(B, num_classes)`` for ``x`` ``(B, C, H, W)``.

        With ``architecture`` (``K`` labelled cells of at most ``V`` vertices) the supernet runs
        exactly that architecture on its shared weights: the "pseudo environment". Each cell is
        pruned and placed by :func:`embed_cell`, so an architecture always runs on the same
        weights however it is written; a sampled cell whose dangling vertices sit before its
        last live one therefore ran on other positions than its pruned form does (training
        shares every position among all roles, so both are trained). With ``sample`` it runs
        that draw; with neither it draws one from its own generator at temperature
        ``self.tau``.
        """
        if architecture is not None and sample is not None:
            raise ConfigError("Pass an 'architecture' or a 'sample' to Supernet, not both.")
        if architecture is not None:
            plans = self._fixed_plans(architecture)
        else:
            if sample is None:
                sample = self.sample(self.generator, self.tau)
            plans = self._sample_plans(sample)
        x = self.stem(x)  # (B, channels, H, W)
        for pool, cell, plan in zip(self.pools, self.cells, plans, strict=True):
            x = cell(pool(x), plan)
        return self.classifier(x.mean(dim=(2, 3)))  # (B, num_classes)


def _cheapest_path(cost: np.ndarray) -> list[tuple[int, int]]:
    """The edges of the cheapest input -> output path of a complete DAG with ``cost[i, j]``."""
    n = cost.shape[0]
    dist = np.full(n, np.inf)
    dist[0] = 0.0
    parent = np.zeros(n, dtype=np.int64)
    for j in range(1, n):
        candidates = dist[:j] + cost[:j, j]
        parent[j] = int(np.argmin(candidates))
        dist[j] = candidates[parent[j]]
    path, j = [], n - 1
    while j != 0:
        path.append((int(parent[j]), j))
        j = int(parent[j])
    return path[::-1]
