"""The evaluation report folder: tables (CSV, JSON), metric-vs-acceleration plots, image panels.

Files (deterministic names, see :func:`report_files`)::

    records.csv, records.json      one row per reconstructed volume (mrirecon.evaluate records)
    summary.csv, summary.json      one row per (method, acceleration): means and 95% CIs
    psnr_vs_acceleration.png       one line per method, error bars = 95% CI of the mean
    ssim_vs_acceleration.png
    panel_R<accel>.png             target | zero-filled | each method | |error| of the best method
    calibration.png                posterior samplers only: RMS error against predicted std in
                                   quantile bins of the std, one curve per (sampler, R), y = x

Every path is checked (:func:`~mrirecon.fileutil.check_writable`) before anything is written, and
all files are written to temporary names and renamed only once every one of them has been
rendered, so a failure leaves the folder as it was. This is the only module that imports
matplotlib, inside the functions that draw (Agg canvas, no pyplot, no global backend change); when
matplotlib is missing the tables are still written and :func:`plots_available` says why not.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrirecon import __version__
from mrirecon.fileutil import atomic_path, check_writable
from mrirecon.jsonutil import json_safe, strict_dumps

TABLES = ("records.csv", "records.json", "summary.csv", "summary.json")
PLOTS = ("psnr_vs_acceleration.png", "ssim_vs_acceleration.png")
CALIBRATION_PLOT = "calibration.png"
#: Quantile bins of the predicted std in the calibration plot.
CALIBRATION_BINS = 10
#: The |error| image is shown on the images' grey scale, amplified by this factor.
ERROR_GAIN = 5.0
PROTOCOL = ("fastMRI protocol: per-volume NMSE, PSNR and SSIM (7x7 window, K1=0.01, K2=0.03) with "
            "data range = max of the reference volume; mean over volumes with a 95% t-interval")


def plots_available() -> bool:
    """True if matplotlib can be imported (the plots and panels need it)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def panel_name(acceleration: float) -> str:
    """``panel_R4.png``, ``panel_R2.5.png``."""
    return f"panel_R{acceleration:g}.png"


def report_files(out_dir: str | Path, panel_accelerations: Sequence[float] = (), *,
                 plots: bool = True, calibration: bool = False) -> list[Path]:
    """Every file :func:`write_report` will write into ``out_dir``, for checking up front.

    ``calibration``: the records will carry calibration keys (a sweep with ``samples``), so
    :data:`CALIBRATION_PLOT` is written too (with ``plots``).
    """
    out = Path(out_dir)
    names = list(TABLES)
    if plots:
        names += [*PLOTS, *(panel_name(a) for a in panel_accelerations)]
        if calibration:
            names.append(CALIBRATION_PLOT)
    return [out / n for n in names]


def has_calibration(records: Sequence[Mapping[str, Any]]) -> bool:
    """True if any record carries the calibration of a posterior sampler's std."""
    from mrirecon.evaluate import CALIBRATION

    return any(key in r for r in records for key in CALIBRATION)


def write_report(out_dir: str | Path, records: Sequence[Mapping[str, Any]],
                 summary: Sequence[Mapping[str, Any]], *,
                 panels: Mapping[float, Mapping[str, np.ndarray]] | None = None,
                 panel_file: str | None = None, notes: Sequence[str] = (),
                 calibration_pixels: Mapping[tuple[str, float], Mapping[str, Any]] | None = None,
                 overwrite: bool = False) -> list[Path]:
    """Write the report folder; returns the files written.

    Parameters
    ----------
    out_dir
        The report folder (made if missing); the files are :func:`report_files`.
    records, summary
        From :func:`mrirecon.evaluate.sweep` / :func:`~mrirecon.evaluate.compare_files` and
        :func:`~mrirecon.evaluate.summarize_records`.
    panels, panel_file
        :attr:`mrirecon.evaluate.SweepRecords.panels` and ``panel_file``: one panel per
        acceleration (none in files mode).
    notes
        One-line notes stored in ``summary.json`` (e.g. skipped methods).
    calibration_pixels
        :attr:`mrirecon.evaluate.SweepRecords.calibration_pixels`: the per-pixel std and error
        the calibration plot bins. The plot is written when the records carry calibration keys
        (:func:`has_calibration`); a (sampler, R) without pixels has no curve.
    overwrite
        Replace existing report files; otherwise an existing one is an
        :class:`~mrirecon.errors.OutputError` raised before anything is written.

    Non-finite values (the infinite PSNR of a perfect reconstruction) are written as empty CSV
    cells and JSON ``null``. Plots and panels are skipped when matplotlib is missing.
    """
    out = Path(out_dir)
    plots = plots_available()
    panels = dict(panels or {})
    calibrated = has_calibration(records)
    paths = report_files(out, list(panels), plots=plots, calibration=calibrated)
    check_writable(paths, overwrite)
    writers: dict[str, Any] = {
        "records.csv": lambda p: _write_csv(p, records),
        "records.json": lambda p: _write_json(p, list(records)),
        "summary.csv": lambda p: _write_csv(p, summary),
        "summary.json": lambda p: _write_json(p, {
            "mrirecon_version": __version__, "metrics": PROTOCOL, "notes": list(notes),
            "summary": list(summary)}),
    }
    if plots:
        for metric, name in zip(("psnr", "ssim"), PLOTS, strict=True):
            writers[name] = lambda p, m=metric: plot_metric(summary, m, p)
        for accel, images in panels.items():
            scores = {r["method"]: r for r in records
                      if r["file"] == panel_file and r.get("acceleration") == accel}
            writers[panel_name(accel)] = lambda p, a=accel, i=images, s=scores: draw_panel(
                i, s, p, title=f"{panel_file or ''}  R={a:g}, middle slice")
        if calibrated:
            writers[CALIBRATION_PLOT] = lambda p: plot_calibration(calibration_pixels or {}, p)
    with contextlib.ExitStack() as stack:  # renames happen only if every file was written
        for path in paths:
            tmp = stack.enter_context(atomic_path(path, overwrite))
            writers[path.name](tmp)
    return paths


