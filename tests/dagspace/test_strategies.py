from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize

from dagspace import (
    BayesianSearch,
    CellSpec,
    Embedding,
    FiniteDifferenceDescent,
    InvalidSpaceError,
    RandomSearch,
    SeedFiniteDifferenceDescent,
    StrategyError,
    enumerate_space,
    make_strategy,
    try_prune,
)
from dagspace.bench import bench_bo
from dagspace.strategies import project_to_hull

NAMES = ("random", "fd", "bayes", "evolution", "local", "fd-seed", "random-points")
FAST = {"random": {}, "fd": {"walkers": 2}, "bayes": {"n_init": 6, "q": 4},
        "evolution": {"population": 6, "tournament": 3}, "local": {}, "fd-seed": {},
        "random-points": {}}  # fmt: skip
RUN = {
    "random": 24,
    "fd": 24,
    "bayes": 14,
    "evolution": 24,
    "local": 24,
    "fd-seed": 24,
    "random-points": 24,
}  # evaluations per contract run (each GP fit costs)
EMBEDDED = ("fd", "bayes", "fd-seed", "random-points")  # the strategies that take features


@pytest.fixture(scope="module")
def space4():
    return enumerate_space(4)  # 13 cells at 8 distinct points


@pytest.fixture(scope="module")
def embedding6(space6):
    return Embedding(space6)


@pytest.fixture(autouse=True)
def _quiet_gp_jitter():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="A not p.d., added jitter")
        yield


def distance_objective(embedding, target_cell):
    """Sum over the supernet cells of the distance of their cell's point to the target's."""
    target = embedding.cell_points_[target_cell]

    def f(arch):
        return float(np.linalg.norm(embedding.cell_points_[list(arch)] - target, axis=1).sum())

    return f


def run(strategy, objective, evaluations, batch=4):
    """Ask/tell until ``evaluations`` values are told or the strategy has nothing to propose."""
    asked = []
    while len(strategy.history) < evaluations:
        archs = strategy.ask(min(batch, evaluations - len(strategy.history)))
        if not archs:
            break
        asked += archs
        strategy.tell(archs, [objective(a) for a in archs])
    return asked


# -- the contract, for every strategy --------------------------------------------------------------
def contract_space(name, space4, space6):
    """fd, evolution and local search move too fast on 13 cells to run long: they get the
    6-vertex space."""
    space = space6 if name in ("fd", "evolution", "local", "fd-seed") else space4
    return space, distance_objective(Embedding(space), 7)


@pytest.mark.parametrize("name", NAMES)
def test_seeded_runs_are_identical_and_never_repeat(name, space4, space6):
    space, f = contract_space(name, space4, space6)
    n = RUN[name]
    runs = [run(make_strategy(name, space, 2, seed=3, **FAST[name]), f, n) for _ in range(2)]
    assert runs[0] == runs[1]
    assert len(runs[0]) == len(set(runs[0])) == n
    assert run(make_strategy(name, space, 2, seed=4, **FAST[name]), f, n) != runs[0]


@pytest.mark.parametrize("name", NAMES)
def test_restored_strategy_proposes_what_the_uninterrupted_one_would(name, space4, space6):
    space4, f = contract_space(name, space4, space6)
    whole = make_strategy(name, space4, 2, seed=5, **FAST[name])
    expected = run(whole, f, RUN[name] + 6)

    first = make_strategy(name, space4, 2, seed=5, **FAST[name])
    asked = run(first, f, 12)
    pending = first.ask(4)  # outstanding when the state is saved
    state = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second = make_strategy(name, space4, 2, seed=99, **FAST[name])  # the seed is in the state
    second.load_state_dict(state)
    assert second.pending == pending and second.history == first.history
    assert second.ask(4) == pending  # outstanding at the save: handed out again first
    second.tell(pending, [f(a) for a in pending])
    asked += pending + run(second, f, RUN[name] + 6)

    assert asked == expected
    assert second.state_dict() == whole.state_dict()
    if name in ("fd", "fd-seed"):  # (as JSON text: a nan estimate equals itself)
        assert json.dumps(second.trajectory) == json.dumps(whole.trajectory)


@pytest.mark.parametrize("name", NAMES)
def test_restored_pending_architectures_may_be_told_directly(name, space4, space6):
    space = space6 if name == "local" else space4
    strategy = make_strategy(name, space, 1, seed=0, **FAST[name])
    if name == "local":  # one start at a time: its neighbours come once it is told
        strategy.tell(strategy.ask(1), [1.0])
    pending = strategy.ask(2)
    assert len(pending) == 2
    restored = make_strategy(name, space, 1, seed=0, **FAST[name])
    restored.load_state_dict(strategy.state_dict())
    restored.tell(pending[:1], [1.0])
    again = restored.ask(1)
    assert again == pending[1:] and restored.pending == pending[1:]
    assert not set(restored.ask(5)) & set(pending)


@pytest.mark.parametrize("name", NAMES)
def test_state_is_strict_json_with_diverged_values(name, space4):
    strategy = make_strategy(name, space4, 1, seed=0, **FAST[name])
    strategy.tell([(0,), (1,), (2,)], [math.nan, math.inf, -math.inf])
    strategy.ask(2)
    text = json.dumps(strategy.state_dict(), allow_nan=False)
    restored = make_strategy(name, space4, 1, seed=0, **FAST[name])
    restored.load_state_dict(json.loads(text))
    assert [str(v) for _, v in restored.history] == ["nan", "inf", "-inf"]


