"""Shared helpers of the benchmark scripts in this folder (imported as ``_common``).

* :func:`machine`: what ran the benchmark (platform, CPU model, torch and its threads, the device
  and, on CUDA, its name and memory);
* :func:`timed` / :func:`time_calls`: wall time of calls with ``torch.cuda.synchronize`` on CUDA
  before and after each, so queued kernels are counted;
* :func:`scan` and :func:`random_mask`: synthetic test input (smooth random phantom images
  simulated into coil k-space with :func:`mrirecon.physics.simulate.simulate_kspace`, and
  fastMRI's random 4x mask);
* :func:`emit`: the one JSON object on stdout and a markdown table of the results on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from mrirecon.errors import MriReconError


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device``, ``--threads`` and ``--seed``, the same in every script."""
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads [default: torch's choice]")
    parser.add_argument("--seed", type=int, default=0, help="phantom, noise and mask seed")


def setup(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads`` and return ``--device`` as a torch device.

    CUDA asked for without a GPU ends the script with one line on stderr.
    """
    from mrirecon.device import resolve_device

    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit(f"error: --threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    try:
        return resolve_device(args.device)
    except MriReconError as exc:
        raise SystemExit(f"error: {exc}") from None


def geometry(text: str) -> tuple[int, int, int]:
    """``ROWSxCOLSxCOILS`` (e.g. ``640x368x15``) as integers (an argparse ``type``)."""
    parts = text.lower().split("x")
    try:
        rows, cols, coils = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"geometry must be ROWSxCOLSxCOILS like 640x368x15, got {text!r}") from None
    if min(rows, cols, coils) < 1:
        raise argparse.ArgumentTypeError(f"geometry sizes must be >= 1, got {text!r}")
    return rows, cols, coils


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict[str, Any]:
    """The ``machine`` block of every benchmark's JSON."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": cpu_model(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        conv = getattr(getattr(torch.backends.cudnn, "conv", None), "fp32_precision", None)
        info.update(device_name=props.name, gpu_memory_bytes=int(props.total_memory),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    fp32_precision={  # "tf32" or "ieee"; "none": torch's default
                        "matmul": getattr(torch.backends.cuda.matmul, "fp32_precision", None),
                        "cudnn_conv": conv})
    return info


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds ``fn()`` takes, the device synchronised before and after."""
    import time

    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_calls(calls: Iterable[Callable[[], Any]], device: torch.device,
               max_seconds: float = math.inf) -> list[float]:
    """Seconds of each call (see :func:`timed`).

    Stops after the call that brings their sum past ``max_seconds``, so at least one call is
    always timed.
    """
    seconds: list[float] = []
    for call in calls:
        seconds.append(timed(call, device))
        if sum(seconds) > max_seconds:
            break
    return seconds


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def release_memory(device: torch.device) -> None:
    """Return cached CUDA blocks to the driver (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def reset_peak_memory(device: torch.device) -> None:
    """Start a new ``torch.cuda.max_memory_allocated`` window (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def phantom(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """A smooth random magnitude image ``(rows, cols)`` in [0, 1], float64.

    Gaussian white noise low-pass filtered to ~10 cycles per field of view, on a soft-edged
    ellipse and near zero outside it.
    """
    noise = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
    fy = torch.fft.fftfreq(rows, 1 / rows, dtype=torch.float64)[:, None]  # cycles per FOV
    fx = torch.fft.fftfreq(cols, 1 / cols, dtype=torch.float64)[None, :]
    lowpass = torch.exp(-(fy**2 + fx**2) / (2 * 10.0**2))
    field = torch.fft.ifft2(torch.fft.fft2(noise) * lowpass).real
    field = (field - field.min()) / (field.max() - field.min()).clamp_min(1e-12)
    y = torch.linspace(-1, 1, rows, dtype=torch.float64)[:, None]
    x = torch.linspace(-1, 1, cols, dtype=torch.float64)[None, :]
    support = torch.sigmoid(20 * (1 - (y / 0.85) ** 2 - (x / 0.75) ** 2))
    return support * (0.3 + 0.7 * field)


def scan(slices: int, rows: int, cols: int, coils: int, seed: int = 0
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Fully sampled synthetic k-space and its RSS target (CPU tensors).

    K-space ``(slices, coils, rows, cols)`` complex64, target ``(slices, rows, cols)`` float32.

    Each slice is its own :func:`phantom`, given a smooth phase, birdcage coil maps and 1%
    noise by :func:`mrirecon.physics.simulate.simulate_kspace` (one slice at a time, so the
    float64 intermediate stays one slice large).
    """
    from mrirecon.physics.simulate import SimulationParams, simulate_kspace

    generator = torch.Generator().manual_seed(seed)
    kspace, target = [], []
    for i in range(slices):
        image = phantom(rows, cols, generator)[None].numpy()
        k, t = simulate_kspace(image, SimulationParams(coils=coils, seed=seed + i))
        kspace.append(torch.from_numpy(k))
        target.append(torch.from_numpy(t))
    return torch.cat(kspace), torch.cat(target)


#: The undersampling of every benchmark input (fastMRI's random 4x line mask).
MASK = {"kind": "random", "acceleration": 4.0, "center_fraction": 0.08}


def random_mask(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """The :data:`MASK` for ``rows x cols`` k-space as a ``(1, cols)`` bool tensor."""
    from mrirecon.sampling import MaskSpec, make_mask

    spec = MaskSpec(**MASK, shape=(rows, cols), seed=seed)
    return torch.as_tensor(make_mask(spec).array)


def default_batch_size(device: torch.device) -> int:
    """Slices per call unless ``--batch-size`` says: 16 on CUDA, 4 on the CPU."""
    return 16 if device.type == "cuda" else 4


def progress(message: str) -> None:
    """One progress line on stderr, only when stderr is a terminal."""
    if sys.stderr.isatty():
        print(message, file=sys.stderr, flush=True)


Column = tuple[str, str] | tuple[str, str, Callable[[Any], str]]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """``rows`` as a markdown table.

    Each column is ``(key, header)`` or ``(key, header, format)``; a missing value shows as
    ``-``.
    """
    lines = ["| " + " | ".join(c[1] for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column[0])
            fmt = column[2] if len(column) > 2 and value is not None else _cell
            cells.append(fmt(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def mib(value: float) -> str:
    """Bytes as MiB for a table cell."""
    return f"{value / 2**20:.1f}"


def giga(value: float) -> str:
    """A count as billions for a table cell."""
    return f"{value / 1e9:.4g}"


def write_reports(outputs: Sequence[tuple[Any, str]], overwrite: bool) -> None:
    """Write each ``(path, text)`` that has a path, atomically (never half a report).

    An existing file is replaced only with ``overwrite``. Call
    :func:`mrirecon.fileutil.check_writable` on the paths before the work, so a refusal comes
    first.
    """
    from mrirecon.fileutil import atomic_path

    for path, text in outputs:
        if path:
            with atomic_path(Path(path), overwrite) as tmp:
                tmp.write_text(text, encoding="utf-8")


def csv_of(kind: type) -> Any:
    """An argparse ``type`` for a comma-separated list of ``kind`` (``"4,8"`` -> ``[4.0, 8.0]``)."""
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def publish(report: dict[str, Any], table: str, json_out: Any, markdown: Any,
            overwrite: bool) -> None:
    """Print ``report`` as JSON on stdout and ``table`` on stderr (or to ``markdown``).

    ``report`` goes to ``json_out`` as well, both through :func:`write_reports`.
    """
    text = json.dumps(report, indent=2)
    print(text)
    write_reports([(json_out, text + "\n"), (markdown, table)], overwrite)
    if not markdown:
        print(table, file=sys.stderr, end="")


def emit(benchmark: str, device: torch.device, settings: dict[str, Any],
         results: list[dict[str, Any]], columns: Sequence[Column], **extra: Any) -> None:
    """Print the report as JSON on stdout and its results as markdown on stderr.

    The JSON is ``{"benchmark", "machine", "settings", "results", **extra}``; the markdown
    table is followed by ``extra["notes"]`` (if any), one line each.
    """
    report = {"benchmark": benchmark, "machine": machine(device), "settings": settings,
              "results": results, **extra}
    print(json.dumps(report, indent=2))
    print(markdown_table(results, columns), file=sys.stderr)
    for note in extra.get("notes", ()):
        print(f"note: {note}", file=sys.stderr)
