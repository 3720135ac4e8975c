from __future__ import annotations

import itertools

import networkx as nx
import numpy as np
import pytest

from dagspace import (
    NASBENCH101_OPS,
    CellNotInSpaceError,
    CellSpec,
    InvalidSpaceError,
    Space,
    canonical_hash,
    enumerate_space,
    try_prune,
)
from dagspace.enumeration import enumerate_topologies


def brute_force_space(v_max: int, ops=None, max_edges=None) -> set[str]:
    """Every upper-triangular matrix (and labelling), pruned and hashed one by one."""
    hashes = set()
    for bits in itertools.product([0, 1], repeat=v_max * (v_max - 1) // 2):
        matrix = np.zeros((v_max, v_max), dtype=np.uint8)
        matrix[np.triu_indices(v_max, 1)] = bits
        base = try_prune(CellSpec(matrix))
        if base is None or (max_edges is not None and base.num_edges > max_edges):
            continue
        labellings = [()] if ops is None else itertools.product(ops, repeat=base.num_vertices - 2)
        for labels in labellings:
            cell = base if ops is None else CellSpec(base.matrix, ["input", *labels, "output"])
            hashes.add(canonical_hash(cell))
    return hashes


@pytest.mark.parametrize(
    ("v", "ops", "max_edges"),
    [
        (4, None, None),
        (5, None, None),
        (5, None, 5),
        (4, NASBENCH101_OPS, None),
        (5, ("maxpool3x3", "conv1x1-bn-relu"), 6),
    ],
)
def test_enumeration_equals_brute_force(v, ops, max_edges):
    space = enumerate_space(v, ops, max_edges)
    assert len(set(space.hashes.tolist())) == len(space)
    assert set(space.hashes.tolist()) == brute_force_space(v, ops, max_edges)


def test_stored_hashes_are_the_cells_canonical_hashes(space6, space5_labelled):
    for space in (space6, space5_labelled):
        rng = np.random.default_rng(0)
        for i in rng.choice(len(space), 300, replace=False):
            assert canonical_hash(space[int(i)]) == space.hashes[i]


def test_six_vertex_space_has_no_isomorphic_duplicates(space6):
    """The exact oracle over the whole 6-vertex space: no two cells of equal invariants are
    isomorphic (networkx's VF2 on every pair that a cheap invariant cannot separate)."""
    assert len(space6) == 2071
    key = [tuple(row) for row in np.round(space6.features, 9).tolist()]
    groups: dict[tuple, list[int]] = {}
    for i, k in enumerate(key):
        groups.setdefault(k, []).append(i)
    graphs = [cell.to_networkx() for cell in space6]
    for members in groups.values():
        for a, b in itertools.combinations(members, 2):
            assert not nx.is_isomorphic(graphs[a], graphs[b])


def test_nasbench101_count():
    space = enumerate_space(7, NASBENCH101_OPS, max_edges=9)
    assert len(space) == 423_624  # the published size of NAS-Bench-101
    assert len(set(space.hashes.tolist())) == len(space)
    assert space.feature("num_edges").max() == 9
    assert np.bincount(space.num_vertices)[2:].tolist() == [1, 6, 84, 2441, 62010, 359082]


def test_unlabelled_counts_per_vertex():
    counts = [len(enumerate_topologies(v).codes) for v in range(2, 7)]
    assert counts == [1, 2, 10, 98, 1960]  # sums to the 2,071 cells of the 6-vertex space


def test_every_cell_is_pruned_and_upper_triangular(space6):
    assert not np.tril(space6.matrices).any()
    for cell in itertools.islice(space6, 0, None, 37):
        assert try_prune(cell) == cell


def test_space_indexing_and_lookup(space5_labelled):
    space = space5_labelled
    cell = space[123]
    assert space.index_of(cell) == 123 and cell in space
    assert space[-1] == space[len(space) - 1]
    with pytest.raises(IndexError, match="out of range"):
        space[len(space)]
    with pytest.raises(TypeError, match="indexed by an int"):
        space["a"]
    outside = CellSpec(
        np.triu(np.ones((6, 6), dtype=np.uint8), 1), ["input", *["maxpool3x3"] * 4, "output"]
    )
    assert outside not in space
    with pytest.raises(CellNotInSpaceError, match="not in this space"):
        space.index_of(outside)
    with pytest.raises(CellNotInSpaceError):
        space.index_of(CellSpec(cell.matrix))  # unlabelled cell in a labelled space


def test_save_and_load_round_trip(tmp_path, space5_labelled):
    path = space5_labelled.save(tmp_path / "s.npz")
    loaded = Space.load(path)
    assert len(loaded) == len(space5_labelled)
    np.testing.assert_array_equal(loaded.matrices, space5_labelled.matrices)
    np.testing.assert_array_equal(loaded.ops, space5_labelled.ops)
    np.testing.assert_array_equal(loaded.hashes, space5_labelled.hashes)
    assert loaded.vocabulary == space5_labelled.vocabulary and loaded.max_edges is None
    assert loaded[77] == space5_labelled[77]
    assert not list(tmp_path.glob("*.tmp"))


def test_a_space_file_is_compressed_and_an_uncompressed_one_still_loads(tmp_path, space6):
    """Issue 20: space files are compressed (NAS-Bench-101's: 57.6 MB -> 7.9 MB); files
    written before, uncompressed, load as they did."""
    import zipfile

    path = space6.save(tmp_path / "s.npz")
    with zipfile.ZipFile(path) as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(tmp_path / "old.npz", **arrays)  # how save() wrote it before
    with zipfile.ZipFile(tmp_path / "old.npz") as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_STORED}
    old = Space.load(tmp_path / "old.npz")
    np.testing.assert_array_equal(old.matrices, space6.matrices)
    np.testing.assert_array_equal(old.hashes, space6.hashes)
    np.testing.assert_array_equal(old.features, space6.features)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (
            b"not a zip",
            r"not a space file: a .npz archive starts with b'PK\\x03\\x04', this "
            r"file with b'not '",
        ),  # not numpy's "pickled (object) data" (issue 20)
        (b"", r"this file with b'' \(it is empty\)"),
        (b"PK\x03\x04 and then nothing", "not a readable .npz"),
        (None, "No space file"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, match):
    path = tmp_path / "bad.npz"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidSpaceError, match=match):
        Space.load(path)


