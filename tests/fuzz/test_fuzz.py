"""The fuzz suite: hundreds of hostile inputs through the real command line (issue 19).

Every case of :func:`fuzz_corpus.build_corpus` runs in-process (typer's runner, a timeout each)
and a fixed sample of them also as a subprocess (the real entry point, real stderr). The
contract, checked for each:

- either a non-zero exit with one ``error:`` line that names the file, or exit 0 with valid,
  finite outputs (``--json`` strict JSON, no NaN/Inf in any image or k-space written);
- no traceback (no exception escaping the command) and no hang;
- no temporary or partial file left, nothing written by a failed command, files that existed
  before untouched;
- no marker file: nothing was unpickled and no YAML tag ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
from fuzz_corpus import OUT, Case, build_corpus
from typer.testing import CliRunner

from mrirecon.cli.app import app

pytestmark = pytest.mark.slow
SECONDS = 60  # per case; the slowest honest case (a 1-step training run) takes a few seconds
runner = CliRunner()


class Hang(Exception):
    """A case ran past :data:`SECONDS`."""


@pytest.fixture(scope="module")
def corpus(simulated_scans, tiny_checkpoints, tmp_path_factory) -> tuple[Path, list[Case]]:
    root = tmp_path_factory.mktemp("fuzz")
    return root, build_corpus(root / "inputs", simulated_scans, tiny_checkpoints["irim"])


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "missing"


def _strict_json(text: str) -> None:
    def refuse(token: str) -> None:
        raise ValueError(f"not JSON: {token}")

    json.loads(text, parse_constant=refuse)


def _finite_outputs(out: Path) -> list[str]:
    """Problems with what a successful command wrote under ``out``."""
    problems = []
    for path in sorted(out.rglob("*")) if out.exists() else []:
        name = path.name
        if name.startswith(".") and ".part" in name:
            problems.append(f"temporary file left: {path}")
        elif name.endswith(".h5"):
            with h5py.File(path) as f:
                for key in ("reconstruction", "kspace"):
                    if key in f and not np.isfinite(f[key][()]).all():
                        problems.append(f"{path.name}: {key} holds NaN or Inf")
        elif name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            image = nib.load(path)
            if not np.isfinite(np.asarray(image.dataobj)).all():
                problems.append(f"{path.name}: image holds NaN or Inf")
            if not np.isfinite(image.affine).all():
                problems.append(f"{path.name}: affine is not finite")
        elif name.endswith(".json"):
            try:
                _strict_json(path.read_text())
            except ValueError as exc:
                problems.append(f"{path.name}: {exc}")
    return problems


def check(case: Case, folder: Path, code: int, stdout: str, stderr: str,
          escaped: BaseException | None) -> list[str]:
    """What ``case`` broke of the contract (empty: nothing)."""
    problems = []
    if escaped is not None:
        problems.append(f"exception escaped: {type(escaped).__name__}: {escaped}"[:300])
    if "Traceback" in stderr:
        problems.append("traceback on stderr")
    out = folder / OUT
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    if code == 0:
        if "--json" in case.argv and stdout.strip():
            try:
                _strict_json(stdout)
            except ValueError as exc:
                problems.append(f"stdout: {exc}")
        problems += _finite_outputs(out)
    else:
        if len(errors) != 1:
            problems.append(f"{len(errors)} error lines, expected 1: {stderr.strip()[-300:]}")
        elif not any(b in errors[0] for b in case.blame):
            problems.append(f"error line names none of {case.blame}: {errors[0][:200]}")
        left = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        if left:
            problems.append(f"a failed command left files: {[p.name for p in left][:3]}")
    leftovers = [p for p in folder.rglob(".*.part*")]
    if leftovers:
        problems.append(f"temporary files left: {[p.name for p in leftovers]}")
    if case.marker and Path(case.marker).exists():
        problems.append("MARKER CREATED: code ran from the input")
    return problems


def _alarm(signum, frame):  # type: ignore[no-untyped-def]
    raise Hang(f"ran past {SECONDS} s")


def run_in_process(case: Case, folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    before = {k: _digest(Path(k)) for k in case.keep}
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS)
    try:
        with warnings.catch_warnings():  # a library's warning is not the contract's business
            warnings.simplefilter("ignore")
            result = runner.invoke(app, case.command(folder))
    except Hang as exc:  # raised outside the command (the runner itself)
        return [f"hang: {exc}"]
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    escaped = result.exception if not isinstance(result.exception, SystemExit) else None
    if isinstance(escaped, Hang):
        return [f"hang: {escaped}"]
    problems = check(case, folder, result.exit_code, result.stdout, result.stderr, escaped)
    changed = [k for k, digest in before.items() if _digest(Path(k)) != digest]
    return problems + [f"pre-existing file changed: {k}" for k in changed]


def run_subprocess(case: Case, folder: Path) -> list[str]:
    folder.mkdir(parents=True)
    try:
        done = subprocess.run([sys.executable, "-m", "mrirecon", *case.command(folder)],
                              capture_output=True, text=True, timeout=SECONDS, check=False,
                              env={**os.environ, "COLUMNS": "200"})
    except subprocess.TimeoutExpired:
        return [f"hang: ran past {SECONDS} s"]
    return check(case, folder, done.returncode, done.stdout, done.stderr, None)


def _report(failures: dict[str, list[str]]) -> str:
    return "\n".join(f"{name}: {'; '.join(p)}" for name, p in sorted(failures.items()))


KINDS = ("hdf5", "dicom", "nifti", "mask", "checkpoint", "config", "paths")


def test_the_corpus_is_large_and_covers_every_format(corpus) -> None:
    _, cases = corpus
    counts = Counter(c.kind for c in cases)
    assert set(counts) == set(KINDS)
    assert len(cases) >= 300, counts
    assert len({c.name for c in cases}) == len(cases)  # names are unique


@pytest.mark.parametrize("kind", KINDS)
def test_every_hostile_input_keeps_the_contract(corpus, kind, tmp_path) -> None:
    _, cases = corpus
    failures = {}
    for i, case in enumerate(c for c in cases if c.kind == kind):
        problems = run_in_process(case, tmp_path / f"case{i}")
        if problems:
            failures[case.name] = problems
    assert not failures, f"{len(failures)} cases broke the contract:\n{_report(failures)}"


def test_a_sample_through_the_real_entry_point(corpus, tmp_path) -> None:
    """Every 40th case as a subprocess: real stderr, real exit codes, no traceback."""
    _, cases = corpus
    failures = {}
    for i, case in enumerate(cases[::40]):
        problems = run_subprocess(case, tmp_path / f"case{i}")
        if problems:
            failures[case.name] = problems
    assert not failures, f"{len(failures)} cases broke the contract:\n{_report(failures)}"
