"""TFRecord files without TensorFlow: the framing, its masked CRC-32C checks, streaming reads.

A TFRecord file is a sequence of records, each framed as (all integers little-endian)::

    uint64 length | uint32 masked_crc32c(length) | byte data[length] | uint32 masked_crc32c(data)

CRC-32C is the Castagnoli CRC (reflected polynomial ``0x82F63B78``, initial value and final xor
``0xFFFFFFFF``; ``crc32c(b"123456789") == 0xE3069283``), and a CRC is *masked* as
``((crc >> 15) | (crc << 17)) + 0xA282EAD8`` modulo ``2 ** 32``.

Algorithm. The file is read in chunks of about ``chunk_bytes``; the framing of a chunk is walked
record by record (one ``struct`` read per record: the offsets depend on the lengths), then every
CRC of the chunk is computed at once (:func:`crc32c_many`): the records' bytes are gathered into
one array of little-endian words, row ``j`` holding word ``j`` of every record, and the CRC
register of all records advances four bytes per numpy step through two 65,536-entry tables
(CRC-32C is linear, so four steps of the byte-wise table fold into one lookup per 16-bit half
of the register); the last ``length % 4`` bytes take byte steps. :func:`crc32c_reference` is
the per-byte loop it is tested against (``dagrank bench nasbench-file`` times both).

A damaged file is a :class:`TFRecordError` naming the file and the byte offset of the record:
a length field or data whose CRC does not match, or a record cut short at the end of the file.
With ``skip_damaged=True`` such records are skipped and counted instead: a record whose data
CRC fails is stepped over (its length field is intact); after a length field that fails, the
reader resynchronises at the next offset whose 12 bytes form a valid length field (the chance
that random bytes do is 2 ** -32 per offset); a cut final record ends the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from analysis.errors import AnalysisError

__all__ = [
    "Damage",
    "RecordBatch",
    "TFRecordError",
    "crc32c",
    "crc32c_many",
    "crc32c_reference",
    "encode_record",
    "iter_record_batches",
    "mask_crc",
    "write_tfrecord",
]

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_HEADER = 12  # uint64 length + uint32 masked CRC
_FOOTER = 4


class TFRecordError(AnalysisError, ValueError):
    """A TFRecord file is damaged or malformed; the message names the file and byte offset."""

    def __init__(self, message: str, path: str | os.PathLike = "", offset: int = -1) -> None:
        super().__init__(message)
        self.path = str(path)
        self.offset = offset


def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(_POLY), table >> 1)
    return table.astype(np.uint32)


_TABLE = _byte_table()


def _word_tables() -> tuple[np.ndarray, np.ndarray]:
    """Four byte steps at once: ``f^4(s) = LOW[s & 0xFFFF] ^ HIGH[s >> 16]`` (``f`` the byte
    step with a zero byte; linear, and four steps shift every bit of ``s`` out)."""
    low = np.arange(1 << 16, dtype=np.uint32)
    high = low << np.uint32(16)
    for _ in range(4):
        low = _TABLE[low & 0xFF] ^ (low >> np.uint32(8))
        high = _TABLE[high & 0xFF] ^ (high >> np.uint32(8))
    return low, high


_LOW, _HIGH = _word_tables()


def crc32c_reference(data: bytes) -> int:
    """CRC-32C of ``data``, one byte at a time (the oracle; slow)."""
    crc = 0xFFFFFFFF
    table = _TABLE.tolist()
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c_many(buffer: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """CRC-32C of many messages of one buffer at once.

    Args:
        buffer: ``(B,)`` uint8, the bytes holding every message.
        offsets, lengths: ``(n,)`` where each message starts in ``buffer`` and its byte count.

    Returns:
        ``(n,)`` uint32 CRCs (not masked).
    """
    buffer = np.asarray(buffer, dtype=np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(offsets)
    if n == 0:
        return np.empty(0, dtype=np.uint32)
    order = np.argsort(-lengths, kind="stable")  # longest first: active messages are a prefix
    starts, sizes = offsets[order], lengths[order]
    width = -(-int(sizes[0]) // 4) * 4
    crc = np.full(n, 0xFFFFFFFF, dtype=np.uint32)
    if width:
        padded = buffer
        if int(starts.max()) + width > len(buffer):  # words read past the end are never used
            padded = np.concatenate([buffer, np.zeros(width, dtype=np.uint8)])
        rows = np.lib.stride_tricks.sliding_window_view(padded, width)[starts]  # (n, width)
        words = np.ascontiguousarray(rows.view("<u4").T)  # (width / 4, n): word j of each
        active = np.searchsorted(-(sizes // 4), -np.arange(1, width // 4 + 1), side="right")
        for j, k in enumerate(active.tolist()):  # four bytes per step
            if not k:
                break
            state = crc[:k] ^ words[j, :k]
            crc[:k] = _LOW[state & 0xFFFF] ^ _HIGH[state >> np.uint32(16)]
        for r in range(1, 4):  # the last len % 4 bytes, one at a time
            tail = np.flatnonzero(sizes % 4 >= r)
            if len(tail):
                state = crc[tail] ^ rows[tail, sizes[tail] // 4 * 4 + r - 1]
                crc[tail] = _TABLE[state & 0xFF] ^ (state >> np.uint32(8))
    out = np.empty(n, dtype=np.uint32)
    out[order] = crc ^ np.uint32(0xFFFFFFFF)
    return out


def crc32c(data: bytes) -> int:
    """CRC-32C of one message (vectorised path; equal to :func:`crc32c_reference`)."""
    buffer = np.frombuffer(bytes(data), dtype=np.uint8)
    return int(crc32c_many(buffer, np.zeros(1), np.asarray([len(buffer)]))[0])


def mask_crc(crc: np.ndarray | int) -> np.ndarray | int:
    """TFRecord's masked CRC of ``crc`` (array or int)."""
    if isinstance(crc, (int, np.integer)):
        crc = int(crc)
        return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
    crc = np.asarray(crc, dtype=np.uint32)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)


