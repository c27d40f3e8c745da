"""``mrirecon mask``: draw an undersampling mask, describe it, optionally save it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mrirecon.cli._console import emit_json, info
from mrirecon.sampling import (
    Mask,
    MaskKind,
    MaskSpec,
    list_presets,
    load_preset,
    make_mask,
    save_mask,
    seed_from_name,
)
from mrirecon.sampling.store import mask_outputs

DEFAULT_SHAPE = (640, 368)  # fastMRI knee k-space


def mask_command(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write NAME.npz, a NAME.json sidecar (and NAME.png)."),
    ] = None,
    kind: Annotated[
        MaskKind | None, typer.Option("--mask-kind", help="Sampling pattern "
                                      "\\[default: random].")
    ] = None,
    accel: Annotated[
        float | None, typer.Option("--accel", help="Requested acceleration (> 1) \\[default: 4].")
    ] = None,
    center_fraction: Annotated[
        float | None,
        typer.Option("--center-fraction", help="Fully sampled centre fraction "
                     "\\[default: fastMRI's 0.32 / accel, i.e. 0.08 at 4x, 0.04 at 8x]."),
    ] = None,
    shape: Annotated[
        tuple[int, int] | None,
        typer.Option("--shape", metavar="KY KX", help="k-space rows and columns "
                     "\\[default: 640 368]; 1-D kinds undersample the columns."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed \\[default: 0].")] = None,
    seed_from: Annotated[
        str | None,
        typer.Option("--seed-from", metavar="FILENAME",
                     help="Derive the seed from this file name (stable on every machine); "
                     "--seed then acts as a base seed."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="Start from a shipped preset (see --list-presets)."),
    ] = None,
    show_presets: Annotated[
        bool, typer.Option("--list-presets", help="List the shipped presets and exit.")
    ] = False,
    png: Annotated[bool, typer.Option("--png", help="Also write NAME.png.")] = False,
    show: Annotated[
        bool, typer.Option("--show", help="Print the sampling pattern as text.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace existing files.")] = False,
    old_kind: Annotated[
        MaskKind | None, typer.Option("--kind", help="The old spelling of --mask-kind; kept for "
                                      "one release.", hidden=True)
    ] = None,
) -> None:
    """Make an undersampling mask and print requested vs achieved acceleration.

    Example: mrirecon mask --mask-kind random --accel 4 --shape 640 368 --seed 0 -o knee-4x.npz
    """
    kind = kind if kind is not None else old_kind
    if show_presets:
        presets = list_presets()
        if json_out:
            emit_json(presets)
        else:
            for name, description in presets.items():
                print(f"{name:16s} {description}")
        return

    if seed_from is not None:
        seed = seed_from_name(seed_from, base_seed=seed or 0)
    if preset is not None:
        spec, _ = load_preset(preset, kind=kind, acceleration=accel,
                              center_fraction=center_fraction, shape=shape, seed=seed)
    else:
        spec = MaskSpec(
            kind=kind or MaskKind.RANDOM,
            acceleration=4.0 if accel is None else accel,
            center_fraction=center_fraction,
            shape=shape or DEFAULT_SHAPE,
            seed=0 if seed is None else seed,
        )
    if output is not None:  # fail on an existing output before spending time on the draw
        from mrirecon.fileutil import check_writable

        check_writable(mask_outputs(output, png), overwrite)

    mask = make_mask(spec)
    written = save_mask(mask, output, overwrite=overwrite, png=png) if output else []

    summary = {**mask.summary(), "preset": preset, "files": [str(p) for p in written]}
    if show:
        pattern = render_text(mask)
        (info if json_out else print)(pattern)
    if json_out:
        emit_json(summary)
    else:
        print(describe(mask) + (f" -> {written[0]}" if written else ""))


def describe(mask: Mask) -> str:
    """One line: kind, requested vs achieved acceleration, lines, centre, seed."""
    s = mask.spec
    ky, kx = s.shape
    if s.kind.is_line:
        count = f"{mask.sampled_lines}/{kx} lines ({mask.num_low_frequencies} centre)"
    else:
        count = f"{int(mask.array.sum())}/{mask.array.size} points"
    return (f"{s.kind.value} on {ky}x{kx}: requested {s.acceleration:g}x, achieved "
            f"{mask.achieved_acceleration:.2f}x, {count}, centre fraction "
            f"{s.center_fraction:g}, seed {s.seed}")


def render_text(mask: Mask, width: int = 92, height: int = 32) -> str:
    """The pattern as text.

    Line masks as a strip of columns (``|`` sampled, ``.`` not), wrapped at ``width``; 2-D
    masks as a block view with shades of sampling density.
    """
    if mask.spec.kind.is_line:
        cols = "".join("|" if c else "." for c in mask.array[0])
        return "\n".join(cols[i : i + width] for i in range(0, len(cols), width))
    full = mask.full.astype(float)
    ky, kx = full.shape
    by, bx = -(-ky // height), -(-kx // (width // 2))  # equal blocks, ceil division
    shades = " .:-=+*#%@"
    lines = []
    for r in range(0, ky, by):
        density = [full[r : r + by, c : c + bx].mean() for c in range(0, kx, bx)]
        lines.append("".join(shades[min(int(d * len(shades)), len(shades) - 1)] * 2
                             for d in density))
    return "\n".join(lines)
