"""``mrirecon mask``: output, --json, presets, every bad input (exit code, message, no files)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mrirecon.cli.app import app
from mrirecon.sampling import load_mask

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["mask", *map(str, args)])


def test_writes_mask_sidecar_and_png(tmp_path) -> None:
    out = tmp_path / "masks" / "knee-4x.npz"
    result = invoke("--mask-kind", "random", "--accel", 4, "--center-fraction", 0.08,
                    "--shape", 640, 368, "--seed", 0, "-o", out, "--png")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("random on 640x368: requested 4x, achieved 3.87x, 95/368 lines")
    assert result.stdout.rstrip().endswith(str(out))
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["sampled_lines"] == 95 and sidecar["seed"] == 0
    assert out.with_suffix(".png").is_file()
    assert load_mask(out).array.shape == (1, 368)


def test_json_output_is_machine_readable(tmp_path) -> None:
    result = invoke("--mask-kind", "gaussian", "--accel", 8, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["kind"] == "gaussian" and data["acceleration"] == 8
    assert data["achieved_acceleration"] == pytest.approx(8, rel=0.01)
    assert data["files"] == []


def test_show_prints_the_pattern() -> None:
    result = invoke("--preset", "knee-4x", "--show")
    pattern = "".join(result.stdout.splitlines()[:-1])
    assert len(pattern) == 368 and set(pattern) == {"|", "."}
    assert pattern.count("|") == 95


def test_preset_with_override_and_listing() -> None:
    result = invoke("--preset", "brain-4x", "--shape", 640, 396, "--json")
    data = json.loads(result.stdout)
    assert (data["kind"], data["shape"], data["preset"]) == ("equispaced", [640, 396], "brain-4x")
    listing = invoke("--list-presets")
    assert listing.exit_code == 0 and "knee-4x" in listing.stdout and "brain-8x" in listing.stdout


def test_seed_from_file_name_is_reproducible() -> None:
    a = json.loads(invoke("--seed-from", "/x/file1000.h5", "--json").stdout)
    b = json.loads(invoke("--seed-from", "/y/file1000.h5", "--json").stdout)
    c = json.loads(invoke("--seed-from", "/y/file1001.h5", "--json").stdout)
    assert a["seed"] == b["seed"] != c["seed"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--accel", "1"], 2, "acceleration must be a number > 1, got 1"),
        (["--accel", "abc"], 2, "Invalid value for '--accel'"),
        (["--center-fraction", "0"], 2, "centre fraction must be in (0, 1), got 0"),
        (["--center-fraction", "0.001"], 2, "centre fraction 0.001 gives 0 of 368 columns"),
        (["--shape", "0", "368"], 2, "shape must be two positive integers (ky kx), got (0, 368)"),
        (["--accel", "400", "--center-fraction", "0.01"], 2, "cannot be reached on 368 columns"),
        (["--mask-kind", "spiral"], 2, "Invalid value for '--mask-kind'"),
        (["--preset", "liver"], 2, "unknown mask preset 'liver'; expected one of"),
    ],
)
def test_bad_input(tmp_path, args: list[str], code: int, message: str) -> None:
    result = invoke(*args, "-o", tmp_path / "m.npz")
    assert result.exit_code == code
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_overwrite(tmp_path) -> None:
    out = tmp_path / "m.npz"
    assert invoke("-o", out).exit_code == 0
    before = out.read_bytes()
    result = invoke("--seed", 3, "-o", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {out}: output exists; pass --overwrite to replace it"
    assert out.read_bytes() == before
    assert invoke("--seed", 3, "-o", out, "--overwrite").exit_code == 0
    assert json.loads(out.with_suffix(".json").read_text())["seed"] == 3


def test_unwritable_output_directory(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("-o", blocker / "m.npz")
    assert result.exit_code == 1
    assert "cannot create output directory" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


def test_old_kind_spelling_still_works() -> None:
    """--kind is the hidden alias of --mask-kind for one release."""
    old = invoke("--kind", "equispaced", "--json")
    new = invoke("--mask-kind", "equispaced", "--json")
    assert old.exit_code == new.exit_code == 0
    assert json.loads(old.stdout) == json.loads(new.stdout)


def test_poisson_on_a_small_matrix_returns() -> None:
    """A 24x48 Poisson disc at 4x once never returned; it must finish near the requested rate."""
    done = subprocess.run([sys.executable, "-m", "mrirecon", "mask", "--mask-kind", "poisson",
                           "--accel", "4", "--shape", "24", "48", "--seed", "0", "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["achieved_acceleration"] == pytest.approx(4, rel=0.15)