@pytest.mark.parametrize("name", NAMES)
def test_told_architectures_are_never_asked(name, space4):
    strategy = make_strategy(name, space4, 1, seed=0, **FAST[name])
    strategy.tell([(c,) for c in range(0, 13, 2)], [float(c) for c in range(0, 13, 2)])
    strategy.tell([(0,)], [0.0])  # the same value again: a no-op
    asked = strategy.ask(20)
    assert strategy.pending == asked and asked
    if name in ("fd", "local", "fd-seed"):  # one step's evaluations (a start), minus the told
        assert not {c for (c,) in asked} & set(range(0, 13, 2))
    else:
        assert sorted(asked) == [(c,) for c in range(1, 13, 2)]
        assert strategy.ask(1) == []


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_typed_errors_stating_expected_and_received(name, space4):
    strategy = make_strategy(name, space4, 2, seed=0, **FAST[name])
    with pytest.raises(StrategyError, match="positive int 'n'; got 0"):
        strategy.ask(0)
    with pytest.raises(StrategyError, match=r"expected length 2, got length 3 \(\(1, 2, 3\)\)"):
        strategy.tell([(1, 2, 3)], [1.0])
    with pytest.raises(StrategyError, match=r"ints in \[0, 13\).*got \(1, 13\)"):
        strategy.tell([(1, 13)], [1.0])
    with pytest.raises(StrategyError, match="got 2 architectures and 1 values"):
        strategy.tell([(1, 2), (2, 3)], [1.0])
    with pytest.raises(StrategyError, match="must be a real number; got 'x'"):
        strategy.tell([(1, 2)], ["x"])
    strategy.tell([(1, 2)], [1.0])
    with pytest.raises(StrategyError, match=r"already told the value 1.0; got 2.0"):
        strategy.tell([(1, 2)], [2.0])
    if name in EMBEDDED:  # the strategies that search an embedding
        with pytest.raises(InvalidSpaceError, match="Unknown feature 'nope'; this space has"):
            make_strategy(name, space4, 2, seed=0, features=("num_edges", "nope"))
    with pytest.raises(StrategyError, match=r"'num_cells' parameter .* an int >= 1; got 0"):
        make_strategy(name, space4, 0, seed=0)
    other = "random" if name != "random" else "fd"
    with pytest.raises(StrategyError, match=f"belongs to the strategy '{other}'"):
        strategy.load_state_dict(make_strategy(other, space4, 2, seed=0).state_dict())
    with pytest.raises(StrategyError, match="built with .*'num_cells': 3"):
        strategy.load_state_dict(make_strategy(name, space4, 3, seed=0).state_dict())
    with pytest.raises(StrategyError, match="format 'dagrank-strategy-1'; got None"):
        strategy.load_state_dict({})


def test_make_strategy_rejects_unknown_names_and_options(space4):
    with pytest.raises(
        StrategyError, match=r"Unknown strategy 'nope'; expected one of \['fd', 'random'"
    ):
        make_strategy("nope", space4, 1, seed=0)
    with pytest.raises(StrategyError, match=r"Unknown option\(s\) \['q'\] for the 'fd' strategy"):
        make_strategy("fd", space4, 1, seed=0, q=8)
    assert make_strategy("fd", space4, 1, seed=0, h=0.5).h == 0.5
    for name, bad, match in [
        (
            "fd-seed",
            {"h": 0.0},
            r"'h' parameter of SeedFiniteDifferenceDescent must be a float "
            r"in \(0.0, inf\)",
        ),
        ("fd-seed", {"momentum": 1.0}, r"'momentum' .* a float in \[0.0, 1.0\); got 1.0"),
        ("fd-seed", {"init": "center"}, "'init' .* 'random' or an architecture; got 'center'"),
        ("fd-seed", {"tie_break": "best"}, "'tie_break' .* 'random' or 'first'; got 'best'"),
        ("fd", {"h": -1.0}, r"'h' parameter of FiniteDifferenceDescent must be a float in \(0.0"),
        ("fd", {"walkers": 0}, "'walkers' parameter of FiniteDifferenceDescent must be an int"),
        ("fd", {"patience": 0}, "'patience' .* an int >= 1; got 0"),
        ("fd", {"restart": "home"}, r"'restart' .* \['best', 'random', 'points'\]; got 'home'"),
        ("fd", {"probes": "edges"}, r"'probes' .* \['auto', 'points', 'cells'\]; got 'edges'"),
        ("fd", {"evidence_alpha": 1.5}, r"'evidence_alpha' .* a float in \(0.0, 1.0\); got 1.5"),
        ("fd", {"max_epochs": 0}, "'max_epochs' .* an int >= 1; got 0"),
        ("fd", {"init": (99,)}, r"ints in \[0, 13\) \(the space's cells\); got \(99,\)"),
        ("bayes", {"refit_growth": 0.5}, r"'refit_growth' .* a float in \[1.0, inf\); got 0.5"),
    ]:
        with pytest.raises(StrategyError, match=match):
            make_strategy(name, space4, 1, seed=0, **bad)
    with pytest.raises(StrategyError, match="'q' parameter of BayesianSearch must be an int >= 1"):
        make_strategy("bayes", space4, 1, seed=0, q=0)


