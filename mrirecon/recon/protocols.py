"""The reconstructor contracts as types: what ``inference`` and ``evaluate`` may rely on.

:class:`~mrirecon.recon.base.Reconstructor` is the implementation base of every method; these
runtime protocols are what callers check (``isinstance``), so a reconstructor built elsewhere
(a test double, a wrapper) is accepted by its shape, and a sampler is told apart from a plain
reconstructor without ``hasattr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mrirecon.data import KSpace, Volume
    from mrirecon.recon.posterior import Posterior


@runtime_checkable
class ReconstructorProtocol(Protocol):
    """``reconstructor(kspace) -> Volume``, with a name and its domain notes."""

    name: str
    needs_coils: bool

    def __call__(self, kspace: KSpace) -> Volume:
        """Magnitude images of undersampled ``kspace`` (its mask set)."""
        ...

    def domain_notes(self, kspace: KSpace) -> list[str]:
        """How ``kspace`` lies outside what the method was made for; empty when inside."""
        ...


@runtime_checkable
class Sampler(ReconstructorProtocol, Protocol):
    """A reconstructor that also draws from the posterior (its plain call is the mean)."""

    samples: int
    seed: int
    #: The factor applied to the std maps (1 when uncalibrated).
    std_scale: float
    #: One line saying how the std maps are calibrated (or that they are not).
    calibration_note: str

    def sample(self, kspace: KSpace, *, keep_samples: bool = False) -> Posterior:
        """Mean, pixelwise standard deviation and (``keep_samples``) the draws."""
        ...

    def configure(self, **settings: Any) -> None:
        """Change the sampling settings (checked); ``None`` keeps a setting."""
        ...