# -- writing ---------------------------------------------------------------------------------------
def encode_record(data: bytes) -> bytes:
    """One framed record: length, its masked CRC, the data, its masked CRC."""
    length = struct.pack("<Q", len(data))
    return b"".join([length, struct.pack("<I", mask_crc(crc32c(length))), data,
                     struct.pack("<I", mask_crc(crc32c(data)))])  # fmt: skip


def write_tfrecord(path: str | os.PathLike, payloads: Iterable[bytes]) -> Path:
    """Write ``payloads`` as a TFRecord file, atomically; the CRCs of a batch are computed at
    once. Returns the path."""
    from dagspace.io import atomic_write

    path = Path(path)
    with atomic_write(path, "wb") as handle:
        batch: list[bytes] = []
        for payload in payloads:
            batch.append(bytes(payload))
            if len(batch) == 65536:
                handle.write(_frame(batch))
                batch = []
        handle.write(_frame(batch))
    return path


def _frame(payloads: list[bytes]) -> bytes:
    if not payloads:
        return b""
    lengths = np.asarray([len(p) for p in payloads], dtype=np.int64)
    heads = lengths.astype("<u8").tobytes()
    head_crc = mask_crc(crc32c_many(np.frombuffer(heads, np.uint8), 8 * np.arange(len(lengths)),
                                    np.full(len(lengths), 8)))  # fmt: skip
    body = b"".join(payloads)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    data_crc = mask_crc(crc32c_many(np.frombuffer(body, np.uint8), starts, lengths))
    head_crc, data_crc = head_crc.astype("<u4").tobytes(), data_crc.astype("<u4").tobytes()
    parts = []
    for i, payload in enumerate(payloads):
        parts += [heads[8 * i : 8 * i + 8], head_crc[4 * i : 4 * i + 4], payload,
                  data_crc[4 * i : 4 * i + 4]]  # fmt: skip
    return b"".join(parts)


# -- reading ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Damage:
    """A skipped part of a file: its byte ``offset``, ``size`` and the ``reason``."""

    offset: int
    size: int
    reason: str