def test_load_rejects_foreign_and_truncated_npz(tmp_path, space6):
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(InvalidSpaceError, match="not a dagrank space file"):
        Space.load(tmp_path / "other.npz")
    good = space6.save(tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(InvalidSpaceError, match="cut.npz"):
        Space.load(tmp_path / "cut.npz")


def test_to_frame(space5_labelled):
    frame = space5_labelled.to_frame()
    assert len(frame) == len(space5_labelled)
    assert {"hash", "num_edges", "eccentricity_variance", "ops", "edges"} <= set(frame.columns)
    row = frame.iloc[200]
    cell = space5_labelled[200]
    assert row["ops"] == ",".join(cell.ops[1:-1])
    assert row["edges"] == "/".join("".join(map(str, r)) for r in cell.matrix.tolist())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_vertices": 8}, "num_vertices.*\\[2, 7\\]; got 8"),
        ({"num_vertices": 1}, "got 1"),
        ({"num_vertices": 4, "max_edges": 0}, "max_edges.*got 0"),
        ({"num_vertices": 4, "ops": ["conv9x9"]}, "registered operation names"),
        ({"num_vertices": 4, "ops": ["maxpool3x3", "maxpool3x3"]}, "distinct"),
        ({"num_vertices": 4, "features": ["girth"]}, "Unknown feature"),
    ],
)
def test_enumerate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(InvalidSpaceError, match=match):
        enumerate_space(**kwargs)


def test_subset_keeps_the_chosen_cells_and_round_trips(tmp_path, space5_labelled):
    index = [300, 5, 77, 2]
    part = space5_labelled.subset(index)
    assert len(part) == 4 and [part[i] for i in range(4)] == [space5_labelled[i] for i in index]
    np.testing.assert_array_equal(part.hashes, space5_labelled.hashes[index])
    np.testing.assert_array_equal(part.features, space5_labelled.features[index])
    assert part.find(space5_labelled[77]) == 2 and part.find(space5_labelled[78]) is None
    np.testing.assert_array_equal(
        part.nasbench101_hashes(), space5_labelled.nasbench101_hashes()[index]
    )
    loaded = Space.load(part.save(tmp_path / "part.npz"))
    assert [c for c in loaded] == [c for c in part]
    np.testing.assert_array_equal(loaded.nasbench101_hashes(), part.nasbench101_hashes())
    assert loaded.max_vertices == part.max_vertices and loaded.max_edges == part.max_edges


@pytest.mark.parametrize(
    "index, match",
    [
        ([0, 10**6], r"must lie in \[0, \d+\); got 1000000"),
        ([1, 1], "must be distinct; got repeats"),
        ([[1, 2]], r"1-D sequence of ints; got an array of shape \(1, 2\)"),
        ([0.5], "dtype float64"),
    ],
)
def test_subset_rejects_bad_indices(space5_labelled, index, match):
    with pytest.raises(InvalidSpaceError, match=match):
        space5_labelled.subset(index)


def test_load_rejects_a_malformed_nasbench101_column(tmp_path, space5_labelled):
    path = space5_labelled.save(tmp_path / "s.npz")
    with np.load(path) as data:
        arrays = dict(data)
    arrays["nasbench101_hashes"] = np.asarray(["ab"] * 3, dtype="S32")
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InvalidSpaceError, match=r"'nasbench101_hashes' must have shape"):
        Space.load(tmp_path / "bad.npz")