def test_importing_dagspace_and_its_strategies_does_not_import_torch():
    code = "import sys, dagspace, dagspace.strategies.bayes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- random search ---------------------------------------------------------------------------------
def test_random_search_covers_the_space_once_then_stops(space4):
    strategy = RandomSearch(space4, 2, seed=0)
    asked = strategy.ask(1000)
    assert sorted(asked) == list(itertools.product(range(13), repeat=2))
    assert asked != sorted(asked)
    assert strategy.ask(1) == []


def test_random_search_is_uniform_over_the_unseen_architectures(space4):
    """Past half the space the draw switches from rejection to bisection: both stay uniform."""
    counts = np.zeros(13, dtype=int)
    for seed in range(1300):
        strategy = RandomSearch(space4, 1, seed=seed)
        strategy.tell([(c,) for c in range(7)], [0.0] * 7)  # 7 of 13 seen: bisection
        counts[strategy.ask(1)[0][0]] += 1
        counts[RandomSearch(space4, 1, seed=seed).ask(1)[0][0]] += 1  # nothing seen: rejection
    expected = np.r_[np.full(7, 100.0), np.full(6, 100 + 1300 / 6)]
    chi2 = (((counts - expected) ** 2) / expected).sum()
    assert chi2 < 35  # 12 degrees of freedom: p < 0.001 beyond 32.9


# -- finite-difference descent on the lattice (the default) ---------------------------------------
def _step_of(fd):
    return json.loads(json.dumps(fd.state_dict()["extra"]["step"]))


def _probe_by_brute_force(embedding, point, d, side, h):
    """The oracle of a "points" probe: every point, its displacement, the cone, the nearest."""
    x = embedding.points_
    best, best_dist = point, math.inf
    sign = 1 if side else -1
    rows = range(len(x))
    cone = [
        q
        for q in rows
        if sign * (x[q, d] - x[point, d]) > 0
        and np.sum(np.delete(x[q] - x[point], d) ** 2) <= (x[q, d] - x[point, d]) ** 2
    ]
    pool = cone or [q for q in rows if sign * (x[q, d] - x[point, d]) > 0]
    for q in pool:
        target = x[point].copy()
        target[d] += sign * h
        dist = np.sum((x[q] - target) ** 2)
        if dist < best_dist:
            best, best_dist = q, dist
    return best


def test_fd_points_probes_are_the_nearest_points_to_x_plus_minus_h(space6, embedding6):
    for cell in np.random.default_rng(0).choice(len(space6), size=12, replace=False):
        fd = FiniteDifferenceDescent(space6, 1, seed=0, init=(int(cell),), h=0.7, max_epochs=1,
                                     probes="points")  # fmt: skip
        (row,) = _step_of(fd)["walkers"]
        point = int(embedding6.point_of_cell_[cell])
        assert row["point"] == [point] and row["center"] == [int(cell)]
        for i, d, below, below_arch, above, above_arch in row["probes"]:
            assert i == 0
            assert below == _probe_by_brute_force(embedding6, point, d, 0, 0.7)
            assert above == _probe_by_brute_force(embedding6, point, d, 1, 0.7)
            for q, arch in ((below, below_arch), (above, above_arch)):  # a cell of that point
                assert arch is None or embedding6.point_of_cell_[arch[0]] == q


def _cells_kernel(fd):
    """The "cells" probe kernel, both sides averaged, as an (M, M) matrix per dimension."""
    counts = fd._cells_per_point
    m = len(counts)
    kernels = []
    for d in range(fd.embedding.dim):
        k = np.zeros((m, m))
        for p in range(m):
            for side in (0, 1):
                region = fd.region(p, d, side)
                total = counts[region].sum()
                for q in region:
                    back = counts[fd.region(q, d, 1 - side)].sum()
                    k[p, q] += 0.5 * counts[q] / total * min(1.0, total / back)
        k[np.arange(m), np.arange(m)] += 1 - k.sum(axis=1)  # rejections: another cell of p
        kernels.append(k)
    return kernels


def test_fd_cells_probes_keep_the_space_distribution_of_cells_exactly(space5_labelled):
    """Metropolis-Hastings: a probe (below or above, equally) of a cell-uniform point is a
    cell-uniform point, exactly; and the sampler draws from that kernel."""
    fd = FiniteDifferenceDescent(space5_labelled, 1, seed=0, probes="cells")
    counts = fd._cells_per_point
    pi = counts / counts.sum()
    kernels = _cells_kernel(fd)
    for k in kernels:
        assert np.all(k >= -1e-15) and np.allclose(k.sum(axis=1), 1)
        np.testing.assert_allclose(pi @ k, pi, atol=1e-12)
    point = int(np.argmax(counts))
    draws = np.zeros(len(counts))
    for _ in range(4000):
        draws[fd._probe_point(point, 2, 0, "cells")] += 1
        draws[fd._probe_point(point, 2, 1, "cells")] += 1
    expected = kernels[2][point] * 8000
    seen = expected > 0
    assert draws[~seen].sum() == 0
    chi2 = ((draws[seen] - expected[seen]) ** 2 / expected[seen]).sum()
    assert chi2 < 3 * seen.sum() + 30  # far above the dof only if the sampler is wrong