# --- tables -----------------------------------------------------------------------------------


def _write_json(path: Path, data: Any) -> None:
    path.write_text(strict_dumps(data, indent=2) + "\n")


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None else v for k, v in json_safe(dict(row)).items()})


# --- plots and panels (matplotlib, imported here only) -------------------------------------


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_metric(summary: Sequence[Mapping[str, Any]], metric: str, path: str | Path) -> None:
    """``<metric>`` mean against acceleration, one line per method, error bars = 95% CI."""
    fig = _figure(5.5, 4.0)
    ax = fig.add_subplot()
    rows = [r for r in summary if r.get("acceleration") is not None]
    for method in dict.fromkeys(r["method"] for r in rows):
        group = sorted((r for r in rows if r["method"] == method),
                       key=lambda r: r["acceleration"])
        x = [r["acceleration"] for r in group]
        y = np.array([r[f"{metric}_mean"] for r in group], dtype=float)
        low = np.array([r[f"{metric}_ci95_low"] for r in group], dtype=float)
        high = np.array([r[f"{metric}_ci95_high"] for r in group], dtype=float)
        err = np.nan_to_num(np.stack([y - low, high - y]), nan=0.0, posinf=0.0, neginf=0.0)
        ax.errorbar(x, np.where(np.isfinite(y), y, np.nan), yerr=err, marker="o", capsize=3,
                    label=method)
    if not rows:
        ax.text(0.5, 0.5, "no acceleration recorded", ha="center", va="center",
                transform=ax.transAxes)
    else:
        ticks = sorted({float(r["acceleration"]) for r in rows})
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.legend()
    ax.set_xlabel("acceleration R")
    ax.set_ylabel({"psnr": "PSNR (dB)", "ssim": "SSIM"}.get(metric, metric.upper()))
    ax.set_title(f"{metric.upper()} vs acceleration (mean, 95% CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def draw_panel(images: Mapping[str, np.ndarray], scores: Mapping[str, Mapping[str, Any]],
               path: str | Path, *, title: str = "") -> None:
    """Target | zero-filled | each method | |error| of the best method, one grey scale.

    ``images`` maps ``"target"``, ``"zero-filled"`` and method names to 2-D images; ``scores``
    maps method names to their records (PSNR/SSIM in the titles; the best PSNR picks the error
    image). All images share ``vmin = 0``, ``vmax = max(target)``; the error is shown on that
    scale amplified by :data:`ERROR_GAIN` (``vmax = max(target) / ERROR_GAIN``), with a colour
    bar in the target's units.
    """
    target = np.asarray(images["target"], dtype=np.float32)
    methods = ["zero-filled", *(m for m in images if m not in ("target", "zero-filled"))]
    scored = [m for m in methods if m in scores]
    best = max(scored, key=lambda m: scores[m]["psnr"]) if scored else methods[-1]
    tiles: list[tuple[str, np.ndarray]] = [("target", target)]
    for m in methods:
        label = m if m not in scores else (f"{m}\n{scores[m]['psnr']:.2f} dB, "
                                           f"SSIM {scores[m]['ssim']:.3f}")
        tiles.append((label, np.asarray(images[m], dtype=np.float32)))
    error = np.abs(target - np.asarray(images[best], dtype=np.float32))
    tiles.append((f"|error| x{ERROR_GAIN:g}\n{best}", error))
    vmax = float(target.max()) or 1.0
    fig = _figure(2.4 * len(tiles) + 0.6, 2.9)
    for i, (label, image) in enumerate(tiles):
        ax = fig.add_subplot(1, len(tiles), i + 1)
        last = i == len(tiles) - 1
        shown = ax.imshow(image, cmap="gray", vmin=0.0,
                          vmax=vmax / ERROR_GAIN if last else vmax, interpolation="nearest")
        ax.set_title(label, fontsize=9)
        ax.set_axis_off()
        if last:  # the error's scale, in the target's units (not amplified)
            bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
            bar.set_label("|error| (target units)", fontsize=8)
            bar.ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.92 if title else 1))
    fig.savefig(path, format="png")


