"""Replay ``--adapt``'s early stopping with other thresholds on a recorded adaptation trace.

    python scripts/bench/adapt_replay.py TRACE_JSON [--min-gain 0,0.005,0.01,0.02,0.05]
        [--patience 3] [--json-out FILE] [--markdown FILE] [--overwrite]

``TRACE_JSON`` is what ``scripts/bench/adapt.py --trace --patience N`` wrote with a large N:
for every cell the hold-out loss of every check and the PSNR of the weights at that check
(against the fully sampled reference and, if it ran with ``--sources``, the noise-free image).
Each (min gain, patience) pair is replayed with :class:`mrirecon.train.adapt.EarlyStopping`,
the rule ``--adapt`` itself runs, so the step it would keep and that step's PSNR are read off
the trace without adapting again. A replay that had not stopped when the trace ended is marked
``truncated`` (a longer run might keep a later check). Prints one JSON document (per pair and
cell the kept step and the gains; per pair the mean and worst gain, and the cells that gain at
least 1 dB or lose more than 0.2 dB) and a markdown summary on stderr (or ``--markdown``).
All k-space in the suite is simulated from magnitude images.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import _common

from mrirecon.errors import InputFileError, MriReconError
from mrirecon.fileutil import check_writable
from mrirecon.train.adapt import AdaptOptions, EarlyStopping

SUMMARY_COLUMNS = [("min_gain", "min gain"), ("patience", "patience"), ("changed", "changed"),
                   ("mean_gain_db", "mean gain dB"), ("worst_gain_db", "worst gain dB"),
                   ("at_least_1db", ">= +1 dB"), ("below_minus_0_2db", "< -0.2 dB")]


def traced_cells(path: Path) -> list[dict[str, Any]]:
    """The rows of ``path`` (an ``adapt.py --trace`` report) that carry a trace."""
    if not path.is_file():
        raise InputFileError(path, "file not found")
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"not a readable JSON report ({exc})") from None
    cells = [r for r in report.get("results", []) if isinstance(r, dict) and r.get("trace")]
    if report.get("benchmark") != "adapt" or not cells:
        raise InputFileError(path, "no traced cells: write it with scripts/bench/adapt.py "
                             "--trace")
    return cells


def replay(trace: list[dict[str, Any]], min_gain: float, patience: int) -> dict[str, Any]:
    """The check the rule keeps on ``trace`` (step 0 first) and whether the trace ran out."""
    rule = EarlyStopping(trace[0]["holdout_loss"], min_gain, patience)
    kept = trace[0]
    for check in trace[1:]:
        if rule.update(check["step"], check["holdout_loss"]):
            kept = check
        if rule.done:
            return {"kept": kept, "truncated": False}
    return {"kept": kept, "truncated": True}


def _gain(kept: dict[str, Any], given: dict[str, Any], key: str) -> float | None:
    return round(kept[key] - given[key], 3) if key in kept and key in given else None


def summarise(gains: list[float]) -> dict[str, Any]:
    """Mean, worst and counts of a list of per-cell gains (dB)."""
    return {"mean_gain_db": round(sum(gains) / len(gains), 3), "worst_gain_db": min(gains),
            "at_least_1db": sum(g >= 1.0 for g in gains),
            "below_minus_0_2db": sum(g < -0.2 for g in gains)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path, help="an adapt.py --trace JSON report")
    parser.add_argument("--min-gain", type=_common.csv_of(float),
                        default=[0.0, 0.005, 0.01, 0.02, 0.05])
    parser.add_argument("--patience", type=_common.csv_of(int),
                        default=[AdaptOptions(steps=1).patience])
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="the markdown here, not on stderr")
    parser.add_argument("--overwrite", action="store_true", help="replace --json-out/--markdown")
    args = parser.parse_args(argv)
    check_writable([p for p in (args.json_out, args.markdown) if p], args.overwrite)
    cells = traced_cells(args.trace)
    clean = all("psnr_clean" in c for cell in cells for c in cell["trace"])
    runs, summary = [], []
    for min_gain in args.min_gain:
        for patience in args.patience:
            AdaptOptions(steps=1, min_gain=min_gain, patience=patience)  # the same checks
            rows = []
            for cell in cells:
                given, result = cell["trace"][0], replay(cell["trace"], min_gain, patience)
                kept = result["kept"]
                rows.append({"domain": cell["domain"], "coils": cell["coils"], "R": cell["R"],
                             "kept_step": kept["step"], "truncated": result["truncated"],
                             "gain_db": _gain(kept, given, "psnr"),
                             "gain_clean_db": _gain(kept, given, "psnr_clean")})
            line = {"min_gain": min_gain, "patience": patience,
                    "changed": sum(r["kept_step"] > 0 for r in rows),
                    **summarise([r["gain_db"] for r in rows])}
            if clean:
                line |= {f"{k}_clean": v for k, v in
                         summarise([r["gain_clean_db"] for r in rows]).items()}
            summary.append(line)
            runs.append({"min_gain": min_gain, "patience": patience, "cells": rows})
    report = {"benchmark": "adapt_replay", "trace": str(args.trace), "runs": runs,
              "summary": summary,
              "notes": ["replayed on recorded checks; all k-space in the suite is simulated "
                        "from magnitude images"]}
    columns = SUMMARY_COLUMNS + ([(f"{k}_clean", f"{h}, noise-free") for k, h in
                                  SUMMARY_COLUMNS[3:]] if clean else [])
    table = _common.markdown_table(summary, columns) + "\n"
    _common.publish(report, table, args.json_out, args.markdown, args.overwrite)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MriReconError as exc:  # an expected failure (a file, a setting): one line
        raise SystemExit(f"error: {exc}") from None
