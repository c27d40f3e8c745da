"""The command line: help, version, the one error path, and that --help stays light."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from mrirecon import __version__
from mrirecon.cli.app import app

runner = CliRunner()


def test_help_and_version() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "mask" in result.output
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"mrirecon {__version__}"


def test_help_does_not_import_torch() -> None:
    code = ("import sys\n"
            "from mrirecon.cli.app import main\n"
            "sys.argv = ['mrirecon', '--help']\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
            "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
            "assert 'sigpy' not in sys.modules, 'sigpy imported by --help'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_unknown_command_is_one_line_usage_error() -> None:
    result = runner.invoke(app, ["reconstrut"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No such command 'reconstrut'" in lines[0]
    assert "Traceback" not in result.output


def test_console_script_runs_as_a_real_process(tmp_path) -> None:
    exe = [sys.executable, "-m", "mrirecon"]
    ok = subprocess.run([*exe, "mask", "--preset", "knee-8x", "-o", str(tmp_path / "k8.npz")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("random on 640x368: requested 8x, achieved ")
    bad = subprocess.run([*exe, "mask", "--accel", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "error: acceleration must be a number > 1, got 1"
