"""TFRecord framing and CRC-32C: the vectorised CRC against the per-byte loop, damage found."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from analysis.tfrecord import (
    TFRecordError,
    crc32c,
    crc32c_many,
    crc32c_reference,
    encode_record,
    iter_record_batches,
    mask_crc,
    write_tfrecord,
)


def _payloads(seed: int, n: int = 40) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, int(rng.integers(0, 90)), dtype=np.uint8).tobytes()
            for _ in range(n)]  # fmt: skip


def _records(path) -> list[bytes]:
    return [b.payload(i) for b in iter_record_batches(path) for i in range(len(b.starts))]


def test_crc32c_known_values():
    assert crc32c(b"123456789") == crc32c_reference(b"123456789") == 0xE3069283  # RFC 3720
    assert crc32c(b"") == 0
    assert crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeros
    assert crc32c(bytes([0xFF] * 32)) == 0x62A8AB43


@pytest.mark.parametrize("seed", range(3))
def test_vectorised_crc_equals_the_per_byte_loop(seed):
    messages = _payloads(seed, 300)
    buffer = np.frombuffer(b"".join(messages), dtype=np.uint8)
    lengths = np.asarray([len(m) for m in messages])
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    got = crc32c_many(buffer, offsets, lengths)
    assert got.tolist() == [crc32c_reference(m) for m in messages]
    assert crc32c_many(buffer, np.zeros(0), np.zeros(0)).shape == (0,)


def test_mask_is_the_same_for_ints_and_arrays():
    values = [0, 1, 0xE3069283, 0xFFFFFFFF]
    assert mask_crc(np.asarray(values, dtype=np.uint32)).tolist() == [mask_crc(v) for v in values]
    assert mask_crc(0) == 0xA282EAD8


def test_frame_layout_and_round_trip_across_chunks(tmp_path):
    payloads = _payloads(0)
    path = write_tfrecord(tmp_path / "a.tfrecord", payloads)
    raw = path.read_bytes()
    length, head = struct.unpack_from("<QI", raw, 0)  # the first record, by hand
    assert length == len(payloads[0])
    assert head == mask_crc(crc32c_reference(raw[:8]))
    (tail,) = struct.unpack_from("<I", raw, 12 + length)
    assert tail == mask_crc(crc32c_reference(payloads[0]))
    assert raw[: 16 + length] == encode_record(payloads[0])
    for chunk in (1, 37, 1 << 20):  # records cut by chunk ends, or all in one chunk
        batches = list(iter_record_batches(path, chunk_bytes=chunk))
        got = [b.payload(i) for b in batches for i in range(len(b.starts))]
        assert got == payloads
        index = np.concatenate([b.index for b in batches])
        assert index.tolist() == list(range(len(payloads)))


def _offsets(payloads: list[bytes]) -> list[int]:
    sizes = [len(p) + 16 for p in payloads]
    return [int(o) for o in np.concatenate([[0], np.cumsum(sizes)[:-1]])]


def _damaged(tmp_path, how: str) -> tuple:
    """A file with record 7 damaged in one way: its data, its length field, its stored data
    CRC, or the file cut inside the last record."""
    payloads = [p + b"x" for p in _payloads(1)]  # none empty
    path = write_tfrecord(tmp_path / f"{how}.tfrecord", payloads)
    raw = bytearray(path.read_bytes())
    at = _offsets(payloads)[7]
    if how == "data":
        raw[at + 12] ^= 0x01
    elif how == "length":
        raw[at + 2] ^= 0x80
    elif how == "crc":
        raw[at + 12 + len(payloads[7])] ^= 0xFF
    else:  # truncated
        at = _offsets(payloads)[-1]
        raw = raw[: at + 12 + len(payloads[-1]) // 2]
    path.write_bytes(bytes(raw))
    return path, payloads, at


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("data", "CRC of the record's data does not match"),
        ("length", "CRC of the record's length field does not match"),
        ("crc", "CRC of the record's data does not match"),
        ("truncated", "truncated record"),
    ],
)
@pytest.mark.parametrize("chunk", [64, 1 << 20])
def test_damage_is_an_error_naming_the_file_and_byte(tmp_path, how, message, chunk):
    path, payloads, at = _damaged(tmp_path, how)
    number = len(payloads) - 1 if how == "truncated" else 7
    with pytest.raises(TFRecordError, match=rf"{path.name} is damaged at byte {at} "
                       rf"\(record {number}\): .*{message}") as info:  # fmt: skip
        list(iter_record_batches(path, chunk_bytes=chunk))
    assert info.value.offset == at and info.value.path == str(path)


@pytest.mark.parametrize("how", ["data", "length", "crc", "truncated"])
def test_skipping_damage_keeps_every_other_record(tmp_path, how):
    path, payloads, at = _damaged(tmp_path, how)
    batches = list(iter_record_batches(path, skip_damaged=True, chunk_bytes=50))
    got = [b.payload(i) for b in batches for i in range(len(b.starts))]
    lost = len(payloads) - 1 if how == "truncated" else 7
    assert got == payloads[:lost] + payloads[lost + 1 :]
    damage = [d for b in batches for d in b.damage]
    assert [d.offset for d in damage] == [at]
    index = np.concatenate([b.index for b in batches]).tolist()
    assert index == [i for i in range(len(payloads)) if i != lost]


def test_bad_arguments(tmp_path):
    with pytest.raises(TFRecordError, match="No TFRecord file at"):
        iter_record_batches(tmp_path / "none.tfrecord")
    path = write_tfrecord(tmp_path / "a.tfrecord", [b"a"])
    with pytest.raises(TFRecordError, match="'chunk_bytes' must be a positive int; got 0"):
        iter_record_batches(path, chunk_bytes=0)
    empty = write_tfrecord(tmp_path / "empty.tfrecord", [])
    assert empty.read_bytes() == b"" and _records(empty) == []
