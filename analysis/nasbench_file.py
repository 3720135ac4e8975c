"""NAS-Bench-101's official data files (``nasbench_only108.tfrecord``, ``nasbench_full.tfrecord``)
read without TensorFlow or protobuf's generated code.

Layout (as the benchmark's ``api.py`` reads it). Every TFRecord record (:mod:`analysis.tfrecord`)
is the UTF-8 JSON list ``[module_hash, epochs, raw_adjacency, raw_operations, raw_metrics]``:

``module_hash``
    the cell's 32-hex-digit module hash (:func:`dagspace.nasbench101_hash`);
``epochs``
    the training budget of this record (4, 12, 36 or 108);
``raw_adjacency``
    the ``d x d`` upper-triangular 0/1 matrix of the pruned cell, row-major, as ``d * d`` digits;
``raw_operations``
    the ``d`` operation names joined by commas (``input`` first, ``output`` last);
``raw_metrics``
    the base64 of a serialized ``ModelMetrics`` protobuf (``nasbench/lib/model_metrics.proto``)::

        message ModelMetrics {
          repeated EvaluationData evaluation_data = 1;  // start, halfway, end of training
          optional int32 trainable_parameters = 2;
          optional double total_time = 3;
        }
        message EvaluationData {
          optional double current_epoch = 1;   optional double training_time = 2;
          optional double train_accuracy = 3;  optional double validation_accuracy = 4;
          optional double test_accuracy = 5;   optional string checkpoint_path = 6;
        }

One record is one training run (a *repeat*) of one cell at one budget; the official files hold
three repeats per cell and budget. The protobuf wire format is decoded by hand: a field's key is
the varint ``number << 3 | wire_type``; wire type 0 is a varint, 1 eight little-endian bytes (a
double here), 2 a varint length and that many bytes (a sub-message or a string), 5 four bytes.
Unknown fields are skipped, as protobuf does. The metrics of a record are those of its last
evaluation (the end of training; the benchmark's ``evaluation_data[2]``).

:func:`read_nasbench_records` streams a file into per-record columns (a progress bar over its
bytes); a damaged or malformed record is a :class:`NasbenchRecordError` (a
:class:`~analysis.tfrecord.TFRecordError`) that names the file and the record's byte offset, or,
with ``skip_damaged=True``, skipped and counted. :func:`encode_nasbench_record` writes the same
format (the tests and ``dagrank bench nasbench-file`` build files with it).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.errors import AnalysisError
from analysis.tfrecord import Damage, TFRecordError, iter_record_batches

__all__ = [
    "EVALUATION_FIELDS",
    "METRICS",
    "EvaluationData",
    "ModelMetrics",
    "NasbenchRecordError",
    "NasbenchRecords",
    "decode_model_metrics",
    "encode_model_metrics",
    "encode_nasbench_record",
    "read_nasbench_records",
]

EVALUATION_FIELDS = (
    "current_epoch",
    "training_time",
    "train_accuracy",
    "validation_accuracy",
    "test_accuracy",
)
# the per-record metrics kept (of the last evaluation), in the column order of NasbenchRecords
METRICS = ("validation_accuracy", "test_accuracy", "train_accuracy", "training_time")
_METRIC_FIELD = tuple(EVALUATION_FIELDS.index(m) for m in METRICS)
_HASH = re.compile(r"[0-9a-f]{32}")


class NasbenchRecordError(TFRecordError):
    """A record of a NAS-Bench-101 file is not in the benchmark's format (file and offset)."""


class _Malformed(AnalysisError, ValueError):
    """Raised inside the decoders; turned into a NasbenchRecordError naming file and offset."""


# -- the protobuf wire format, by hand -------------------------------------------------------------
@dataclass(frozen=True)
class EvaluationData:
    """One evaluation of a training run; a field absent from the message is NaN (or ``""``)."""

    current_epoch: float = math.nan
    training_time: float = math.nan
    train_accuracy: float = math.nan
    validation_accuracy: float = math.nan
    test_accuracy: float = math.nan
    checkpoint_path: str = ""