def test_fd_steps_follow_the_lattice_rule(space6, embedding6):
    """Every step: pooled rank estimates, differences over the actual displacement, a move to
    the downhill probe of the steepest dimension (recomputed here from the told values)."""
    from dagspace.strategies.descent import rank_scores

    f = distance_objective(embedding6, 1000)
    fd = FiniteDifferenceDescent(space6, 2, seed=1, max_epochs=6, patience=10)
    steps = []
    while archs := fd.ask(100):
        steps.append(_step_of(fd))
        fd.tell(archs, [f(a) for a in archs])
        steps[-1]["after"] = dict(fd.history)
        steps[-1]["next"] = fd.state_dict()["extra"]["walkers"][0]["point"]
    rows = fd.trajectory
    assert len(rows) == 6 * 2 * 3 and [r["epoch"] for r in rows[::6]] == list(range(6))
    points = embedding6.points_
    for epoch, step in enumerate(steps):
        (row,) = step["walkers"]
        told = step["after"]
        scores = dict(zip(told, rank_scores(list(told.values())), strict=True))

        def estimate(key, told=told, scores=scores):
            return np.mean([scores[a] for a in told
                            if tuple(embedding6.point_of_cell_[list(a)]) == key])  # fmt: skip

        key = tuple(row["point"])
        gradient = np.zeros((2, 3))
        downhill = np.array([[key[0]] * 3, [key[1]] * 3])
        for i, d, below, _, above, _ in row["probes"]:
            lo = estimate((*key[:i], below, *key[i + 1 :]))
            hi = estimate((*key[:i], above, *key[i + 1 :]))
            if points[above, d] > points[below, d]:
                gradient[i, d] = (hi - lo) / (points[above, d] - points[below, d])
                downhill[i, d] = below if hi > lo else above if hi < lo else key[i]
        epoch_rows = rows[6 * epoch : 6 * epoch + 6]
        np.testing.assert_allclose([r["gradient"] for r in epoch_rows], gradient.ravel())
        assert [r["value"] for r in epoch_rows] == points[list(key)].ravel().tolist()
        leaves = np.abs(gradient) * (downhill != np.array(key)[:, None])
        expected = [int(downhill[i, np.argmax(leaves[i])]) for i in range(2)]
        if step["next"] is not None:  # (not restarted)
            assert step["next"] == expected
    assert rows[-1]["objective"] < rows[0]["objective"]


def test_fd_spends_every_query_on_a_new_architecture_and_restarts(space4):
    """A flat objective: no step improves after the first, so every `patience` steps the walker
    restarts; it never stands still and asks until every architecture is told."""
    fd = FiniteDifferenceDescent(space4, 1, seed=0, patience=2, probes="points")
    asked = run(fd, lambda a: 1.0, 10_000, batch=100)
    assert sorted(asked) == [(c,) for c in range(13)] and fd.finished and fd.ask(1) == []
    restarts = [r["restart"] for r in fd.trajectory if r["dimension"] == "num_edges"]
    assert restarts[:5] == [0, 0, 0, 1, 1]  # improves once (from nothing), then 2 flat steps
    fd = FiniteDifferenceDescent(space4, 1, seed=0, patience=5)
    run(fd, lambda a: float(-a[0]), 10_000, batch=100)  # keeps improving: fewer restarts
    assert fd.finished and len(fd.history) == 13


def test_fd_population_walkers_step_together(space6):
    fd = FiniteDifferenceDescent(space6, 1, seed=3, walkers=3, max_epochs=4)
    first = fd.ask(1000)
    assert len(first) == len(set(first)) <= 3 * (1 + 2 * 3)
    assert len(_step_of(fd)["walkers"]) == 3
    f = distance_objective(Embedding(space6), 1000)
    fd.tell(first, [f(a) for a in first])
    run(fd, f, 10_000, batch=1000)
    rows = fd.trajectory
    assert fd.epoch == 4 and len(rows) == 4 * 3 * 3
    assert {(r["epoch"], r["walker"]) for r in rows} == {(e, w) for e in range(4) for w in range(3)}
    assert fd.points.shape == (3, 1, 3)  # (nan for a walker waiting to restart)


def test_fd_more_epochs_continue_a_finished_descent(space6):
    f = distance_objective(Embedding(space6), 1000)
    whole = FiniteDifferenceDescent(space6, 1, seed=2, max_epochs=5)
    run(whole, f, 10_000, batch=100)
    part = FiniteDifferenceDescent(space6, 1, seed=2, max_epochs=2)
    run(part, f, 10_000, batch=100)
    assert part.finished and part.epoch == 2 and part.ask(3) == []
    state = json.loads(json.dumps(part.state_dict()))
    shorter = FiniteDifferenceDescent(space6, 1, seed=2, max_epochs=1)
    shorter.load_state_dict(state)  # a stopping rule: fewer epochs load, and stop at once
    assert shorter.finished and shorter.ask(3) == []
    longer = FiniteDifferenceDescent(space6, 1, seed=2, max_epochs=5)
    longer.load_state_dict(state)
    assert not longer.finished
    run(longer, f, 10_000, batch=100)
    part.max_epochs = 5  # raised on the live strategy: the same continuation
    run(part, f, 10_000, batch=100)
    assert longer.epoch == part.epoch == whole.epoch == 5
    assert longer.history == part.history == whole.history


