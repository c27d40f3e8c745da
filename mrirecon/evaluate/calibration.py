"""How well a posterior sampler's standard deviation predicts its error, per volume and pooled.

:func:`calibrate` scores one sampled volume (:func:`mrirecon.metrics.calibration`) and adds its
pixels to the uniform subsample that the report's reliability plot bins (:func:`pool_pixels`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mrirecon.errors import MriReconError

#: Pixels kept per (sampler, acceleration) for the report's reliability plot.
CALIBRATION_PIXELS = 200_000


def calibrate(reference: np.ndarray, mean: np.ndarray, std: np.ndarray, file: str, what: str,
              pool: dict[str, Any] | None, rng: np.random.Generator
              ) -> tuple[dict[str, float], dict[str, Any]]:
    """Calibration scores of one sampled volume, and ``pool`` with its pixels added.

    Parameters
    ----------
    reference, mean, std
        The reference volume, the posterior mean and the pixelwise std, of one shape.
    file, what
        The file's name and the sampler's, for the error.
    pool, rng
        The pool so far (``None`` for none) and the generator of the subsample
        (:func:`pool_pixels`).

    Returns
    -------
    tuple
        :func:`mrirecon.metrics.calibration` of the volume, and the new pool.

    Raises
    ------
    MriReconError
        Values the calibration cannot score.
    """
    from mrirecon import metrics

    try:
        scores = metrics.calibration(reference, mean, std)
    except ValueError as exc:
        raise MriReconError(f"{file}: {what} std: {exc}") from None
    error = np.abs(np.asarray(mean, np.float64) - np.asarray(reference, np.float64))
    return scores, pool_pixels(pool, np.asarray(std, np.float32).reshape(-1),
                               error.astype(np.float32).reshape(-1), rng)


def pool_pixels(pool: dict[str, Any] | None, std: np.ndarray, error: np.ndarray,
                rng: np.random.Generator, cap: int = CALIBRATION_PIXELS) -> dict[str, Any]:
    """Merge a volume's (std, error) pixels into a uniform subsample of at most ``cap`` pixels.

    Parameters
    ----------
    pool
        ``{"std", "error", "pixels"}`` so far, or ``None``; ``pool["pixels"]`` counts the pixels
        the pool stands for.
    std, error
        The volume's pixels (1-D, paired).
    rng
        Draws the subsample: each side contributes in proportion to the pixels it stands for,
        drawn without replacement.
    cap
        Pixels kept at most.
    """
    old = pool["pixels"] if pool else 0
    total = old + std.size
    keep = min(cap, total)
    take_new = min(std.size, round(keep * std.size / total))
    new = rng.choice(std.size, take_new, replace=False) if take_new < std.size else slice(None)
    if not pool:
        return {"std": std[new], "error": error[new], "pixels": total}
    take_old = min(pool["std"].size, keep - take_new)
    kept = rng.choice(pool["std"].size, take_old, replace=False)
    return {"std": np.concatenate([pool["std"][kept], std[new]]),
            "error": np.concatenate([pool["error"][kept], error[new]]), "pixels": total}