@dataclass
class RecordBatch:
    """The records of one chunk: ``data`` the chunk's bytes, ``starts`` / ``lengths`` ``(n,)``
    each record's data within ``data``, ``offsets`` ``(n,)`` each record's byte offset in the
    file, ``index`` ``(n,)`` its number in the file (from 0, skipped records counted)."""

    data: bytes
    starts: np.ndarray
    lengths: np.ndarray
    offsets: np.ndarray
    index: np.ndarray
    damage: list[Damage] = field(default_factory=list)

    def payload(self, i: int) -> bytes:
        start = int(self.starts[i])
        return self.data[start : start + int(self.lengths[i])]


def _valid_headers(buffer: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Which ``positions`` of ``buffer`` start a length field whose masked CRC matches."""
    positions = np.asarray(positions, dtype=np.int64)
    fits = positions + _HEADER <= len(buffer)
    at = positions[fits]
    fields = buffer[at[:, None] + np.arange(_HEADER)]  # (n, 12): length and its CRC
    crc = mask_crc(crc32c_many(fields.ravel(), _HEADER * np.arange(len(at)), np.full(len(at), 8)))
    ok = np.zeros(len(positions), dtype=bool)
    ok[np.flatnonzero(fits)] = crc == _u32(fields.ravel(), _HEADER * np.arange(len(at)) + 8)
    return ok


def _u32(buffer: np.ndarray, at: np.ndarray) -> np.ndarray:
    b = buffer[at[:, None] + np.arange(4)].astype(np.uint32)
    return b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16) | (b[:, 3] << 24)


class _Reader:
    """The framing walk of one file (see the module docstring)."""

    def __init__(self, path: Path, skip_damaged: bool, chunk_bytes: int) -> None:
        self.path, self.skip, self.chunk = path, skip_damaged, chunk_bytes
        self.size = path.stat().st_size
        self.count = 0  # records seen, skipped ones included

    def fail(self, offset: int, reason: str, number: int) -> TFRecordError:
        return TFRecordError(
            f"The TFRecord file {self.path} is damaged at byte {offset} (record {number}): "
            f"{reason}.",
            self.path,
            offset,
        )

    def batches(self) -> Iterator[RecordBatch]:
        with open(self.path, "rb") as handle:
            base, carry = 0, b""
            while True:
                block = handle.read(self.chunk)
                data = carry + block
                if not data:
                    return
                at_end = not block or base + len(data) >= self.size
                batch, used = self._walk(data, base, at_end)
                yield batch
                if at_end and used >= len(data):
                    return
                if not block:  # nothing more to read and the walk did not finish the data
                    return
                carry, base = data[used:], base + used

    def _walk(self, data: bytes, base: int, at_end: bool) -> tuple[RecordBatch, int]:
        """Frame the records in ``data`` (file offset ``base``); returns the batch and how many
        bytes it consumed (a record cut by the chunk's end is left for the next chunk). The
        length fields are walked first and their CRCs checked together; the walk is cut at the
        first that fails."""
        buffer = np.frombuffer(data, dtype=np.uint8)
        starts, lengths, damage = [], [], []
        pos, end = 0, len(data)
        while pos < end:
            walked, cut = self._frames(data, pos, end)
            ok = _valid_headers(buffer, np.asarray([p for p, _ in walked], dtype=np.int64))
            good = len(walked) if ok.all() else int(np.argmin(ok))
            for p, length in walked[:good]:
                starts.append(p)
                lengths.append(length)
            if good < len(walked):  # a length field that fails its CRC
                pos = self._resync(buffer, walked[good][0], base, damage, len(starts))
                continue
            pos = walked[-1][0] + _HEADER + walked[-1][1] + _FOOTER if walked else pos
            if cut is None:
                continue
            if not at_end:
                break
            if end - cut >= _HEADER and not _valid_headers(buffer, np.asarray([cut]))[0]:
                pos = self._resync(buffer, cut, base, damage, len(starts))
                continue
            damage.append(self._cut(base + cut, end - cut, self.count + len(starts) + len(damage)))
            pos = end
        starts = np.asarray(starts, dtype=np.int64)
        index = np.arange(len(starts), dtype=np.int64)
        for d in damage:  # the records numbered in file order, damaged ones counted
            index[starts > d.offset - base] += 1
        index += self.count
        self.count += len(starts) + len(damage)
        batch = RecordBatch(data, starts + _HEADER, np.asarray(lengths, dtype=np.int64),
                            starts + base, index, damage)  # fmt: skip
        return self._check_data(buffer, batch), pos

    @staticmethod
    def _frames(data: bytes, pos: int, end: int) -> tuple[list[tuple[int, int]], int | None]:
        """The ``(position, length)`` of the records from ``pos`` on, trusting the length
        fields, and where a record stops fitting (``None``: the walk reached ``end``)."""
        unpack = struct.unpack_from
        walked = []
        while pos < end:
            if end - pos < _HEADER:
                return walked, pos
            (length,) = unpack("<Q", data, pos)
            if pos + _HEADER + length + _FOOTER > end:
                return walked, pos
            walked.append((pos, length))
            pos += _HEADER + length + _FOOTER
        return walked, None

    def _cut(self, offset: int, size: int, number: int) -> Damage:
        if size < _HEADER:
            reason = f"truncated record: the file ends inside a length field ({size} bytes)"
        else:
            reason = f"truncated record: the record does not fit in the {size} bytes left"
        if not self.skip:
            raise self.fail(offset, reason, number)
        return Damage(offset, size, reason)

    def _resync(self, buffer: np.ndarray, pos: int, base: int, damage: list[Damage],
                good: int) -> int:  # fmt: skip
        """After a length field that fails its CRC: an error, or (skipping) the next offset
        that starts a valid length field, the bytes between counted as one damaged record."""
        if not self.skip:
            raise self.fail(base + pos, "the CRC of the record's length field does not match",
                            self.count + good + len(damage))  # fmt: skip
        end = len(buffer)
        step = 1 << 16
        for lo in range(pos + 1, end, step):
            candidates = np.arange(lo, min(lo + step, end), dtype=np.int64)
            ok = np.flatnonzero(_valid_headers(buffer, candidates))
            if len(ok):
                nxt = int(candidates[ok[0]])
                break
        else:
            nxt = end
        damage.append(Damage(base + pos, nxt - pos, "the CRC of the length field does not "
                             "match; skipped to the next valid record"))  # fmt: skip
        return nxt

    def _check_data(self, buffer: np.ndarray, batch: RecordBatch) -> RecordBatch:
        if not len(batch.starts):
            return batch
        crc = mask_crc(crc32c_many(buffer, batch.starts, batch.lengths))
        bad = crc != _u32(buffer, batch.starts + batch.lengths)
        if not bad.any():
            return batch
        first = int(np.argmax(bad))
        if not self.skip:
            raise self.fail(int(batch.offsets[first]), "the CRC of the record's data does not "
                            "match", int(batch.index[first]))  # fmt: skip
        for i in np.flatnonzero(bad).tolist():
            batch.damage.append(Damage(int(batch.offsets[i]),
                                       int(batch.lengths[i]) + _HEADER + _FOOTER,
                                       "the CRC of the record's data does not match"))  # fmt: skip
        keep = ~bad
        batch.damage.sort(key=lambda d: d.offset)
        return RecordBatch(batch.data, batch.starts[keep], batch.lengths[keep],
                           batch.offsets[keep], batch.index[keep], batch.damage)  # fmt: skip


def iter_record_batches(
    path: str | os.PathLike, *, skip_damaged: bool = False, chunk_bytes: int = 1 << 25
) -> Iterator[RecordBatch]:
    """The records of a TFRecord file, checked, one :class:`RecordBatch` per chunk of about
    ``chunk_bytes`` (a record larger than a chunk is read whole).

    Raises:
        TFRecordError: no such file, or (without ``skip_damaged``) a damaged record.
    """
    path = Path(path)
    if not path.is_file():
        raise TFRecordError(f"No TFRecord file at {path}.", path)
    if not isinstance(chunk_bytes, int) or chunk_bytes < 1:
        raise TFRecordError(f"The 'chunk_bytes' must be a positive int; got {chunk_bytes!r}.")
    return _Reader(path, skip_damaged, chunk_bytes).batches()