def test_fd_evidence_holds_its_level_under_noise_and_sees_a_trend(space6, embedding6):
    """The evidence that the objective depends on the feature points: under i.i.d. noise it
    falls below 0.01 in at most about 1% of draws (Bonferroni over two valid tests); under an
    exact linear trend it is below 0.01 from a dozen values on (ranks: not exactly linear); with too
    few or equal values it is 1."""
    rng = np.random.default_rng(0)
    fd = FiniteDifferenceDescent(space6, 1, seed=0)
    assert fd.evidence() == 1.0
    below = 0
    for _ in range(300):
        fd = FiniteDifferenceDescent(space6, 1, seed=0)
        cells = rng.choice(len(space6), size=40, replace=False)
        cells = np.r_[cells, cells[:10]]  # some points told twice or more
        fd.tell([(int(c),) for c in np.unique(cells)], rng.random(len(np.unique(cells))).tolist())
        below += fd.evidence() < 0.01
    assert below <= 9  # 300 draws at 1%: 3 expected, P(> 9) < 0.001
    trend = embedding6.cell_points_ @ np.array([1.0, -1.0, 0.5])
    fd = FiniteDifferenceDescent(space6, 1, seed=0)
    cells = rng.choice(len(space6), size=30, replace=False)
    fd.tell([(int(c),) for c in cells[:12]], trend[cells[:12]].tolist())
    assert fd.evidence() < 0.01
    fd.tell([(int(c),) for c in cells[12:]], trend[cells[12:]].tolist())
    assert fd.evidence() < 1e-6
    flat = FiniteDifferenceDescent(space6, 1, seed=0)
    flat.tell([(int(c),) for c in cells], [1.0] * len(cells))
    assert flat.evidence() == 1.0


def test_fd_auto_probes_switch_to_points_on_evidence_only(space6, embedding6):
    """Probes "auto": by cells while the values show nothing, point probes once they show a trend;
    the trajectory says which each step used."""
    trend = embedding6.cell_points_ @ np.array([1.0, 1.0, 1.0])
    noise = np.random.default_rng(1).random(len(space6))
    used = {}
    for name, values in (("trend", trend), ("noise", noise)):
        fd = FiniteDifferenceDescent(space6, 1, seed=0, max_epochs=12)
        run(fd, lambda a, v=values: float(v[a[0]]), 10_000, batch=100)
        used[name] = [r["probes"] for r in fd.trajectory if r["dimension"] == "num_edges"]
    assert used["trend"][0] == "cells" and set(used["trend"][2:]) == {"points"}
    assert used["noise"].count("cells") >= 11


@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0), (0.0, -1.0, -1.0), (1.0, -1.0, 0.3)])
def test_fd_planted_linear_objective_finds_its_optimum(weights, space6, embedding6):
    """Planted: f = w . features (standardised). Within 100 queries the descent evaluates a cell
    of the optimum's point in at least 8 of 10 seeds; random search does in at most 18% of runs
    (the optimum points hold 1 to 4 of the 2,071 cells)."""
    values = embedding6.cell_points_ @ np.asarray(weights)
    optimum = embedding6.point_of_cell_[np.argmin(values)]
    share = np.mean(embedding6.point_of_cell_ == optimum)
    assert 1 - (1 - share) ** 100 < 0.18
    found = 0
    for seed in range(10):
        fd = FiniteDifferenceDescent(space6, 1, seed=seed)
        asked = run(fd, lambda a: float(values[a[0]]), 100, batch=100)
        found += optimum in embedding6.point_of_cell_[[a[0] for a in asked]]
    assert found >= 8


# -- finite-difference descent, the seed's rule ------------------------------------------------
@pytest.mark.parametrize("seed", range(3))
def test_fd_seed_moves_toward_the_optimum_of_a_distance_objective(seed, space6, embedding6):
    f = distance_objective(embedding6, 1000)
    fd = SeedFiniteDifferenceDescent(space6, 2, seed=seed, max_epochs=12)
    asked = run(fd, f, 10_000, batch=100)
    assert fd.finished and fd.epoch == 12 and fd.ask(1) == []
    assert len(asked) == len(set(asked)) <= 12 * (1 + 2 * 2 * 3)
    objective = [row["objective"] for row in fd.trajectory if row["cell"] == 0][::3]
    assert objective[-1] < 0.5 * objective[0]
    assert min(objective) <= 1.0


