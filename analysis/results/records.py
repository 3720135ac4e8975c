"""Evaluation records, their keys and statuses, and the input checks every backend shares."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analysis.errors import (
    StoreValueError,
)
from dagspace.canonical_json import canonical_json, json_sha256

__all__ = [
    "EVALUATORS",
    "Claim",
    "ClaimOutcome",
    "EvalKey",
    "EvalRecord",
    "EvalStatus",
    "hash_config",
]

EVALUATORS: tuple[str, ...] = ("supernet", "standalone", "tabular", "user")  # user: module:function
_INT64_MAX = 2**63 - 1


class EvalStatus(enum.IntEnum):
    """The life of an evaluation: PENDING → RUNNING → one of the three finished states."""

    PENDING = 0
    RUNNING = 1
    COMPLETE = 2
    DIVERGED = 3
    FAILED = 4

    @property
    def is_finished(self) -> bool:
        """COMPLETE, DIVERGED and FAILED records are finished, hence immutable."""
        return self >= EvalStatus.COMPLETE


class ClaimOutcome(enum.IntEnum):
    """What :meth:`ResultsStore.claim` did with a key."""

    ACQUIRED = 0  # a RUNNING record is now yours: evaluate, then finish() it
    CACHED = 1  # a COMPLETE or DIVERGED record exists: use it, do not evaluate
    EXHAUSTED = 2  # the last of ``max_attempts`` attempts FAILED: this is the final record
    BUSY = 3  # another live worker holds a RUNNING record for the key: ask again later


@dataclass(frozen=True)
class EvalKey:
    """The cache key of an evaluation: one result per key (per attempt).

    Two evaluations with equal keys are the same evaluation: the store never hands the second
    one out for evaluation while the first one's result exists.
    """

    arch_hash: str
    evaluator: str
    evaluator_config_hash: str
    seed: int

    def __post_init__(self) -> None:
        check_text("arch_hash", self.arch_hash)
        check_text("evaluator_config_hash", self.evaluator_config_hash)
        if self.evaluator not in EVALUATORS:
            raise StoreValueError(
                f"The 'evaluator' of an EvalKey must be one of {EVALUATORS}; "
                f"got {self.evaluator!r}."
            )
        seed = self.seed
        if isinstance(seed, bool) or not hasattr(seed, "__index__"):
            raise StoreValueError(
                f"The 'seed' of an EvalKey must be an integer; got {type(seed).__name__} {seed!r}."
            )
        seed = int(seed)  # numpy integers become plain ints
        if not -_INT64_MAX - 1 <= seed <= _INT64_MAX:
            raise StoreValueError(f"The 'seed' of an EvalKey must fit in 64 bits; got {seed}.")
        object.__setattr__(self, "seed", seed)


class ReadOnlyMetrics(Mapping[str, float]):
    """A read-only, hashable, picklable ``{name: value}`` mapping (a record's metrics)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, float] | None = None) -> None:
        self._data = dict(data or {})

    def __getitem__(self, name: str) -> float:
        return self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self._data,))


@dataclass(frozen=True)
class EvalRecord:
    """One evaluation as stored (a snapshot: later changes to the store do not show here).

    ``metrics`` is a read-only mapping; a metric stored as non-finite reads back as NaN.
    Times are ISO-8601 UTC text (``started_at``/``finished_at`` are ``None`` until they happen).
    """

    id: int
    run: str
    method: str
    arch_hash: str
    arch_json: str
    seed: int
    evaluator: str
    evaluator_config_hash: str
    status: EvalStatus
    attempt: int
    metrics: Mapping[str, float]
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    host: str | None
    pid: int | None

    @property
    def key(self) -> EvalKey:
        """The cache key of this record."""
        return EvalKey(self.arch_hash, self.evaluator, self.evaluator_config_hash, self.seed)

    @property
    def arch(self) -> list[dict[str, Any]]:
        """The architecture: a fresh list of NAS-Bench-101 cells (``{"matrix", "ops"}``)."""
        return json.loads(self.arch_json)


@dataclass(frozen=True)
class Claim:
    """The answer of :meth:`ResultsStore.claim`: a record and what to do with it."""

    record: EvalRecord
    outcome: ClaimOutcome

    @property
    def must_evaluate(self) -> bool:
        """True when the caller now holds the RUNNING record and must finish it."""
        return self.outcome is ClaimOutcome.ACQUIRED


def hash_config(config: Mapping[str, Any]) -> str:
    """The SHA-256 hex digest of ``config`` as canonical JSON (sorted keys, no spaces)."""
    checked_json(config, "config")  # a StoreValueError that names the config
    return json_sha256(config)


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


# -- validation --------------------------------------------------------------------------------


def check_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise StoreValueError(f"The '{name}' must be a non-empty string; got {value!r}.")


def check_key(key: Any) -> None:
    if not isinstance(key, EvalKey):
        raise StoreValueError(f"The 'key' must be an EvalKey; got {type(key).__name__} {key!r}.")


