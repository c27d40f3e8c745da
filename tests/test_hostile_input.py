"""Hostile input, one regression test per class of failure the fuzz suite found (issue 19),
plus interruption and a full disk. The whole corpus is in ``tests/fuzz/``."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from fractions import Fraction
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mrirecon.cli.app import app

runner = CliRunner()
ZF = ["--method", "zero-filled", "--device", "cpu"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_error_line(result, *names: str) -> str:
    """The one ``error:`` line of a failed command, which names one of ``names``."""
    assert result.exit_code != 0 and not isinstance(result.exception, ValueError | RuntimeError)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert any(n in errors[0] for n in names), errors[0]
    return errors[0]


@pytest.fixture
def scan(simulated_scans, tmp_path) -> Path:
    path = tmp_path / "scan.h5"
    shutil.copy(simulated_scans / "MR_small.h5", path)
    return path


def _nifti(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


def test_library_errors_become_one_line_naming_the_file(tmp_path) -> None:
    """zlib, nibabel and numpy errors once escaped as tracebacks."""
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + np.random.default_rng(0).bytes(400))
    one_error_line(invoke("info", garbage), "garbage.nii.gz")
    raw = tmp_path / "negative.nii"
    _nifti(raw, np.ones((8, 8, 2), np.float32))
    data = bytearray(raw.read_bytes())
    data[42:44] = (-8).to_bytes(2, "little", signed=True)  # dim[1] = -8
    raw.write_bytes(bytes(data))
    one_error_line(invoke("simulate", raw, "-o", tmp_path / "out"), "negative.nii")
    assert not (tmp_path / "out").exists()


def test_absurd_sizes_are_refused_before_allocation(scan, tmp_path) -> None:
    mask = tmp_path / "huge.npz"
    header = repr({"descr": "|b1", "fortran_order": False, "shape": (1 << 20, 1 << 20)})
    header = header.encode() + b" " * (63 - (len(header) + 10) % 64) + b"\n"
    with zipfile.ZipFile(mask, "w") as z:
        z.writestr("mask.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little")
                   + header)
    line = one_error_line(invoke("reconstruct", scan, "--mask", mask, "-o", tmp_path / "o", *ZF),
                          "huge.npz")
    assert "would need 1.1e+03 GB" in line
    config = tmp_path / "big.yaml"
    config.write_text(f"model: rim.v1\nmodel_config: {{hidden: 100000}}\ndevice: cpu\n"
                      f"data: {{train: [{scan}]}}\n")
    line = one_error_line(invoke("train", config, "--output", tmp_path / "run"), "big.yaml")
    assert "model_config.hidden must be an integer from 1 to 512" in line


def test_a_checkpoint_that_asks_for_a_huge_model_is_refused_at_once(scan, tiny_checkpoints,
                                                                    tmp_path) -> None:
    """A config with 10^9 steps once ran past 90 s."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from mrirecon.models.checkpoint import METADATA_KEY

    with safe_open(str(tiny_checkpoints["irim"]), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(f.metadata()[METADATA_KEY])
    meta["config"]["steps"] = 10**9
    bad = tmp_path / "long.safetensors"
    save_file(tensors, str(bad), metadata={METADATA_KEY: json.dumps(meta)})
    start = time.perf_counter()
    line = one_error_line(invoke("reconstruct", scan, "--model", bad, "-o", tmp_path / "o"),
                          "long.safetensors")
    assert "steps must be an integer from 1 to 64" in line and time.perf_counter() - start < 10


def test_non_finite_results_are_errors_not_outputs(scan, tiny_checkpoints, tmp_path) -> None:
    with h5py.File(scan, "r+") as f:
        k = f["kspace"][()]
        f["kspace"][...] = (k / np.abs(k).max() * 1e30).astype(k.dtype)
    line = one_error_line(invoke("reconstruct", scan, "-o", tmp_path / "o", *ZF), "scan.h5")
    assert "produced Inf pixels" in line or "produced NaN pixels" in line
    assert not (tmp_path / "o").exists()
    from mrirecon.models.checkpoint import load_checkpoint, save_checkpoint

    model, meta = load_checkpoint(tiny_checkpoints["irim"])
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    nan = save_checkpoint(tmp_path / "nan.safetensors", model, name=meta["name"],
                          config=meta["config"])
    line = one_error_line(invoke("reconstruct", scan, "--model", nan, "-o", tmp_path / "p"),
                          "nan.safetensors")
    assert "holds NaN or Inf" in line


def test_nonsense_geometry_is_refused_and_json_stays_json(scan, tmp_path) -> None:
    flat = _nifti(tmp_path / "flat.nii", np.ones((8, 8, 2), np.float32))
    data = bytearray(flat.read_bytes())
    data[252:256] = (0).to_bytes(2, "little") + (1).to_bytes(2, "little")  # qform 0, sform 1
    data[280:328] = bytes(48)  # srow_x, srow_y, srow_z: all zero
    flat.write_bytes(bytes(data))
    assert "singular" in one_error_line(invoke("reconstruct", flat, "-o", tmp_path / "o", *ZF),
                                        "flat.nii")
    with h5py.File(scan, "r+") as f:
        xml = f["ismrmrd_header"][()]
        xml = xml.decode() if isinstance(xml, bytes) else str(xml)
        del f["ismrmrd_header"]
        f["ismrmrd_header"] = xml.replace("<y>64</y>", "<y>0</y>", 1)
    assert "size below 1" in one_error_line(invoke("info", scan), "scan.h5")
    from mrirecon.jsonutil import strict_dumps

    assert json.loads(strict_dumps({"fov": [float("nan"), 1.0, float("inf")]})) == {
        "fov": [None, 1.0, None]}


def test_every_error_line_names_its_file(simulated_scans, tmp_path) -> None:
    one = tmp_path / "one.nii.gz"
    _nifti(one, np.ones((1, 1, 1), np.float32))
    one_error_line(invoke("reconstruct", one, "-o", tmp_path / "o", *ZF), "one.nii.gz")
    config = tmp_path / "typo.yaml"
    config.write_text("max_steps: lots\n")
    one_error_line(invoke("train", config), "typo.yaml")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    one_error_line(invoke("evaluate", bad, "--device", "cpu"), "bad.h5")  # one line, not two


def test_a_failed_training_run_leaves_nothing(simulated_scans, tmp_path) -> None:
    config = tmp_path / "tiny-crop.yaml"
    config.write_text(f"model: rim.v1\nmodel_config: {{steps: 2, hidden: 8}}\nmax_steps: 1\n"
                      f"device: cpu\ndata: {{train: [{simulated_scans / 'MR_small.h5'}], "
                      "crop: 4}\n")
    one_error_line(invoke("train", config, "--output", tmp_path / "run"), "tiny-crop.yaml")
    assert not (tmp_path / "run").exists()


def test_a_long_output_name_is_written(simulated_scans, tmp_path) -> None:
    long = tmp_path / (("x" * 240) + ".h5")
    shutil.copy(simulated_scans / "MR_small.h5", long)
    assert invoke("reconstruct", long, "-o", tmp_path / "o", *ZF).exit_code == 0
    assert (tmp_path / "o" / long.name).is_file()


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_batch_keeps_finished_outputs_and_no_temporary_files(
        simulated_scans, tmp_path, sig, code) -> None:
    inputs = []
    for i in range(4):
        inputs.append(tmp_path / f"scan{i}.h5")
        shutil.copy(simulated_scans / "example4d.h5", inputs[-1])
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "mrirecon", "reconstruct", *map(str, inputs),
                             "-o", str(out), "--method", "cs", "--max-iter", "20"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / "scan0.h5").exists():
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    done = sorted(p.name for p in out.iterdir())
    assert "scan0.h5" in done and len(done) < 4 and not [n for n in done if ".part" in n]
    for name in done:
        with h5py.File(out / name) as f:
            assert np.isfinite(f["reconstruction"][()]).all()


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_no_partial_file(simulated_scans, tmp_path) -> None:
    """A file-size limit of 64 kB (``ulimit -f``) stands in for a full disk."""
    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "mrirecon", "reconstruct",
                           str(simulated_scans / "example4d.h5"), "-o", str(out), *ZF],
                          capture_output=True, text=True, timeout=120, preexec_fn=limit,
                          env={**os.environ, "COLUMNS": "200"}, check=False)
    assert done.returncode == 1, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "example4d.h5" in errors[0] and "could not be written" in \
        errors[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not [p for p in out.rglob("*") if p.is_file()] if out.exists() else True


def test_a_nifti_declaring_a_huge_volume_says_what_it_would_need(tmp_path) -> None:
    raw = _nifti(tmp_path / "huge.nii", np.ones((8, 8, 2), np.float32))
    data = bytearray(raw.read_bytes())
    for i, n in enumerate((3, 32767, 32767, 32767)):  # dim[0..3]
        data[40 + 2 * i: 42 + 2 * i] = n.to_bytes(2, "little")
    raw.write_bytes(bytes(data))
    line = one_error_line(invoke("info", raw), "huge.nii")
    assert "would need 2.81e+05 GB" in line


def test_a_failed_resume_leaves_the_run_folder_as_it_was(simulated_scans, tmp_path) -> None:
    """Resuming from a pickled state.pt once rewrote the folder it then refused."""
    out = tmp_path / "run"
    first = invoke("train", "--model", "rim.v1", "--set", "model_config.steps=2", "--set",
                   "model_config.hidden=8", "--data", simulated_scans / "MR_small.h5",
                   "--output", out, "--max-steps", "1", "--device", "cpu")
    assert first.exit_code == 0, first.output
    torch.save({"step": 1, "payload": Fraction(1, 3)}, out / "state.pt")  # not plain data
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = invoke("train", "--resume", out, "--max-steps", "2")
    one_error_line(again, "state.pt", str(out))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