def test_fd_seed_trajectory_rows_follow_the_central_difference_update(space6, embedding6):
    f = distance_objective(embedding6, 1000)
    lr, momentum, epochs = 0.25, 0.5, 3
    fd = SeedFiniteDifferenceDescent(space6, 2, seed=1, lr=lr, momentum=momentum, max_epochs=epochs)
    points, steps = [fd.points], []
    while archs := fd.ask(100):
        steps.append(fd.state_dict()["extra"]["step"])  # the probes of this epoch
        fd.tell(archs, [f(a) for a in archs])
        points.append(fd.points)
    rows, told = fd.trajectory, dict(fd.history)
    assert len(rows) == epochs * 2 * 3 == 3 * len(steps) * 2
    assert [r["epoch"] for r in rows] == [e for e in range(epochs) for _ in range(6)]
    assert [r["cell"] for r in rows[:6]] == [0, 0, 0, 1, 1, 1]
    assert [r["dimension"] for r in rows[:3]] == list(embedding6.feature_names)
    velocity = np.zeros((2, 3))
    for epoch, step in enumerate(steps):
        epoch_rows = rows[6 * epoch : 6 * epoch + 6]
        x = points[epoch]
        np.testing.assert_array_equal([r["value"] for r in epoch_rows], x.ravel())
        np.testing.assert_allclose(
            [r["value_raw"] for r in epoch_rows], embedding6.inverse_transform(x).ravel()
        )
        center = tuple(step["center"])
        assert [r["cell_index"] for r in epoch_rows[::3]] == list(center)
        for row in epoch_rows:
            assert row["cell_hash"] == space6.hashes[row["cell_index"]]
            assert row["objective"] == told[center]
        gradient = np.zeros((2, 3))
        for i, d, minus, plus in step["probes"]:  # probes: the nearest cells of x_i -/+ h e_d
            for arch, sign in ((minus, -1), (plus, 1)):
                probe = x[i] + sign * fd.h * np.eye(3)[d]
                assert arch[1 - i] == center[1 - i]
                assert arch[i] in embedding6.nearest(probe)[0]
            gradient[i, d] = (told[tuple(plus)] - told[tuple(minus)]) / (2 * fd.h)
        np.testing.assert_allclose([r["gradient"] for r in epoch_rows], gradient.ravel())
        velocity = momentum * velocity + gradient
        expected = np.stack([project_to_hull(embedding6.points_, p) for p in x - lr * velocity])
        np.testing.assert_allclose(points[epoch + 1], expected, atol=1e-12)
    assert np.abs([r["gradient"] for r in rows]).sum() > 0


def test_fd_seed_diverged_probe_counts_as_worst_plus_spread(space6, embedding6):
    f = distance_objective(embedding6, 1000)
    fd = SeedFiniteDifferenceDescent(space6, 1, seed=0, init=(500,), max_epochs=1)
    archs = fd.ask(100)
    values = {a: f(a) for a in archs}
    _, _, minus, plus = fd.state_dict()["extra"]["step"]["probes"][0]  # cell 0, dimension 0
    assert tuple(plus) != tuple(minus) and tuple(plus) in archs
    values[tuple(plus)] = math.nan
    fd.tell(archs, [values[a] for a in archs])
    finite = [v for v in values.values() if math.isfinite(v)]
    penalty = max(finite) + max(max(finite) - min(finite), 1.0)
    expected = (penalty - values[tuple(minus)]) / (2 * fd.h)
    assert fd.trajectory[0]["gradient"] == pytest.approx(expected)
    assert fd.trajectory[0]["gradient"] > 0  # the descent moves away from the diverged side


def test_fd_seed_with_only_diverged_values_does_not_move(space6):
    fd = SeedFiniteDifferenceDescent(space6, 1, seed=0, init=(500,), max_epochs=3)
    start = fd.points
    run(fd, lambda a: math.nan, 10_000, batch=100)
    assert fd.epoch == 3 and all(row["gradient"] == 0 for row in fd.trajectory)
    assert all(math.isnan(row["objective"]) for row in fd.trajectory)
    np.testing.assert_array_equal(fd.points, start)


def test_fd_seed_stops_when_every_step_is_already_known(space4):
    fd = SeedFiniteDifferenceDescent(space4, 1, seed=0)  # 13 cells: soon nothing new
    asked = run(fd, lambda a: float(a[0] % 3), 10_000, batch=100)
    assert fd.finished and fd.ask(5) == [] and len(asked) < 13  # it stalls: the lattice rule
    assert fd.epoch > 100  # went on to the end (its idle steps spent no query)


@pytest.mark.parametrize("seed", range(2))
def test_projection_onto_the_hull_matches_a_constrained_solver(seed, embedding6):
    points = embedding6.points_
    rng = np.random.default_rng(seed)
    inside = points[rng.choice(len(points), 4)].mean(axis=0)
    np.testing.assert_array_equal(project_to_hull(points, inside), inside)
    x = rng.normal(size=3) * 6
    y = project_to_hull(points, x)
    n = len(points)
    ref = minimize(
        lambda lam: np.sum((lam @ points - x) ** 2),
        np.full(n, 1 / n),
        bounds=[(0, 1)] * n,
        constraints=[{"type": "eq", "fun": lambda lam: lam.sum() - 1}],
        method="SLSQP",
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert np.linalg.norm(y - x) <= np.linalg.norm(ref.x @ points - x) + 1e-6
    assert np.linalg.norm(y - ref.x @ points) < 1e-3


def test_projection_onto_a_flat_hull():
    points = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(project_to_hull(points, np.array([0.2, 0.2, 3.0])), [0.2, 0.2, 0])
    np.testing.assert_allclose(project_to_hull(points, np.array([2.0, 2.0, 0.0])), [0.5, 0.5, 0])


# -- Bayesian search -------------------------------------------------------------------------------
def test_bayes_proposes_q_distinct_unevaluated_architectures(space6, embedding6):
    bo = BayesianSearch(space6, 2, seed=0, n_init=10, q=8)
    f = distance_objective(embedding6, 1000)
    run(bo, f, 10, batch=10)
    first = bo.ask(8)
    second = bo.ask(8)  # before telling: the first batch is pending
    assert len(first) == len(second) == 8 and len(set(first + second)) == 16
    assert not set(first + second) & {a for a, _ in bo.history}
    joint = {tuple(embedding6.point_of_cell_[list(a)]) for a in first}
    assert len(joint) == 8  # one architecture per chosen joint feature point
    assert bo.timings_["candidates"] == len(embedding6.points_) ** 2


@pytest.mark.parametrize("seed", range(2))
def test_bayes_beats_random_search_on_a_smooth_objective(seed, space6, embedding6):
    counts = np.bincount(embedding6.point_of_cell_)
    target = int(embedding6.cells_at(int(np.argmin(counts)))[0])  # a point with one cell
    f = distance_objective(embedding6, target)
    bo = BayesianSearch(space6, 1, seed=seed, n_init=10, q=8)
    run(bo, f, 26, batch=8)
    rng = np.random.default_rng(seed)
    random_best = [min(map(f, rng.integers(len(space6), size=(26, 1)))) for _ in range(200)]
    assert bo.best()[1] < np.percentile(random_best, 5)


def test_bayes_leaves_diverged_values_out_but_never_proposes_them_again(space4):
    bo = BayesianSearch(space4, 1, seed=0, n_init=4, q=3)
    first = bo.ask(4)
    bo.tell(first, [math.nan, math.inf, 1.0, 2.0])
    torch = pytest.importorskip("torch")
    numpy_state = np.random.get_state()[1].copy()  # noqa: NPY002 (the global state, untouched)
    torch_state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    asked = list(first)
    while archs := bo.ask(3):
        asked += archs
        bo.tell(archs, [math.nan if a[0] % 4 == 0 else float(a[0]) for a in archs])
    assert sorted(asked) == [(c,) for c in range(13)]  # every cell once, diverged ones included
    assert bo.timings_["candidates"] >= 1  # the GP was fitted with diverged values present
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_state)  # noqa: NPY002
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert torch.get_num_threads() == threads


