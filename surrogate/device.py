"""Device selection, mixed precision (CUDA only), seeded torch generators, and the intra-op
threads a job trains with on the CPU."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch

from surrogate.errors import ConfigError

__all__ = [
    "AmpPolicy",
    "amp_policy",
    "available_devices",
    "cpu_count",
    "derive_seeds",
    "job_threads",
    "resolve_device",
    "torch_generator",
    "training_threads",
]

# The intra-op threads of a job's own training on the CPU (the supernet, in the job's process;
# the candidates train in a pool of one single-threaded worker per core). Chosen from
# `dagrank bench threads` on the project's 2-core CPU (README, "Threads"): these small
# networks do not scale over threads, and on a shared machine two threads per process
# oversubscribe its cores. Fixed, not the machine's core count, so that a run's numbers do not
# depend on the machine it ran on.
CPU_TRAINING_THREADS = 1

_DEVICE_RE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def available_devices() -> tuple[str, ...]:
    """The devices this process can use, e.g. ``("cpu",)`` or ``("cpu", "cuda:0")``."""
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ("cpu", *(f"cuda:{i}" for i in range(count)))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` into a usable ``torch.device``.

    ``"auto"`` is the first CUDA device when there is one, else the CPU.

    Raises:
        ConfigError: the string is none of the above, or names a CUDA device that this machine
            does not have (the message lists what exists).
    """
    text = str(device)
    match = _DEVICE_RE.match(text)
    if match is None or (match.group(1) != "cuda" and match.group(2) is not None):
        raise ConfigError(
            "The 'device' must be 'auto', 'cpu', 'cuda' or 'cuda:N'; "
            f"got {text!r} (this machine has {', '.join(available_devices())})."
        )
    kind, index = match.group(1), match.group(2)
    cuda = torch.cuda.is_available()
    if kind == "auto":
        return torch.device("cuda:0" if cuda else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    wanted = 0 if index is None else int(index)
    count = torch.cuda.device_count() if cuda else 0
    if wanted >= count:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        raise ConfigError(
            f"The 'device' {text!r} is not available: this machine has "
            f"{', '.join(available_devices())} ({build})."
        )
    return torch.device("cuda", wanted)


@dataclass(frozen=True)
class AmpPolicy:
    """How a forward pass runs: ``dtype`` is the autocast dtype, or ``None`` for full precision.

    Mixed precision is used on CUDA only: bfloat16 where the GPU supports it (no loss scaling
    needed), else float16 with a ``GradScaler``. On the CPU the policy is always off.
    """

    device: torch.device
    dtype: torch.dtype | None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    def autocast(self) -> AbstractContextManager[object]:
        """``torch.autocast`` for this policy, or a do-nothing context when it is off."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A ``GradScaler`` that scales only under float16 (a pass-through otherwise)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.needs_scaler)


def amp_policy(device: torch.device, enabled: bool) -> AmpPolicy:
    """The mixed-precision policy for ``device``: off on the CPU or when not ``enabled``."""
    if not enabled or device.type != "cuda":
        return AmpPolicy(device, None)
    bf16 = torch.cuda.is_bf16_supported()
    return AmpPolicy(device, torch.bfloat16 if bf16 else torch.float16)


def torch_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU ``torch.Generator`` for ``seed`` (an ``int``), or ``seed`` itself if it is one.

    Every random draw of :mod:`surrogate` goes through a generator made here; nothing touches
    torch's global RNG. Draws are made on the CPU and moved to the device, so a seed gives the
    same architectures, batches and weights on any device.

    Raises:
        ConfigError: ``seed`` is not a non-negative ``int`` or a ``torch.Generator``.
    """
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(
            f"The 'seed' must be a non-negative int or a torch.Generator; got {seed!r}."
        )
    return torch.Generator().manual_seed(seed)


def derive_seeds(seed: int, count: int) -> tuple[int, ...]:
    """``count`` independent 32-bit seeds derived from ``seed`` (``numpy.random.SeedSequence``)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"The 'seed' must be a non-negative int; got {seed!r}.")
    children = np.random.SeedSequence(seed).spawn(count)
    return tuple(int(child.generate_state(1)[0]) for child in children)


def cpu_count() -> int:
    """The CPU cores this process may run on."""
    with contextlib.suppress(AttributeError):  # sched_getaffinity is Linux-only
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@contextlib.contextmanager
def job_threads() -> Iterator[int]:
    """Torch's intra-op threads set to :data:`CPU_TRAINING_THREADS` while a job runs (every
    job does: its supernet, estimators and pseudo environment train and score small networks
    in its process), restored after. Yields the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(CPU_TRAINING_THREADS)
    try:
        yield CPU_TRAINING_THREADS
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def training_threads(device: torch.device | str) -> Iterator[int | None]:
    """:func:`job_threads` while a job trains on the CPU; left alone on a GPU. Yields the
    count trained with (``None``: left alone)."""
    if torch.device(device).type != "cpu":
        yield None
        return
    with job_threads() as threads:
        yield threads