def check_id(record_id: Any) -> int:
    if isinstance(record_id, bool) or not hasattr(record_id, "__index__"):
        raise StoreValueError(
            f"A record id must be an integer; got {type(record_id).__name__} {record_id!r}."
        )
    return int(record_id)


def check_status(status: Any, where: str) -> EvalStatus:
    if isinstance(status, EvalStatus):
        return status
    if isinstance(status, str) and status in EvalStatus.__members__:
        return EvalStatus[status]
    raise StoreValueError(
        f"The 'status' of {where} must be an EvalStatus (or its name); got {status!r}."
    )


def check_finished_status(status: Any, where: str) -> EvalStatus:
    status = check_status(status, where)
    if not status.is_finished:
        raise StoreValueError(
            f"The 'status' of {where} must be COMPLETE, DIVERGED or FAILED; got {status.name}."
        )
    return status


def check_error(error: Any) -> None:
    if error is not None and not isinstance(error, str):
        raise StoreValueError(f"The 'error' must be a string or None; got {error!r}.")


def check_max_attempts(max_attempts: Any) -> None:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise StoreValueError(
            f"The 'max_attempts' parameter of claim must be an integer >= 1; got {max_attempts!r}."
        )


def check_stale_after(stale_after: Any) -> None:
    if stale_after is None:
        return
    if isinstance(stale_after, bool) or not isinstance(stale_after, (int, float)):
        raise StoreValueError(f"The 'stale_after' must be seconds or None; got {stale_after!r}.")
    if not stale_after >= 0:
        raise StoreValueError(f"The 'stale_after' must be >= 0 seconds; got {stale_after!r}.")


def checked_json(value: Any, what: str) -> str:
    """``value`` as canonical JSON text, or a StoreValueError naming ``what``."""
    try:
        return canonical_json(value)
    except (TypeError, ValueError) as err:
        raise StoreValueError(
            f"The {what} must be JSON-serialisable ({err}); got {value!r:.200}."
        ) from None


def config_differences(stored_text: str, given_text: str, limit: int = 8) -> str:
    """``"key: A != B"`` for every key where two configs (JSON) differ, nested keys dotted
    (``"supernet.epochs: 2 != 3"``)."""
    try:
        stored, given = json.loads(stored_text), json.loads(given_text)
    except ValueError:
        return "the stored config is not readable JSON"
    diffs = list(_differences(stored, given, ""))
    more = f"; and {len(diffs) - limit} more" if len(diffs) > limit else ""
    return "; ".join(diffs[:limit]) + more


_ABSENT = object()


def _differences(stored: Any, given: Any, prefix: str) -> Iterator[str]:
    if isinstance(stored, dict) and isinstance(given, dict):
        for name in sorted(set(stored) | set(given)):
            yield from _differences(stored.get(name, _ABSENT), given.get(name, _ABSENT),
                                    f"{prefix}{name}.")  # fmt: skip
    elif stored != given:

        def shown(value: Any) -> str:
            return "(absent)" if value is _ABSENT else f"{json.dumps(value, sort_keys=True):.80}"

        yield f"{prefix.rstrip('.') or 'config'}: {shown(stored)} != {shown(given)}"


def canonical_arch(arch_json: Any) -> str:
    """``arch_json`` (text or objects) as canonical JSON text, after a structural check."""
    if isinstance(arch_json, str):
        try:
            cells = json.loads(arch_json)
        except ValueError as err:
            raise StoreValueError(
                f"The 'arch_json' is not valid JSON ({err}); got {arch_json!r:.200}."
            ) from None
    else:
        cells = arch_json
    if not isinstance(cells, Sequence) or isinstance(cells, str) or not cells:
        raise StoreValueError(
            "The 'arch_json' must be a non-empty list of NAS-Bench-101 cells "
            f'({{"matrix": [[...]], "ops": [...]}}); got {arch_json!r:.200}.'
        )
    for index, cell in enumerate(cells):
        if not isinstance(cell, Mapping) or not isinstance(cell.get("matrix"), list):
            raise StoreValueError(
                f"Cell {index} of 'arch_json' must be an object with a 'matrix' list "
                f"(NAS-Bench-101 form); got {cell!r:.200}."
            )
    return checked_json(list(cells), "'arch_json'")


def check_metrics(metrics: Any) -> ReadOnlyMetrics:
    """``metrics`` as stored: a read-only ``{name: float}``, every non-finite value as NaN."""
    if not isinstance(metrics, Mapping):
        raise StoreValueError(
            f"The 'metrics' must be a mapping of names to numbers; got {type(metrics).__name__}."
        )
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not name:
            raise StoreValueError(f"A metric name must be a non-empty string; got {name!r}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise StoreValueError(
                f"The metric {name!r} must be a real number; got {type(value).__name__} "
                f"{value!r:.100}."
            ) from None
        clean[name] = number if math.isfinite(number) else math.nan  # stored as JSON null
    return ReadOnlyMetrics(clean)
