"""Shared fixtures: the devices to run on (CUDA variants skip themselves without a GPU).

Shared constants and functions are in ``helpers.py``; test modules import them from there.
"""

from __future__ import annotations

import pytest


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request: pytest.FixtureRequest) -> str:
    """Run a test on the CPU and (marked ``cuda``) on the GPU."""
    return request.param


@pytest.fixture(scope="session")
def simulated_scans(tmp_path_factory: pytest.TempPathFactory):
    """Two fully sampled fastMRI files simulated from real bundled images: ``MR_small.h5``
    (pydicom's MR_small.dcm, 4 coils, 1 slice, 64x64) and ``example4d.h5`` (nibabel's
    example4d.nii.gz, 1 coil, 24 slices, resampled to 48x48). Read-only: copy before changing."""
    from pathlib import Path

    import nibabel
    from pydicom.data import get_testdata_file

    from mrirecon.physics.simulate import SimulationParams
    from mrirecon.simulation import simulate_file

    folder = tmp_path_factory.mktemp("simulated_scans")
    simulate_file(Path(get_testdata_file("MR_small.dcm", download=False)), folder,
                  SimulationParams(coils=4))
    example = Path(nibabel.__file__).parent / "tests" / "data" / "example4d.nii.gz"
    simulate_file(example, folder, SimulationParams(coils=1), matrix=48)
    return folder


@pytest.fixture(scope="session")
def train_val_folders(simulated_scans, tmp_path_factory: pytest.TempPathFactory):
    """``train/`` and ``val/`` folders, each holding a copy of ``example4d.h5`` (1 coil)."""
    import shutil

    root = tmp_path_factory.mktemp("train_val")
    for name in ("train", "val"):
        (root / name).mkdir()
        shutil.copy(simulated_scans / "example4d.h5", root / name / "example4d.h5")
    return root


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory):
    """``{"rim", "irim", "cinn"}`` -> checkpoint paths of tiny randomly initialised models; the
    cINN's weights are moved off its identity start so that its samples vary."""
    import torch
    from helpers import TINY_MODELS

    from mrirecon.models.checkpoint import save_checkpoint
    from mrirecon.models.registry import build

    folder = tmp_path_factory.mktemp("tiny_checkpoints")
    torch.manual_seed(0)
    paths = {}
    for name, config in TINY_MODELS.items():
        model = build(name, config)
        if name == "cinn.v1":
            with torch.no_grad():
                for p in model.parameters():
                    p.add_(0.05 * torch.randn_like(p))
        short = name.split(".")[0]
        paths[short] = save_checkpoint(folder / f"{short}.safetensors", model, name=name,
                                       config=model.config)
    return paths
