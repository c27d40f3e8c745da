"""Method names and checkpoints -> reconstructors: the library chooses, the CLI only asks.

:func:`build_reconstructor` owns every rule of the choice: a classical method or a learned
model, never both; with neither, the shipped default (the i-RIM, or with ``samples`` the cINN);
solver options only for SENSE and CS; sampling settings checked and only for a model that can
sample. A checkpoint is loaded with :func:`~mrirecon.models.checkpoint.load_checkpoint` (never
unpickled) and becomes a :class:`~mrirecon.recon.learned.LearnedReconstructor`, or a
:class:`~mrirecon.recon.posterior.PosteriorSampler` when its model is a
:class:`~mrirecon.models.protocols.SamplingModel`. sigpy and torch models are imported only when
asked for.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mrirecon.errors import InputFileError, InvalidParameterError

if TYPE_CHECKING:  # torch stays unloaded until a reconstructor is built
    from mrirecon.recon.base import Reconstructor
    from mrirecon.recon.learned import LearnedReconstructor


class Method(str, Enum):
    """Classical reconstruction methods."""

    ZERO_FILLED = "zero-filled"
    SENSE = "sense"
    CS = "cs"


#: Methods that take ``lamda`` and ``max_iter``.
SOLVER_METHODS = (Method.SENSE, Method.CS)


def build_reconstructor(method: Method | str | None = None, *, model: str | Path | None = None,
                        device: Any = "cpu", batch_size: int | None = None, amp: bool = False,
                        samples: int | None = None, temperature: float = 1.0,
                        sample_batch: int | None = None, sample_seed: int = 0,
                        lamda: float | None = None,
                        max_iter: int | None = None) -> Reconstructor:
    """The reconstructor for a classical ``method`` or a checkpoint ``model``.

    Parameters
    ----------
    method, model
        At most one of them. Neither: the shipped default i-RIM, or with ``samples`` the
        shipped cINN (:mod:`mrirecon.models.default`).
    device, batch_size, amp
        Where and how many slices at a time (``None``: by device,
        :func:`~mrirecon.device.default_batch_size`); ``amp``: bfloat16 autocast of RIM/i-RIM
        networks on CUDA.
    samples, temperature, sample_batch, sample_seed
        With ``samples``, a posterior sampler drawing that many images (a cINN checkpoint).
    lamda, max_iter
        Regularisation weight and iterations of SENSE and CS (default: their tuned values).

    Raises
    ------
    InvalidParameterError
        A combination no reconstructor can honour (one line naming the option).
    """
    sampling = samples is not None
    solver = {k: v for k, v in (("lamda", lamda), ("max_iter", max_iter)) if v is not None}
    method = None if method is None else Method(method)
    if model is not None and method is not None:
        raise InvalidParameterError(f"give --model or --method {method.value}, not both")
    if samples is not None:
        from mrirecon.recon.posterior import check_sampling

        check_sampling(samples, temperature, sample_batch)
        if method is not None:
            raise InvalidParameterError(f"--samples needs a cINN model; --method {method.value} "
                                        "cannot sample")
    elif sample_batch is not None:
        raise InvalidParameterError("--sample-batch needs --samples N")
    if solver and method not in SOLVER_METHODS:
        what = method.value if method is not None else (model or "the default model")
        raise InvalidParameterError(f"--lamda/--max-iter apply to sense and cs, not to {what}")
    if method is not None:
        return _classical(method, device=device, batch_size=batch_size, **solver)
    if model is None:
        from mrirecon.models.default import default_checkpoint, default_sampler

        model = default_sampler() if sampling else default_checkpoint()
    learned = load_reconstructor(model, device=device, batch_size=batch_size, amp=amp)
    if sampling:
        from mrirecon.recon.protocols import Sampler

        if not isinstance(learned, Sampler):
            raise InvalidParameterError(
                f"--samples needs a model that can sample (cinn.v1); {model} is {learned.name}")
        learned.configure(samples=samples, temperature=temperature, sample_batch=sample_batch,
                          seed=sample_seed)
    return learned


def _classical(method: Method, *, device: Any, batch_size: int | None,
               **params: Any) -> Reconstructor:
    if method is Method.ZERO_FILLED:
        from mrirecon.recon.zero_filled import ZeroFilled

        return ZeroFilled(device=device, batch_size=batch_size)
    from mrirecon.recon import sigpy_baselines

    cls = sigpy_baselines.SENSE if method is Method.SENSE else sigpy_baselines.CompressedSensing
    return cls(device=device, batch_size=batch_size, **params)


def load_reconstructor(path: str | Path, *, device: Any = "cpu", batch_size: int | None = None,
                       amp: bool = False) -> LearnedReconstructor:
    """A :class:`LearnedReconstructor` from a checkpoint file (safetensors; never unpickled).

    A :class:`PosteriorSampler` for a sampling model. ``path`` may name a shipped checkpoint
    (``default``, ``default-cinn``: :func:`mrirecon.models.default.resolve_model`).
    """
    from mrirecon.models.checkpoint import load_checkpoint
    from mrirecon.models.default import resolve_model
    from mrirecon.models.protocols import SamplingModel
    from mrirecon.recon.learned import LearnedReconstructor
    from mrirecon.recon.posterior import PosteriorSampler

    path = resolve_model(path)
    model, meta = load_checkpoint(path, device=device)
    cls = PosteriorSampler if isinstance(model, SamplingModel) else LearnedReconstructor
    try:
        return cls(model, str(meta.get("name", "model")), device=device, batch_size=batch_size,
                   metadata={**meta, "path": str(path)}, amp=amp)
    except InvalidParameterError as exc:  # e.g. malformed calibration metadata
        raise InputFileError(path, str(exc)) from None