def test_bayes_falls_back_to_random_until_two_finite_values(space4):
    bo = BayesianSearch(space4, 1, seed=0, n_init=2, q=3)
    bo.tell([(0,), (1,), (2,)], [math.nan, math.nan, 1.0])
    assert len(bo.ask(3)) == 3 and bo.timings_ == {}  # random: one finite value only
    bo.tell([(3,)], [0.5])
    seen = {a[0] for a in [*bo.pending, *(a for a, _ in bo.history)]}
    embedding = Embedding(space4)
    open_points = {int(embedding.point_of_cell_[c]) for c in range(13) if c not in seen}
    bo.ask(3)
    assert bo.timings_["candidates"] == len(open_points) < 8  # exhausted points are dropped


def test_bench_bo_reports_the_phases_of_one_proposal(space4):
    result = bench_bo(space4, q=2, n_train=6, num_cells=2, repeats=1)
    assert result["bench"] == "bo" and result["proposed"] == 2 and result["cells"] == 13
    assert result["candidates"] <= 8**2 and result["points_per_cell"] == 8
    for key in ("propose_s", "propose_cpu_s", "fit_s", "prefilter_s", "acquisition_s"):
        assert result[key] >= 0


# -- regularised evolution and local search -------------------------------------------------------
def test_evolution_and_local_search_stay_inside_a_space_subset(space6):
    part = space6.subset(np.arange(0, len(space6), 3))
    for name in ("evolution", "local"):
        strategy = make_strategy(name, part, 1, seed=1, **FAST[name])
        asked = run(strategy, lambda a: float(part.features[a[0], 2]), 60)
        assert all(0 <= c < len(part) for (c,) in asked) and len(set(asked)) == 60


def _neighbours_by_brute_force(space, cell):
    """The oracle: flip every edge, change every op, prune, look the cell up one at a time."""
    spec, out = space[cell], set()
    for i, j in itertools.combinations(range(spec.num_vertices), 2):
        matrix = spec.matrix.copy()
        matrix[i, j] ^= 1
        pruned = try_prune(CellSpec(matrix, spec.ops))
        found = None if pruned is None else space.find(pruned)
        if found is not None and found != cell:
            out.add(found)
    for i in range(1, spec.num_vertices - 1) if spec.ops else ():
        for op in set(space.op_names) - {spec.ops[i]}:
            ops = list(spec.ops)
            ops[i] = op
            out.add(space.find(CellSpec(spec.matrix, ops)))
    return sorted(out - {None})


@pytest.mark.parametrize("labelled", [True, False])
def test_neighbours_equal_the_brute_force_oracle(labelled, space5_labelled, space6):
    from dagspace.neighbours import cell_neighbours, neighbour_counts

    space = space5_labelled if labelled else space6
    cells = np.random.default_rng(0).choice(len(space), size=60, replace=False).tolist()
    for cell in cells:
        assert cell_neighbours(space, cell).tolist() == _neighbours_by_brute_force(space, cell)
    part = space.subset(cells)  # inside a subset: only the subset's cells
    for i, cell in enumerate(cells[:10]):
        expected = [cells.index(c) for c in _neighbours_by_brute_force(space, cell) if c in cells]
        assert cell_neighbours(part, i).tolist() == sorted(expected)
    assert neighbour_counts(part).tolist() == [len(cell_neighbours(part, i)) for i in range(60)]


