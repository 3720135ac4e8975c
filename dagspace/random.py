"""The one place where a ``seed`` argument becomes a random generator (no global RNG state)."""

from __future__ import annotations

import numpy as np

from dagspace.errors import InvalidSeedError

__all__ = ["SeedLike", "check_random_state", "stream_seed"]

SeedLike = int | np.random.Generator | None


def check_random_state(seed: SeedLike) -> np.random.Generator:
    """Return a ``numpy.random.Generator`` for ``seed``.

    ``seed`` may be an ``int`` (a fresh generator seeded with it), an existing ``Generator``
    (returned as is, so callers can share one stream), or ``None`` (fresh OS entropy: not
    reproducible, and therefore never the default of a public function that promises
    reproducibility).
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
        if seed is not None and int(seed) < 0:
            raise InvalidSeedError(f"The 'seed' must be a non-negative integer; got {seed}.")
        return np.random.default_rng(seed)
    raise InvalidSeedError(
        f"The 'seed' must be an int, a numpy.random.Generator or None; got {type(seed).__name__}."
    )


def stream_seed(seed: int, *keys: int) -> int:
    """An integer seed of its own for the stream ``keys`` of a study seeded ``seed`` (a repeat,
    a method, a run): independent of every other stream, so adding one leaves the others'
    numbers as they are (``SeedSequence([seed, *keys])``'s first 32-bit word)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])