def plot_calibration(pixels: Mapping[tuple[str, float], Mapping[str, Any]], path: str | Path, *,
                     bins: int = CALIBRATION_BINS) -> None:
    """Reliability diagram and coverage: how well the predicted std matches the error.

    ``pixels`` maps ``(method, acceleration)`` to ``{"std": array, "error": array}`` (the
    per-pixel predicted std and ``|mean - reference|``, plus ``std_scale`` when the sampler's
    std was calibrated by that factor). Left: RMS error against mean predicted std in ``bins``
    quantile bins of the std (:func:`mrirecon.metrics.reliability_curve`); a calibrated
    uncertainty follows ``y = x``, points above it are over-confident. Right: the fraction of
    pixels within 1, 2 and 3 std against the Gaussian 68.3 / 95.4 / 99.7%, after calibration
    (filled) and before it (hollow, the std divided by ``std_scale``).
    """
    from mrirecon.metrics import GAUSSIAN_COVERAGE, reliability_curve

    fig = _figure(10.0, 4.5)
    ax, cov = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    top = 0.0
    ks = np.array([1, 2, 3])
    for (method, accel), group in sorted(pixels.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        std, error = np.asarray(group["std"]), np.asarray(group["error"])
        if std.size == 0:
            continue
        x, y = reliability_curve(std, error, bins)
        line, = ax.plot(x, y, marker="o", label=f"{method}, R={accel:g}")
        top = max(top, float(np.max(x)), float(np.max(y)))
        cov.plot(ks, [np.mean(error <= k * std) for k in ks], marker="o",
                 color=line.get_color(), label=f"{method}, R={accel:g}")
        scale = group.get("std_scale")
        if scale:
            cov.plot(ks, [np.mean(error <= k * std / scale) for k in ks], marker="o",
                     linestyle=":", markerfacecolor="none", color=line.get_color(),
                     label=f"{method}, R={accel:g}, before calibration")
    if top > 0:
        ax.plot([0, top], [0, top], "k--", linewidth=1, label="y = x (calibrated)")
        ax.legend(fontsize=8)
        cov.plot(ks, [GAUSSIAN_COVERAGE[k] for k in ks], "k--", linewidth=1, label="Gaussian")
        cov.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no pixel samples", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("predicted std (mean per bin)")
    ax.set_ylabel("RMS error of the posterior mean per bin")
    ax.set_title(f"Calibration ({bins} quantile bins of the predicted std)")
    ax.grid(alpha=0.3)
    cov.set_xticks(ks, [f"{k} std" for k in ks])
    cov.set_ylabel("fraction of pixels with |error| <= k std")
    cov.set_title("Coverage")
    cov.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")


def uncertainty_figure(mean: np.ndarray, std: np.ndarray, reference: np.ndarray | None,
                       note: str) -> bytes:
    """PNG of the middle slice: target (if known) | mean | std | |error|, with colour bars.

    Target and mean share one grey scale (0 to the target's, else the mean's, 99.5th
    percentile); std and |error| share one colour scale (0 to twice the 99.5th percentile of the
    std), so the uncertainty map and the error it should track can be compared. The bars are in
    the image's own units (those of the mean); the title says ``note``: whether and how the std
    map is calibrated.

    Parameters
    ----------
    mean, std
        The posterior mean and std volumes ``(slices, rows, cols)``.
    reference
        The fully sampled reference of the same shape, or ``None``.
    note
        How the std is calibrated (e.g. the sampler's ``calibration_note``).
    """
    import io

    i = mean.shape[0] // 2
    m, s = np.asarray(mean[i], np.float64), np.asarray(std[i], np.float64)
    tiles: list[tuple[str, np.ndarray, str]] = [("posterior mean", m, "gray"),
                                                ("posterior std", s, "magma")]
    if reference is not None and reference.shape == mean.shape:
        r = np.asarray(reference[i], np.float64)
        tiles = [("target", r, "gray"), tiles[0], tiles[1], ("|mean - target|", np.abs(m - r),
                                                              "magma")]
    top = float(np.percentile(tiles[0][1], 99.5)) or 1.0
    top_s = 2 * float(np.percentile(s, 99.5)) or 1.0
    fig = _figure(3.0 * len(tiles), 3.6)
    for k, (title, image, cmap) in enumerate(tiles):
        ax = fig.add_subplot(1, len(tiles), k + 1)
        shown = ax.imshow(image, cmap=cmap, vmin=0, vmax=top if cmap == "gray" else top_s)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
        bar = fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        bar.ax.tick_params(labelsize=7)
        bar.set_label("image units", fontsize=7)
    fig.suptitle(f"slice {i}; std {note}", fontsize=9)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