def test_the_symmetric_neighbourhood_adds_the_way_back(space5_labelled):
    """b neighbours a when either is a one-step variant of the other: a symmetric relation that
    holds the one-way neighbourhood; a cell pruned to by a flip has the flip's source back."""
    from dagspace.neighbours import cell_neighbours, symmetric_neighbours

    space = space5_labelled
    degree = symmetric_neighbours(space)
    pairs = {(a, int(b)) for a in range(len(space)) for b in symmetric_neighbours(space, a)}
    assert all((b, a) in pairs for a, b in pairs) and all(a != b for a, b in pairs)
    assert degree.tolist() == [len(symmetric_neighbours(space, a)) for a in range(len(space))]
    one_way = [(a, int(b)) for a in range(len(space)) for b in cell_neighbours(space, a)]
    assert set(one_way) <= pairs and len(pairs) > len(one_way)
    sizes = space.num_vertices
    assert any(sizes[b] > sizes[a] for a, b in pairs)  # the way back adds a vertex
    assert not any(sizes[b] > sizes[a] for a, b in one_way)


def test_metropolis_steps_keep_the_uniform_distribution(space5_labelled):
    """From a uniformly random cell, a Metropolis-Hastings step (or a thinned neighbourhood)
    lands on cells of about the space's mean size, where a one-way step drifts to smaller cells.
    (Not exactly: a refused proposal is drawn again rather than staying, which weighs a cell by
    its acceptance; at 4,000 steps that shows as 0.01 vertices.)"""
    from dagspace.neighbours import metropolis_neighbour, thinned_neighbours
    from dagspace.strategies.null_test import goodness_of_fit

    space, rng = space5_labelled, np.random.default_rng(0)
    starts = rng.integers(len(space), size=4000)
    steps = np.asarray([metropolis_neighbour(space, int(a), rng) for a in starts])
    thinned = np.concatenate([thinned_neighbours(space, int(a), rng) for a in starts[:1000]])
    one_way = np.fromiter(_one_way_steps(space, starts, rng), dtype=np.int64)
    for statistic in (space.num_vertices, np.asarray(space.feature("num_edges"))):
        drift = statistic.mean() - statistic[one_way].mean()
        assert drift > 0.15 and goodness_of_fit(statistic[one_way], statistic) < 1e-6
        for sample in (steps, thinned):
            assert abs(statistic[sample].mean() - statistic.mean()) < drift / 5
    assert metropolis_neighbour(space, 0, rng, lambda c: False) is None


def _one_way_steps(space, starts, rng):
    from dagspace.neighbours import cell_neighbours

    for a in starts.tolist():
        around = cell_neighbours(space, a)
        if len(around):
            yield int(around[rng.integers(len(around))])


def test_evolution_mutates_the_tournament_winner(space6):
    strategy = make_strategy("evolution", space6, 1, seed=0, population=4, tournament=4)
    strategy.tell([(c,) for c in (500, 600, 700, 800)], [float(c) for c in (500, 600, 700, 800)])
    from dagspace.neighbours import symmetric_neighbours

    (child,) = strategy.ask(1)
    assert child[0] in set(symmetric_neighbours(space6, 500).tolist())  # the best of all four
    strategy.tell([child], [-1.0])
    assert [a for a, _ in strategy.members()] == [(600,), (700,), (800,), child]  # oldest out


def test_local_search_climbs_to_a_local_optimum_then_restarts(space6):
    """Each climb step evaluates a drawn neighbourhood whole, then moves to its best member if
    that beats the current architecture, else restarts (a local optimum)."""
    from dagspace.neighbours import symmetric_neighbours

    f = lambda a: -float(space6.features[a[0], 2])  # noqa: E731  (more edges is better)
    strategy = make_strategy("local", space6, 1, seed=0)
    moves = 0
    while len(strategy.history) < 300:
        current, restarts = strategy.current, strategy.restarts
        around = strategy.state_dict()["extra"]["around"]
        archs = strategy.ask(1000)  # the whole neighbourhood at once
        strategy.tell(archs, [f(a) for a in archs])
        if current is None or not around:
            continue
        around = [tuple(a) for a in around]
        assert {a[0] for a in around} <= set(symmetric_neighbours(space6, current[0]).tolist())
        best = min(around, key=f)
        if f(best) < f(current):  # moved there (and on, when its neighbourhood was all told)
            now = strategy.current
            assert (
                now == best
                or (now is None and strategy.restarts == restarts + 1)
                or (now is not None and f(now) < f(best))
            )
            moves += 1
        else:
            assert strategy.current is None and strategy.restarts == restarts + 1
    assert moves >= 3 and strategy.restarts >= 1


def test_new_strategies_reject_bad_options(space4):
    with pytest.raises(StrategyError, match="'population' parameter of RegularizedEvolution"):
        make_strategy("evolution", space4, 1, seed=0, population=0)
    with pytest.raises(StrategyError, match="'tournament' .* an int >= 1; got 'x'"):
        make_strategy("evolution", space4, 1, seed=0, tournament="x")
    with pytest.raises(StrategyError, match=r"Unknown option\(s\) \['q'\] for the 'local'"):
        make_strategy("local", space4, 1, seed=0, q=3)


def test_stream_seeds_are_independent_words_of_one_seed_sequence():
    """One stream per key tuple: the registry's, the null test's and the tables' draws."""
    from dagspace.random import stream_seed
    from dagspace.strategies.registry import STRATEGIES, strategy_seed

    assert stream_seed(0, 1, 2) == int(np.random.SeedSequence([0, 1, 2]).generate_state(1)[0])
    assert strategy_seed(7, 3, STRATEGIES[1]) == stream_seed(7, 3, 1)
    assert len({stream_seed(0, r, s) for r in range(10) for s in range(5)}) == 50