@dataclass(frozen=True)
class ModelMetrics:
    """A record's metrics: its evaluations, the parameter count and the total time."""

    evaluation_data: tuple[EvaluationData, ...] = ()
    trainable_parameters: int | None = None
    total_time: float | None = None


_DOUBLE = struct.Struct("<d")


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Malformed("a varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("a varint is longer than 10 bytes")


def _field_key(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """A field's number and wire type, and the position after its key."""
    key = buf[pos]
    if key < 0x80:  # the one-byte keys of every field here
        return key >> 3, key & 7, pos + 1
    key, pos = _varint(buf, pos, end)
    return key >> 3, key & 7, pos


def _skip(buf: bytes, pos: int, end: int, wire: int) -> int:
    """The position after an unknown field's value."""
    if wire == 0:
        return _varint(buf, pos, end)[1]
    if wire == 1:
        pos += 8
    elif wire == 5:
        pos += 4
    elif wire == 2:
        length, pos = _varint(buf, pos, end)
        pos += length
    else:
        raise _Malformed(f"wire type {wire} is not used by ModelMetrics")
    if pos > end:
        raise _Malformed("a field runs past the end of its message")
    return pos


def _evaluation(buf: bytes, pos: int, end: int) -> tuple[list[float], str]:
    """The five doubles of an ``EvaluationData`` (NaN when absent) and its checkpoint path."""
    values = [math.nan] * 5
    path = ""
    while pos < end:
        number, wire, pos = _field_key(buf, pos, end)
        if 1 <= number <= 5:
            if wire != 1:
                raise _Malformed(f"EvaluationData field {number} has wire type {wire}, not 1")
            if pos + 8 > end:
                raise _Malformed("a double runs past the end of its message")
            values[number - 1] = _DOUBLE.unpack_from(buf, pos)[0]
            pos += 8
        elif number == 6 and wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Malformed("checkpoint_path runs past the end of its message")
            path = buf[pos : pos + length].decode("utf-8", errors="replace")
            pos += length
        else:
            pos = _skip(buf, pos, end, wire)
    return values, path


def _metrics(buf: bytes) -> tuple[list[tuple[list[float], str]], int | None, float | None]:
    evaluations, params, total = [], None, None
    pos, end = 0, len(buf)
    while pos < end:
        number, wire, pos = _field_key(buf, pos, end)
        if number == 1 and wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise _Malformed("evaluation_data runs past the end of ModelMetrics")
            evaluations.append(_evaluation(buf, pos, pos + length))
            pos += length
        elif number == 2 and wire == 0:
            params, pos = _varint(buf, pos, end)
            if params >= 1 << 63:  # a negative int32 is sign-extended to 64 bits
                params -= 1 << 64
        elif number == 3 and wire == 1:
            if pos + 8 > end:
                raise _Malformed("total_time runs past the end of ModelMetrics")
            total = _DOUBLE.unpack_from(buf, pos)[0]
            pos += 8
        elif number in (1, 2, 3):
            raise _Malformed(f"ModelMetrics field {number} has wire type {wire}")
        else:
            pos = _skip(buf, pos, end, wire)
    return evaluations, params, total


def decode_model_metrics(data: bytes) -> ModelMetrics:
    """A serialized ``ModelMetrics`` message, decoded.

    Raises:
        NasbenchRecordError: the bytes are not a well-formed message of this layout.
    """
    try:
        evaluations, params, total = _metrics(bytes(data))
    except _Malformed as err:
        raise NasbenchRecordError(f"Not a serialized ModelMetrics message: {err}.") from None
    data_points = tuple(EvaluationData(*values, checkpoint_path=path)
                        for values, path in evaluations)  # fmt: skip
    return ModelMetrics(data_points, params, total)


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_model_metrics(metrics: ModelMetrics) -> bytes:
    """``metrics`` serialized as protobuf would (fields in number order; NaN fields, an empty
    checkpoint path and ``None`` are left out)."""
    out = bytearray()
    for evaluation in metrics.evaluation_data:
        body = bytearray()
        for number, name in enumerate(EVALUATION_FIELDS, start=1):
            value = getattr(evaluation, name)
            if not math.isnan(value):
                body += _key(number, 1) + _DOUBLE.pack(value)
        if evaluation.checkpoint_path:
            text = evaluation.checkpoint_path.encode()
            body += _key(6, 2) + _encode_varint(len(text)) + text
        out += _key(1, 2) + _encode_varint(len(body)) + body
    if metrics.trainable_parameters is not None:
        out += _key(2, 0) + _encode_varint(int(metrics.trainable_parameters))
    if metrics.total_time is not None:
        out += _key(3, 1) + _DOUBLE.pack(metrics.total_time)
    return bytes(out)


def encode_nasbench_record(module_hash: str, epochs: int, matrix: np.ndarray,
                           ops: Sequence[str], metrics: ModelMetrics) -> bytes:  # fmt: skip
    """One record's payload (before TFRecord framing) in the benchmark's JSON form."""
    raw_adjacency = "".join(str(int(b)) for b in np.asarray(matrix).ravel())
    raw_metrics = base64.b64encode(encode_model_metrics(metrics)).decode("ascii")
    row = [module_hash, int(epochs), raw_adjacency, ",".join(ops), raw_metrics]
    return json.dumps(row).encode("utf-8")


# -- reading a whole file --------------------------------------------------------------------------
@dataclass(frozen=True)
class NasbenchRecords:
    """The records of a file as columns, one row per record in file order.

    Attributes:
        path: the file; ``size``: its byte count.
        hashes: ``(H,)`` the distinct module hashes; ``hash_code`` ``(n,)`` each record's.
        cells: ``(C,)`` the distinct ``(raw_adjacency, raw_operations)`` pairs (a cell given in
            two vertex orders is two pairs); ``cell_code`` ``(n,)`` each record's.
        epochs: ``(n,)`` int64 budgets; ``params`` ``(n,)`` int64 trainable parameters (``-1``
            when absent); ``total_time`` ``(n,)``.
        metrics: ``(n, 4)`` float64, the last evaluation's :data:`METRICS`.
        offsets: ``(n,)`` each record's byte offset; ``damage``: what ``skip_damaged`` skipped.
    """

    path: str
    size: int
    hashes: np.ndarray
    hash_code: np.ndarray
    cells: list[tuple[str, str]]
    cell_code: np.ndarray
    epochs: np.ndarray
    params: np.ndarray
    total_time: np.ndarray
    metrics: np.ndarray
    offsets: np.ndarray
    damage: list[Damage] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)


def _parse(payload: bytes) -> tuple[str, int, str, str, list[float], int, float]:
    try:
        row = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as err:
        raise _Malformed(f"the record is not JSON ({err})") from None
    if not isinstance(row, list) or len(row) != 5:
        raise _Malformed("the record is not the JSON list [module_hash, epochs, raw_adjacency, "
                         f"raw_operations, raw_metrics]; got {str(row)[:80]!r}")  # fmt: skip
    module_hash, epochs, adjacency, operations, raw = row
    if not isinstance(module_hash, str) or not _HASH.fullmatch(module_hash):
        raise _Malformed(f"module_hash must be 32 lowercase hex digits; got {module_hash!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise _Malformed(f"epochs must be a positive integer; got {epochs!r}")
    if not isinstance(adjacency, str) or not isinstance(operations, str):
        raise _Malformed("raw_adjacency and raw_operations must be strings; got "
                         f"{type(adjacency).__name__} and {type(operations).__name__}")  # fmt: skip
    if not isinstance(raw, str):
        raise _Malformed(f"raw_metrics must be a base64 string; got {type(raw).__name__}")
    try:
        evaluations, params, total = _metrics(base64.b64decode(raw, validate=True))
    except binascii.Error as err:
        raise _Malformed(f"raw_metrics is not base64 ({err})") from None
    if not evaluations:
        raise _Malformed("ModelMetrics has no evaluation_data")
    last = evaluations[-1][0]
    return (module_hash, epochs, adjacency, operations, [last[i] for i in _METRIC_FIELD],
            -1 if params is None else params, math.nan if total is None else total)  # fmt: skip


def read_nasbench_records(path: str | os.PathLike, *, skip_damaged: bool = False,
                          progress: bool | None = False,
                          chunk_bytes: int = 1 << 25) -> NasbenchRecords:  # fmt: skip
    """Every record of a NAS-Bench-101 file, checked and decoded (see the module docstring).

    ``progress``: a bar over the file's bytes (``None``: only when stderr is a terminal).

    Raises:
        TFRecordError: no such file, or a damaged record (its CRC, or the file cut short).
        NasbenchRecordError: a record that is not in the benchmark's format.
        (With ``skip_damaged`` both kinds of record are skipped and listed in ``damage``.)
    """
    from tqdm.auto import tqdm

    path = Path(path)
    hash_ids: dict[str, int] = {}
    cell_ids: dict[tuple[str, str], int] = {}
    parts: list[tuple[np.ndarray, ...]] = []
    damage: list[Damage] = []
    size = path.stat().st_size if path.is_file() else 0
    bar = tqdm(total=size, unit="B", unit_scale=True, desc=f"reading {path.name}",
               disable=None if progress is None else not progress)  # fmt: skip
    done = 0
    try:
        for batch in iter_record_batches(path, skip_damaged=skip_damaged, chunk_bytes=chunk_bytes):
            damage += batch.damage
            rows, keep = [], []
            for i in range(len(batch.starts)):
                try:
                    parsed = _parse(batch.payload(i))
                except _Malformed as err:
                    offset = int(batch.offsets[i])
                    reason = f"not a NAS-Bench-101 record: {err}"
                    if not skip_damaged:
                        raise NasbenchRecordError(
                            f"Record {int(batch.index[i])} at byte {offset} of {path} is {reason}.",
                            path, offset,
                        ) from None  # fmt: skip
                    damage.append(Damage(offset, int(batch.lengths[i]) + 16, reason))
                    continue
                module_hash, epochs, adjacency, operations, values, params, total = parsed
                code = hash_ids.setdefault(module_hash, len(hash_ids))
                cell = cell_ids.setdefault((adjacency, operations), len(cell_ids))
                rows.append((code, cell, epochs, params, total, *values))
                keep.append(i)
            if rows:
                table = np.asarray(rows, dtype=np.float64)
                ints = np.asarray([r[:4] for r in rows], dtype=np.int64)
                parts.append((ints, table[:, 4], table[:, 5:], batch.offsets[keep]))
            bar.update(int(batch.offsets[-1]) - done if len(batch.offsets) else 0)
            done = int(batch.offsets[-1]) if len(batch.offsets) else done
        bar.update(size - done)
    finally:
        bar.close()
    if parts:
        ints = np.concatenate([p[0] for p in parts])
        total = np.concatenate([p[1] for p in parts])
        metrics = np.concatenate([p[2] for p in parts])
        offsets = np.concatenate([p[3] for p in parts])
    else:
        ints, total = np.zeros((0, 4), dtype=np.int64), np.zeros(0)
        metrics, offsets = np.zeros((0, len(METRICS))), np.zeros(0, dtype=np.int64)
    damage.sort(key=lambda d: d.offset)
    return NasbenchRecords(
        path=str(path), size=size, hashes=np.asarray(list(hash_ids), dtype="U32"),
        hash_code=ints[:, 0], cells=list(cell_ids), cell_code=ints[:, 1], epochs=ints[:, 2],
        params=ints[:, 3], total_time=total, metrics=metrics, offsets=offsets, damage=damage,
    )  # fmt: skip
