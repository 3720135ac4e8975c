"""NAS-Bench-101's official files: the protobuf by hand, the reader against the values written,
damage named by file and byte, and the cache."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import struct

import numpy as np
import pandas as pd
import pytest

import analysis.nasbench_cache as nasbench_cache
from analysis.nasbench_bench import build_nasbench_file
from analysis.nasbench_cache import (
    NasbenchCacheError,
    cache_path,
    load_cache,
    nasbench101_space,
    nasbench_results,
    open_nasbench,
)
from analysis.nasbench_file import (
    METRICS,
    EvaluationData,
    ModelMetrics,
    NasbenchRecordError,
    decode_model_metrics,
    encode_model_metrics,
    encode_nasbench_record,
    read_nasbench_records,
)
from analysis.tfrecord import TFRecordError, write_tfrecord
from tests.analysis.conftest import SLICE, slice_values

CONV3, MAXPOOL = "conv3x3-bn-relu", "maxpool3x3"


# -- the protobuf ----------------------------------------------------------------------------------
def test_model_metrics_round_trip():
    metrics = ModelMetrics(
        (EvaluationData(0.0, 0.0, 0.1, 0.1, 0.1),
         EvaluationData(54.0, 600.5, 0.8, 0.75, 0.74),
         EvaluationData(108.0, 1201.0, 1.0, 0.93, 0.925, "model.ckpt-1")),
        trainable_parameters=2_694_282, total_time=1300.25,
    )  # fmt: skip
    assert decode_model_metrics(encode_model_metrics(metrics)) == metrics
    assert decode_model_metrics(b"") == ModelMetrics()


def _double(number: int, value: float) -> bytes:
    return bytes([number << 3 | 1]) + struct.pack("<d", value)


def test_wire_format_decoded_by_hand():
    """Fields in any order, unknown fields of every wire type skipped, a negative int32."""
    evaluation = (_double(5, 0.9) + bytes([0x48, 0x96, 0x01])  # field 9: varint 150
                  + _double(4, 0.8) + bytes([0x55]) + b"\x00" * 4  # field 10: fixed32
                  + bytes([0x32, 3]) + b"ck1" + _double(2, 12.5))  # fmt: skip
    negative = bytes([0x10]) + b"\xff" * 9 + b"\x01"  # trainable_parameters = -1 (10 bytes)
    message = (_double(3, 99.0) + negative + bytes([0x5A, 2]) + b"zz"  # field 11: bytes
               + bytes([0x0A, len(evaluation)]) + evaluation)  # fmt: skip
    got = decode_model_metrics(message)
    assert got.trainable_parameters == -1 and got.total_time == 99.0
    (point,) = got.evaluation_data
    assert (point.test_accuracy, point.validation_accuracy, point.training_time) == (0.9, 0.8, 12.5)
    assert point.checkpoint_path == "ck1" and np.isnan(point.current_epoch)


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (_double(3, 1.0)[:5], "total_time runs past the end"),
        (bytes([0x0A, 9]) + _double(4, 0.5)[:5], "runs past the end"),
        (bytes([0x0A, 2, 0x20, 0x01]), "field 4 has wire type 0, not 1"),
        (bytes([0x0B]), "ModelMetrics field 1 has wire type 3"),
        (bytes([0x3B]), "wire type 3 is not used"),
        (bytes([0x10]) + b"\xff" * 11, "longer than 10 bytes"),
        (bytes([0x11]) + b"\x00" * 8, "field 2 has wire type 1"),
    ],
)
def test_malformed_metrics_are_named(message, match):
    with pytest.raises(
        NasbenchRecordError, match=f"Not a serialized ModelMetrics message: .*{match}"
    ):
        decode_model_metrics(message)


# -- the reader against what was written -----------------------------------------------------------
def _rows_of(table, hashes):
    order = {h: i for i, h in enumerate(table.module_hash.tolist())}
    return np.asarray([order[h] for h in hashes.tolist()])


def test_reader_returns_every_value_written(nb101_file, space4):
    built = nb101_file
    records = read_nasbench_records(built.path)
    assert len(records) == len(space4) * 4 * 3 == len(built.offsets)
    np.testing.assert_array_equal(records.offsets, built.offsets)
    assert len(records.cells) > len(space4)  # cells come in several vertex orders
    budgets, counts = np.unique(records.epochs, return_counts=True)
    assert budgets.tolist() == [4, 12, 36, 108] and (counts == len(space4) * 3).all()
    table = open_nasbench(built.path, progress=False)
    assert table.budgets.tolist() == [4, 12, 36, 108] and (table.counts == 3).all()
    rows = _rows_of(table, built.hashes)
    for metric in METRICS:  # every value of every repeat (its end of training), to the bit
        np.testing.assert_array_equal(table.values[metric][rows], built.values[metric])
        assert table.values[metric].dtype == np.float32  # float32 values stored as float32
    np.testing.assert_array_equal(table.trainable_parameters[rows], built.params)
    # the cell of every record is found, whatever its vertex order
    np.testing.assert_array_equal(table.canonical_hash[rows], space4.hashes[built.cells])
    nb101 = nasbench101_space()
    assert (table.space_index >= 0).all()
    np.testing.assert_array_equal(nb101.hashes[table.space_index], table.canonical_hash)
    assert table.records == len(records) and table.damage == [] and table.path


def _small(tmp_path, slice_table, space4, n=12, budgets=(108,)):
    path = tmp_path / "small.tfrecord"
    built = build_nasbench_file(path, space4, np.arange(n), slice_values(slice_table, n),
                                budgets=budgets, seed=3)  # fmt: skip
    return built


@pytest.mark.parametrize(
    ("how", "match"),
    [
        ("flip", "CRC of the record's data does not match"),
        ("crc", "CRC of the record's data does not match"),
        ("truncate", "truncated record"),
    ],
)
def test_damaged_records_name_the_file_and_byte(tmp_path, slice_table, space4, how, match):
    built = _small(tmp_path, slice_table, space4)
    raw = bytearray(built.path.read_bytes())
    k = len(built.offsets) - 1 if how == "truncate" else 5
    at = int(built.offsets[k])
    if how == "flip":
        raw[at + 40] ^= 0x04  # a byte inside the JSON
    elif how == "crc":
        size = int(built.offsets[k + 1]) - at
        raw[at + size - 2] ^= 0x10
    else:
        raw = raw[: at + 30]
    built.path.write_bytes(bytes(raw))
    with pytest.raises(TFRecordError, match=rf"{built.path.name} is damaged at byte {at} "
                       rf"\(record {k}\): .*{match}"):  # fmt: skip
        open_nasbench(built.path)
    assert not cache_path(built.path).exists()  # nothing cached from a damaged file
    table = open_nasbench(built.path, skip_damaged=True)
    assert [d.offset for d in table.damage] == [at] and table.records == len(built.offsets) - 1
    assert table.counts.sum() == len(built.offsets) - 1
    with pytest.raises(TFRecordError, match=rf"has 1 damaged records \(the first at byte {at}"):
        open_nasbench(built.path)  # the cache built skipping them is used only when skipping
    assert open_nasbench(built.path, skip_damaged=True).damage == table.damage


def _record(module_hash="0" * 32, epochs=108, adjacency="0100", ops="input,output",
            metrics=None) -> bytes:  # fmt: skip
    metrics = metrics or ModelMetrics((EvaluationData(108.0, 10.0, 0.5, 0.5, 0.5),), 10, 11.0)
    row = [module_hash, epochs, adjacency, ops,
           base64.b64encode(encode_model_metrics(metrics)).decode()]  # fmt: skip
    return json.dumps(row).encode()


_GOOD = _record()
_MALFORMED = [
    (b"[1, 2", "is not JSON"),
    (b'["a", 1]', r"is not the JSON list \[module_hash, epochs"),
    (_record(module_hash="XYZ"), "module_hash must be 32 lowercase hex digits; got 'XYZ'"),
    (_record(epochs=0), "epochs must be a positive integer; got 0"),
    (json.dumps(["0" * 32, 108, "0100", "input,output", "!!"]).encode(), "is not base64"),
    (json.dumps(["0" * 32, 108, "0100", "input,output", "Cw=="]).encode(), "wire type 3"),
    (_record(metrics=ModelMetrics((), 1, 1.0)), "has no evaluation_data"),
    (_record(adjacency="010"), "raw_adjacency of 3 digits, not a square number"),
    (_record(adjacency="0010"), "not strictly upper-triangular"),
    (_record(adjacency="0200"), "not strictly upper-triangular"),
    (_record(ops="input,conv3x3-bn-relu"), r"raw_operations 'input,conv3x3-bn-relu'; expected"),
    (_record(adjacency="0" * 9, ops="input,zeroize,output"), "outside NAS-Bench-101's"),
    (_record(adjacency="000000000", ops=f"input,{CONV3},output"), "input cannot reach"),
]


@pytest.mark.parametrize(("payload", "match"), _MALFORMED)
def test_malformed_records_name_the_file_and_byte(tmp_path, payload, match):
    path = write_tfrecord(tmp_path / "bad.tfrecord", [_GOOD, _GOOD, payload, _GOOD])
    at = 2 * (len(_GOOD) + 16)
    with pytest.raises(NasbenchRecordError, match=rf"at byte {at} of .*bad.tfrecord .*{match}"):
        open_nasbench(path)
    table = open_nasbench(path, skip_damaged=True)  # skipped and counted instead
    assert table.records == 3 and [d.offset for d in table.damage] == [at]
    assert int(table.counts.sum()) == 3


def test_records_that_contradict_each_other(tmp_path):
    other = _record(adjacency="010001000", ops=f"input,{CONV3},output")
    twin = _record(module_hash="1" * 32)
    path = write_tfrecord(tmp_path / "two.tfrecord", [_GOOD, other])
    with pytest.raises(
        NasbenchRecordError,
        match=rf"at byte {len(_GOOD) + 16} .*describes "
        rf"another cell than the record at byte 0 of the same module hash",
    ):
        open_nasbench(path)  # fmt: skip
    path = write_tfrecord(tmp_path / "twin.tfrecord", [_GOOD, twin])
    with pytest.raises(NasbenchRecordError, match=f"has module hash {'1' * 32}, and {'0' * 32} "
                       "names the same cell"):  # fmt: skip
        open_nasbench(path)


# -- the cache -------------------------------------------------------------------------------------
def test_the_cache_is_read_instead_of_the_file(tmp_path, nb101_file, monkeypatch):
    path = shutil.copy(nb101_file.path, tmp_path / "copy.tfrecord")
    first = open_nasbench(path)
    assert first.path == str(tmp_path / "copy.tfrecord.dagrank.npz")

    def never(*args, **kwargs):
        raise AssertionError("the file was read again")

    monkeypatch.setattr(nasbench_cache, "read_nasbench_records", never)
    again = open_nasbench(path)
    assert again.path == first.path
    for metric in METRICS:
        np.testing.assert_array_equal(again.values[metric], first.values[metric])
    direct = open_nasbench(first.path)  # the cache itself is a table file too
    np.testing.assert_array_equal(direct.module_hash, first.module_hash)


def test_a_changed_source_is_noticed(tmp_path, nb101_file, slice_table, space4, caplog):
    path = shutil.copy(nb101_file.path, tmp_path / "copy.tfrecord")
    old = open_nasbench(path)
    shutil.copy(_small(tmp_path, slice_table, space4, n=5).path, path)  # another file, same name
    with pytest.raises(NasbenchCacheError, match=r"cache .* is stale: its source .* changed "
                       r"\(its size changed from \d+ to \d+ bytes\)"):  # fmt: skip
        open_nasbench(old.path)
    with caplog.at_level(logging.WARNING, logger="dagrank"):
        new = open_nasbench(path)
    assert "rebuilding the cache" in caplog.text and len(new) == 5 != len(old)
    raw = bytearray(path.read_bytes())  # same size, another first byte of data
    raw[20] ^= 1
    (tmp_path / "copy.tfrecord").write_bytes(bytes(raw))
    with pytest.raises(NasbenchCacheError, match="its first or last MiB changed"):
        open_nasbench(new.path)


def test_cache_directory_and_unusable_caches(tmp_path, nb101_file, caplog):
    table = open_nasbench(nb101_file.path, cache_dir=tmp_path / "caches")
    assert table.path == str(tmp_path / "caches" / "nasbench_small.tfrecord.dagrank.npz")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(NasbenchCacheError, match="cannot be written to .*name a writable "
                       "directory: dagrank nasbench convert"):  # fmt: skip
        open_nasbench(nb101_file.path, cache_dir=blocker)
    broken = tmp_path / "caches" / "nasbench_small.tfrecord.dagrank.npz"
    broken.write_bytes(b"not a zip")
    with pytest.raises(NasbenchCacheError, match="is not a readable NAS-Bench-101 cache"):
        load_cache(broken)
    with caplog.at_level(logging.WARNING, logger="dagrank"):
        rebuilt = open_nasbench(nb101_file.path, cache_dir=tmp_path / "caches")
    assert "rebuilding the cache" in caplog.text and len(rebuilt) == len(table)
    space_file = nasbench101_space().subset([0, 1]).save(tmp_path / "space.npz")
    with pytest.raises(NasbenchCacheError, match="not a NAS-Bench-101 cache of format"):
        load_cache(space_file)
    with pytest.raises(NasbenchCacheError, match="No NAS-Bench-101 cache at"):
        open_nasbench(tmp_path / "none.npz")
    with pytest.raises(TFRecordError, match="No NAS-Bench-101 file at"):
        open_nasbench(tmp_path / "none.tfrecord")


def test_a_record_in_the_benchmarks_own_words():
    """The payload layout of api.py: [hash, epochs, '0110...', 'input,...', base64]."""
    payload = encode_nasbench_record("a" * 32, 36, np.asarray([[0, 1], [0, 0]]),
                                     ["input", "output"], ModelMetrics())  # fmt: skip
    assert json.loads(payload) == ["a" * 32, 36, "0100", "input,output", ""]
    assert MAXPOOL in nasbench101_space().vocabulary


@pytest.mark.slow
def test_slice_cells_in_random_vertex_orders_find_their_index(nb101_space, slice_table, tmp_path):
    """The slice's own cells (7 vertices; their official module hashes), each record's vertices
    in a random topological order: the index found from the cell's form is the cell that
    NAS-Bench-101's hash names. (Slow alone: the space's hashes, which the session shares.)"""
    from analysis.nasbench_bench import bench_nasbench_file

    keys = np.asarray(slice_table["key"][:300])
    index = pd.Index(nb101_space.nasbench101_hashes().tolist()).get_indexer(keys.tolist())
    built = build_nasbench_file(tmp_path / "slice.tfrecord", nb101_space, index,
                                slice_values(slice_table, 300), seed=5, hashes=keys)  # fmt: skip
    table = open_nasbench(built.path)
    rows = _rows_of(table, keys)
    np.testing.assert_array_equal(table.space_index[rows], index)
    np.testing.assert_array_equal(nb101_space.hashes[table.space_index], table.canonical_hash)
    results = nasbench_results(table, nb101_space, missing="subset")  # hashes known: checked
    np.testing.assert_array_equal(
        results.column("108_final_validation_accuracy"),
        np.asarray(slice_table["108_final_validation_accuracy"][:300])[np.argsort(index)],
    )
    line = bench_nasbench_file(SLICE, tmp_path / "bench", space=nb101_space, budgets=(108,),
                               limit=200)  # fmt: skip
    assert line["records"] == 600 and line["means_equal_slice"] and line["cells"] == 200


def test_inconsistent_caches_are_refused(tmp_path, nb101_file):
    table = open_nasbench(nb101_file.path, cache_dir=tmp_path)
    with np.load(table.path) as data:
        arrays = {name: data[name] for name in data.files}
    lacking = {k: v for k, v in arrays.items() if k != "counts"}
    np.savez(tmp_path / "lacking.npz", **lacking)
    with pytest.raises(NasbenchCacheError, match="lacks the array 'counts'"):
        load_cache(tmp_path / "lacking.npz")
    np.savez(tmp_path / "short.npz", **{**arrays, "space_index": arrays["space_index"][:3]})
    with pytest.raises(NasbenchCacheError, match="arrays of inconsistent shapes"):
        load_cache(tmp_path / "short.npz")


def test_the_builder_refuses_what_it_cannot_build(tmp_path, space4):
    from analysis.nasbench_bench import bench_nasbench_file, exact_mean_repeats
    from analysis.tables import TableError

    rng = np.random.default_rng(0)
    means = np.asarray([0.5, 0.75, 0.9286859035491943])  # float32 values
    values = exact_mean_repeats(means, 3, rng)
    assert values.shape == (3, 3) and not (values == means[:, None]).all()
    with pytest.raises(TableError, match=r"The mean .*0\.1.* is not a float32"):
        exact_mean_repeats(np.asarray([0.1]), 3, rng)
    if not SLICE.exists():
        pytest.skip("no slice")
    with pytest.raises(TableError, match=r"\d+ keys of .* are not NAS-Bench-101 hashes of cells"):
        bench_nasbench_file(SLICE, tmp_path, space=space4)
