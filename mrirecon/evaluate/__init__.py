"""Evaluation: files x accelerations x methods -> tidy records -> summaries and thresholds.

Two ways in, one record format out (one dict per reconstructed volume,
:mod:`~mrirecon.evaluate.records`):

* :func:`sweep` (:mod:`~mrirecon.evaluate.sweeping`) reconstructs fully sampled inputs itself:
  each file is undersampled at every requested acceleration with the per-file mask that
  ``mrirecon reconstruct --accel R --seed S`` draws, reconstructed by every method (names, or
  reconstructors already built) and scored against its reference; it can write the volumes too.
* :func:`compare_files` (:mod:`~mrirecon.evaluate.compare`) is the equivalent of fastMRI's
  ``evaluate.py``: it scores reconstruction files already written against the targets of the
  files of the same name (read by :mod:`mrirecon.io.predictions`).

Metrics follow the fastMRI protocol (:mod:`mrirecon.metrics`): NMSE, PSNR and SSIM per volume with
the data range of the reference volume, then the mean over volumes with a 95% t-interval
(:func:`summarize_records`, :mod:`~mrirecon.evaluate.summary`). :func:`check_thresholds` turns a
summary into pass/fail lines. Posterior samplers (``cinn.v1`` checkpoints) swept with ``samples``
are also scored on how well their pixelwise standard deviation predicts their error.

No typer or rich here: the command line (:mod:`mrirecon.cli.evaluate`) is a thin layer on top and
:mod:`mrirecon.report` writes the report folder. torch is imported only when a sweep runs.
"""

from mrirecon.evaluate.calibration import CALIBRATION_PIXELS
from mrirecon.evaluate.compare import ACHIEVED_TOLERANCE, compare_files
from mrirecon.evaluate.records import CALIBRATION, METRICS, RECORD_FIELDS, Progress, SweepRecords
from mrirecon.evaluate.summary import (
    HIGHER_IS_BETTER,
    check_thresholds,
    parse_thresholds,
    summarize_records,
)
from mrirecon.evaluate.sweeping import SweepOptions, VolumeOutputs, check_sweep_options, sweep
from mrirecon.io.predictions import target_dataset

__all__ = [
    "ACHIEVED_TOLERANCE",
    "CALIBRATION",
    "CALIBRATION_PIXELS",
    "HIGHER_IS_BETTER",
    "METRICS",
    "RECORD_FIELDS",
    "Progress",
    "SweepOptions",
    "SweepRecords",
    "VolumeOutputs",
    "check_sweep_options",
    "check_thresholds",
    "compare_files",
    "parse_thresholds",
    "summarize_records",
    "sweep",
    "target_dataset",
]
