"""Benchmark scripts run in a tiny configuration on CPU and print valid JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run(script: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, str(SCRIPTS / script), *args], capture_output=True,
                         text=True, check=True, timeout=300)
    return json.loads(out.stdout)


def test_bench_models_tiny() -> None:
    data = run("bench_models.py", "--size", "32", "--steps", "2", "4", "--repeats", "1",
               "--hidden", "8")
    rows = {(r["model"], r.get("memory_free"), r["steps"]): r for r in data["results"]}
    assert len(rows) == 6 and data["machine"]["device"] == "cpu"
    free = [rows[("irim.v1", True, t)]["saved_bytes_for_backward"] for t in (2, 4)]
    plain = [rows[("rim.v1", None, t)]["saved_bytes_for_backward"] for t in (2, 4)]
    assert free[1] <= 1.1 * free[0] and plain[1] >= 1.5 * plain[0]


def test_mask_acceleration_bench_tiny() -> None:
    data = run("bench/mask_acceleration.py", "--shape", "32", "64", "--seeds", "2",
               "--accels", "4")
    kinds = {r["kind"] for r in data["results"]}
    assert {"random", "poisson", "gaussian"} <= kinds
    for r in data["results"]:
        assert r["achieved_min"] <= r["achieved_mean"] <= r["achieved_max"]
