"""The one Reconstructor protocol: ``reconstructor(kspace) -> Volume``.

Every method (zero-filled, SENSE, CS and, later, learned models and posterior samplers) looks the
same to :mod:`mrirecon.inference` and :mod:`mrirecon.evaluate`. A subclass implements
:meth:`Reconstructor.reconstruct_batch` on a batch of slices as torch tensors; the base class
reads the k-space a few slices at a time (so lazy files stay lazy), moves them to the device,
crops the images to the recon matrix and returns a :class:`~mrirecon.data.Volume` with geometry,
source header and provenance.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch

from mrirecon import __version__
from mrirecon.data import KSpace, Volume
from mrirecon.errors import InvalidParameterError
from mrirecon.padding import center_crop


class Reconstructor(ABC):
    """Base class: k-space in, magnitude image volume out.

    Parameters
    ----------
    device
        Where :meth:`reconstruct_batch` runs (``torch.device`` or string).
    batch_size
        Slices per batch; ``None``: by device (:func:`~mrirecon.device.default_batch_size`).
    """

    #: Method name recorded in provenance and tables.
    name: str = "reconstructor"
    #: True if the method needs multi-coil data.
    needs_coils: bool = False

    def __init__(self, device: torch.device | str = "cpu", batch_size: int | None = None) -> None:
        from mrirecon.device import default_batch_size

        self.device = torch.device(device)
        if batch_size is None:
            batch_size = default_batch_size(self.device)
        if batch_size < 1:
            raise InvalidParameterError(f"batch size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)

    @abstractmethod
    def reconstruct_batch(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Reconstruct ``(n, coils, ky, kx)`` complex k-space (zeros where not sampled).

        ``mask`` is the ``(ky, kx)`` (or ``(1, kx)``) bool sampling mask. Returns the real
        magnitude images ``(n, ky, kx)`` on the same device.
        """

    def parameters(self) -> dict[str, Any]:
        """Settings recorded in provenance (regularisation weights, iterations, ...)."""
        return {}

    def domain_notes(self, kspace: KSpace) -> list[str]:
        """Ways ``kspace`` lies outside what this method was made for.

        Learned models check their declared training domain; empty for the classical methods.
        """
        return []

    def __call__(self, kspace: KSpace) -> Volume:
        """Reconstruct ``kspace`` batch by batch into a magnitude :class:`~mrirecon.data.Volume`."""
        if self.needs_coils and not kspace.is_multicoil:
            raise InvalidParameterError(
                f"{kspace.source or 'input'}: {self.name} needs multi-coil data, got single-coil "
                "k-space; use zero-filled or cs"
            )
        outputs, seconds = self.run_slices(kspace, self.reconstruct_batch)
        return self.volume(kspace, outputs[0], seconds)

    def run_slices(self, kspace: KSpace, fn: Any) -> tuple[list[np.ndarray], float]:
        """Apply ``fn(kspace_batch, mask)`` to the slices, ``batch_size`` at a time.

        ``fn`` returns one tensor or a tuple of tensors with the slice first and the image last,
        e.g. ``(n, y, x)`` or ``(n, samples, y, x)``; each is cropped to the recon matrix and the
        batches concatenated. Returns the arrays (float32, or complex64 for complex output) and
        the seconds spent.
        """
        mask = np.ones((1, kspace.shape[-1]), bool) if kspace.mask is None else kspace.mask
        mask_t = torch.as_tensor(np.asarray(mask, dtype=bool), device=self.device)
        size = recon_size(kspace)
        parts: list[list[np.ndarray]] = []
        start = time.perf_counter()
        for first in range(0, kspace.n_slices, self.batch_size):
            batch = kspace.slices(first, min(first + self.batch_size, kspace.n_slices))
            k = torch.as_tensor(batch)
            if self.device.type == "cuda":  # page-locked: an asynchronous host-to-device copy
                k = k.pin_memory()
            k = k.to(self.device, non_blocking=True)
            with torch.inference_mode():
                result = fn(k, mask_t)
            result = result if isinstance(result, tuple) else (result,)
            if not parts:
                parts = [[] for _ in result]
            for acc, r in zip(parts, result, strict=True):
                r = center_crop(r, size)
                acc.append((r if r.is_complex() else r.float()).cpu().numpy())
        return [np.concatenate(p) for p in parts], time.perf_counter() - start

    def volume(self, kspace: KSpace, data: np.ndarray, seconds: float,
               **provenance: Any) -> Volume:
        """``data`` ``(slices, rows, cols)`` as a Volume with the k-space's geometry and header.

        Its provenance is the k-space's plus this method's name, parameters, device, timing and
        ``provenance``.
        """
        record = {
            **kspace.provenance,
            "method": self.name,
            "parameters": self.parameters(),
            "device": str(self.device),
            "mrirecon_version": __version__,
            "seconds": round(seconds, 4),
            "seconds_per_slice": round(seconds / max(kspace.n_slices, 1), 5),
            **provenance,
        }
        ky, kx = kspace.shape[-2:]
        return Volume(data=data, affine=output_affine(kspace, (ky, kx), recon_size(kspace)),
                      header=dict(kspace.image_header), provenance=record,
                      source=kspace.source)


def recon_size(kspace: KSpace) -> tuple[int, int]:
    """The image size to return: the header's recon matrix, capped by the k-space size.

    The recon matrix ``(x, y)`` = (rows, cols); the k-space size when the header does not say.
    """
    ky, kx = kspace.shape[-2:]
    if kspace.recon_matrix is None:
        return ky, kx
    return min(int(kspace.recon_matrix[0]), ky), min(int(kspace.recon_matrix[1]), kx)


def output_affine(kspace: KSpace, full: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """Geometry of the cropped image.

    The k-space's image affine shifted by the crop offset, or, without one, a diagonal affine
    from the recon field of view (voxel = FOV / matrix).
    """
    if kspace.affine is not None:
        affine = np.array(kspace.affine, dtype=float)
        offset = np.array([0, (full[0] - size[0]) // 2, (full[1] - size[1]) // 2, 0.0])
        affine[:3, 3] = (affine @ (offset + [0, 0, 0, 1]))[:3]
        return affine
    fov = kspace.recon_fov_mm
    matrix = kspace.recon_matrix
    if fov is None or matrix is None:
        return np.eye(4)
    row_mm, col_mm = fov[0] / matrix[0], fov[1] / matrix[1]
    slice_mm = fov[2] / max(int(matrix[2]), 1)
    return np.diag([slice_mm, row_mm, col_mm, 1.0])
