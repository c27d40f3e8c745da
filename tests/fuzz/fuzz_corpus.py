"""A deterministic corpus of hostile inputs for every format the command line reads.

:func:`build_corpus` writes, from one seed, the cases under a folder: damaged and malformed
fastMRI HDF5, DICOM, NIfTI, mask files, checkpoints and training configs, and awkward paths.
Each :class:`Case` names the command line to run on it, the files an error line must name,
the outputs that must not change and a marker file that must never appear (it would mean code
ran from a pickle or a YAML tag). ``tests/fuzz/test_fuzz.py`` runs them and checks the contract.
"""

from __future__ import annotations

import gzip
import json
import pickle
import shutil
import struct
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

#: Where a case's command writes its outputs (relative to the case folder).
OUT = "out"


@dataclass
class Case:
    """One hostile input and the command that reads it.

    ``argv`` is the ``mrirecon`` command line with ``{dir}`` standing for the case folder;
    ``blame`` the names, any one of which an error line must contain; ``keep`` files whose
    bytes must survive; ``marker`` a file that must never be created.
    """

    name: str
    kind: str
    argv: list[str]
    blame: list[str]
    keep: list[str] = field(default_factory=list)
    marker: str | None = None
    may_succeed: bool = True

    def command(self, folder: Path) -> list[str]:
        return [a.replace("{dir}", str(folder)) for a in self.argv]


class Marker:
    """Unpickling this object creates its file: proof that a pickle was loaded."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path(self.path).touch, ())


# ----------------------------------------------------------------------------- byte damage


def truncations(data: bytes, n: int) -> Iterator[tuple[str, bytes]]:
    for i in range(n):
        cut = int(len(data) * (i + 0.5) / n)
        yield f"cut{cut}", data[:cut]


def bit_flips(data: bytes, n: int, rng: np.random.Generator, flips: int = 16
              ) -> Iterator[tuple[str, bytes]]:
    for i in range(n):
        buf = bytearray(data)
        for pos in rng.integers(0, len(buf), flips):
            buf[pos] ^= 1 << int(rng.integers(0, 8))
        yield f"flip{i}", bytes(buf)


def zero_blocks(data: bytes, n: int, rng: np.random.Generator) -> Iterator[tuple[str, bytes]]:
    for i in range(n):
        buf = bytearray(data)
        start = int(rng.integers(0, max(len(buf) - 512, 1)))
        buf[start:start + 512] = bytes(min(512, len(buf) - start))
        yield f"zeros{i}", bytes(buf)


# ----------------------------------------------------------------------------- HDF5


def _copy_h5(src: Path, dst: Path, edit: Callable[[h5py.File], None]) -> None:
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)


def _replace(name: str, value) -> Callable[[h5py.File], None]:  # type: ignore[no-untyped-def]
    def edit(f: h5py.File) -> None:
        if name in f:
            del f[name]
        f[name] = value
    return edit


def _attr(name: str, value) -> Callable[[h5py.File], None]:  # type: ignore[no-untyped-def]
    def edit(f: h5py.File) -> None:
        f.attrs[name] = value
    return edit


def _header(edit_xml: Callable[[str], str]) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        xml = f["ismrmrd_header"][()]
        xml = xml.decode() if isinstance(xml, bytes) else str(xml)
        del f["ismrmrd_header"]
        f["ismrmrd_header"] = edit_xml(xml)
    return edit


def _tag(tag: str, value: str) -> Callable[[str], str]:
    """Replace the text of every ``<tag>`` element of the header."""
    import re

    return lambda xml: re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", xml)


def h5_mutations(good: Path) -> Iterator[tuple[str, Callable[[h5py.File], None]]]:
    """Structured damage to a fastMRI k-space file."""
    with h5py.File(good) as f:
        k = f["kspace"][()]
    yield "real-kspace", _replace("kspace", k.real.astype(np.float32))
    yield "int-kspace", _replace("kspace", np.zeros(k.shape, np.int16))
    yield "rank2", _replace("kspace", k.reshape(-1, k.shape[-1])[:8])
    yield "rank5", _replace("kspace", k[None, None])
    yield "zero-slices", _replace("kspace", k[:0])
    yield "one-sample", _replace("kspace", k.reshape(-1)[:1].reshape((1,) * k.ndim))
    yield "nan", _replace("kspace", np.full_like(k, np.nan))
    yield "one-inf", _replace("kspace", np.where(np.arange(k.size).reshape(k.shape) == 5,
                                                 np.inf, k).astype(k.dtype))
    yield "huge-values", _replace("kspace", (k / np.abs(k).max() * 1e30).astype(k.dtype))
    yield "max-float", _replace("kspace", np.full_like(k, 3e38))

    def as_group(f: h5py.File) -> None:
        del f["kspace"]
        f.create_group("kspace")["data"] = k
    yield "kspace-group", as_group

    def renamed(f: h5py.File) -> None:
        f.move("kspace", "ksp")
    yield "kspace-renamed", renamed

    def nested(f: h5py.File) -> None:
        f.create_group("scan")
        f.move("kspace", "scan/kspace")
    yield "kspace-nested", nested

    def missing_link(f: h5py.File) -> None:
        del f["kspace"]
        f["kspace"] = h5py.ExternalLink("missing-file.h5", "/kspace")
    yield "external-link", missing_link

    def dangling(f: h5py.File) -> None:
        del f["kspace"]
        f["kspace"] = h5py.SoftLink("/nowhere")
    yield "soft-link", dangling
    yield "header-garbage", _replace("ismrmrd_header", "<ismrmrdHeader><oops")
    yield "header-binary", _replace("ismrmrd_header", np.frombuffer(b"\x00\xff" * 20, np.uint8))
    yield "header-none", lambda f: f.__delitem__("ismrmrd_header")
    yield "header-negative-matrix", _header(_tag("x", "-64"))
    yield "header-zero-matrix", _header(_tag("y", "0"))
    yield "header-huge-matrix", _header(_tag("x", "99999999"))
    yield "header-nan-fov", _header(_tag("z", "nan"))
    yield "header-inf-fov", _header(lambda xml: xml.replace("<fieldOfView_mm><x>",
                                                            "<fieldOfView_mm><x>inf"))
    yield "header-text-matrix", _header(_tag("y", "abc"))
    yield "mask-wrong-shape", _replace("mask", np.ones(3, bool))
    yield "mask-non-binary", _replace("mask", np.linspace(-1, 7, k.shape[-1]))
    yield "mask-3d", _replace("mask", np.ones((2, 2, k.shape[-1]), bool))
    yield "mask-empty", _replace("mask", np.zeros(k.shape[-1], bool))
    yield "mask-string", _replace("mask", "all")
    yield "target-wrong-shape", _replace(
        "reconstruction_rss" if k.ndim == 4 else "reconstruction_esc", np.ones((2, 3), np.float32))
    yield "target-nan", _replace("reconstruction_rss" if k.ndim == 4 else "reconstruction_esc",
                                 np.full((k.shape[0], 8, 8), np.nan, np.float32))
    yield "bad-json-provenance", _attr("mrirecon_provenance", "{not json")
    yield "provenance-list", _attr("mrirecon_provenance", "[1, 2]")
    yield "affine-wrong-shape", _attr("mrirecon_affine", np.ones(5))
    yield "affine-nan", _attr("mrirecon_affine", np.full((4, 4), np.nan))
    yield "affine-zero", _attr("mrirecon_affine", np.zeros((4, 4)))


# ----------------------------------------------------------------------------- DICOM


def dicom_mutations(good: Path) -> Iterator[tuple[str, Callable[[object], None]]]:
    """Edits of a pydicom dataset (applied to a fresh read of ``good``)."""
    from pydicom.uid import JPEG2000, UID

    def drop(*keywords: str) -> Callable[[object], None]:
        def edit(ds) -> None:  # type: ignore[no-untyped-def]
            for kw in keywords:
                if kw in ds:
                    delattr(ds, kw)
        return edit

    def put(keyword: str, value) -> Callable[[object], None]:  # type: ignore[no-untyped-def]
        def edit(ds) -> None:  # type: ignore[no-untyped-def]
            setattr(ds, keyword, value)
        return edit

    def raw(keyword: str, value: bytes) -> Callable[[object], None]:
        """Store ``value`` as the element's bytes, unchecked (pydicom refuses to convert it)."""
        from pydicom.datadict import dictionary_VR, tag_for_keyword
        from pydicom.dataelem import RawDataElement
        from pydicom.tag import Tag

        tag = Tag(tag_for_keyword(keyword))
        value += b" " * (len(value) % 2)

        def edit(ds) -> None:  # type: ignore[no-untyped-def]
            ds[tag] = RawDataElement(tag, dictionary_VR(tag), len(value), value, 0, False, True)
        return edit

    def truncate_pixels(ds) -> None:  # type: ignore[no-untyped-def]
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 3]

    def compressed(ds) -> None:  # type: ignore[no-untyped-def]
        from pydicom.encaps import encapsulate

        ds.file_meta.TransferSyntaxUID = JPEG2000
        ds.PixelData = encapsulate([b"\xff\x4f\xff\x51" + bytes(200)])

    yield "no-pixels", drop("PixelData")
    yield "truncated-pixels", truncate_pixels
    yield "rows-disagree", put("Rows", 1000)
    yield "columns-disagree", put("Columns", 3)
    yield "zero-rows", put("Rows", 0)
    yield "no-geometry", drop("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
    yield "text-spacing", raw("PixelSpacing", b"abc\\1")
    yield "zero-spacing", put("PixelSpacing", [0, 0])
    yield "negative-spacing", put("PixelSpacing", [-1, 1])
    yield "orientation-5", put("ImageOrientationPatient", [1, 0, 0, 0, 1])
    yield "orientation-zero", put("ImageOrientationPatient", [0, 0, 0, 0, 0, 0])
    yield "orientation-nan", raw("ImageOrientationPatient", b"nan\\0\\0\\0\\1\\0")
    yield "position-2", put("ImagePositionPatient", [0, 0])
    yield "rescale-text", raw("RescaleSlope", b"x")
    yield "rescale-zero", put("RescaleSlope", 0)
    yield "rescale-nan", raw("RescaleSlope", b"nan")
    yield "bits-zero", put("BitsAllocated", 0)
    yield "bits-odd", put("BitsAllocated", 12)
    yield "samples-3", put("SamplesPerPixel", 3)
    yield "non-image-sop", put("SOPClassUID", UID("1.2.840.10008.5.1.4.1.1.88.11"))
    yield "compressed-no-decoder", compressed
    yield "frames-lie", put("NumberOfFrames", 40)


def dicom_series_cases(good: Path, folder: Path) -> Iterator[tuple[str, Path]]:
    """Folders of several DICOM files that do not form one series."""
    import pydicom
    from pydicom.uid import generate_uid

    mixed = folder / "mixed-series"
    mixed.mkdir()
    for i in range(2):
        ds = pydicom.dcmread(good)
        ds.SeriesInstanceUID = generate_uid(entropy_srcs=[f"series{i}"])
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"sop{i}"])
        ds.save_as(mixed / f"im{i}.dcm")
    yield "mixed-series", mixed
    sizes = folder / "mixed-sizes"
    sizes.mkdir()
    for i, n in enumerate((64, 32)):
        ds = pydicom.dcmread(good)
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"size{i}"])
        ds.Rows = ds.Columns = n
        ds.PixelData = np.zeros((n, n), np.int16).tobytes()
        ds.InstanceNumber = i + 1
        ds.ImagePositionPatient = [0, 0, float(i)]
        ds.save_as(sizes / f"im{i}.dcm")
    yield "mixed-sizes", sizes
    same = folder / "same-position"
    same.mkdir()
    for i in range(2):
        ds = pydicom.dcmread(good)
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"same{i}"])
        ds.save_as(same / f"im{i}.dcm")
    yield "same-position", same


# ----------------------------------------------------------------------------- NIfTI


def nifti_cases(folder: Path, rng: np.random.Generator) -> Iterator[tuple[str, Path]]:
    """Damaged and malformed NIfTI files."""
    import nibabel as nib

    image = (rng.random((24, 20, 3)) * 100).astype(np.float32)
    good = folder / "good.nii.gz"
    nib.save(nib.Nifti1Image(image, np.diag([1.0, 1.0, 2.0, 1.0])), good)
    yield "good", good
    data = good.read_bytes()
    raw = gzip.decompress(data)
    for label, damaged in truncations(data, 8):
        path = folder / f"gz-{label}.nii.gz"
        path.write_bytes(damaged)
        yield f"gz-{label}", path
    for label, damaged in truncations(raw, 6):
        path = folder / f"raw-{label}.nii"
        path.write_bytes(damaged)
        yield f"raw-{label}", path
    for label, damaged in bit_flips(data, 6, rng):
        path = folder / f"gz-{label}.nii.gz"
        path.write_bytes(damaged)
        yield f"gz-{label}", path
    garbage = folder / "garbage.nii.gz"
    garbage.write_bytes(b"\x1f\x8b\x08\x00" + rng.bytes(400))
    yield "garbage-gzip", garbage

    def header_edit(label: str, offset: int, fmt: str, *values: float) -> Path:
        buf = bytearray(raw)
        struct.pack_into(fmt, buf, offset, *values)
        path = folder / f"{label}.nii"
        path.write_bytes(bytes(buf))
        return path

    # NIfTI-1 header: sizeof_hdr @0 (int32), dim @40 (8 x int16), datatype @70, bitpix @72,
    # pixdim @76 (8 x float32), vox_offset @108, sform code @254, srow_x/y/z @280 (12 x float32)
    yield "sizeof-hdr", header_edit("sizeof-hdr", 0, "<i", 123)
    yield "dims-bigger", header_edit("dims-bigger", 40, "<8h", 3, 240, 200, 30, 1, 1, 1, 1)
    yield "dims-huge", header_edit("dims-huge", 40, "<8h", 3, 32767, 32767, 32767, 1, 1, 1, 1)
    yield "dims-negative", header_edit("dims-negative", 40, "<8h", 3, -24, 20, 3, 1, 1, 1, 1)
    yield "dims-zero", header_edit("dims-zero", 40, "<8h", 3, 24, 0, 3, 1, 1, 1, 1)
    yield "ndim-9", header_edit("ndim-9", 40, "<h", 9)
    yield "pixdim-zero", header_edit("pixdim-zero", 76, "<4f", 1, 0, 0, 0)
    yield "pixdim-nan", header_edit("pixdim-nan", 80, "<f", float("nan"))
    yield "sform-zero", header_edit("sform-zero", 280, "<12f", *([0.0] * 12))
    yield "sform-nan", header_edit("sform-nan", 280, "<4f", *([float("nan")] * 4))
    yield "datatype-bad", header_edit("datatype-bad", 70, "<2h", 999, 8)
    yield "vox-offset-huge", header_edit("vox-offset-huge", 108, "<f", 1e12)
    five = folder / "five-d.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 2, 2, 2), np.float32), np.eye(4)), five)
    yield "five-d", five
    cplx = folder / "complex.nii.gz"
    nib.save(nib.Nifti1Image((image + 1j * image).astype(np.complex64), np.eye(4)), cplx)
    yield "complex", cplx
    singular = folder / "singular.nii.gz"  # a rank-2 sform (nibabel cannot make the qform)
    img = nib.Nifti1Image(image, None)
    img.header.set_sform(np.diag([1.0, 0.0, 1.0, 1.0]), code=1)
    img.header.set_qform(None, code=0)
    nib.save(img, singular)
    yield "singular-affine", singular
    nanimg = folder / "nan-image.nii.gz"
    nib.save(nib.Nifti1Image(np.full_like(image, np.nan), np.eye(4)), nanimg)
    yield "nan-image", nanimg
    flat = folder / "one-voxel.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((1, 1, 1), np.float32), np.eye(4)), flat)
    yield "one-voxel", flat


# ----------------------------------------------------------------------------- masks


def mask_cases(folder: Path, shape: tuple[int, int], marker: Path) -> Iterator[tuple[str, Path]]:
    """Hostile ``.npz`` mask files for ``reconstruct --mask``."""
    ky, kx = shape

    def npz(label: str, **arrays) -> Path:  # type: ignore[no-untyped-def]
        path = folder / f"{label}.npz"
        np.savez(path, **arrays)
        return path

    yield "wrong-shape", npz("wrong-shape", mask=np.ones((1, kx + 3), bool))
    yield "non-binary", npz("non-binary", mask=np.linspace(0, 5, kx)[None])
    yield "all-zero", npz("all-zero", mask=np.zeros((1, kx), bool))
    yield "rank-3", npz("rank-3", mask=np.ones((2, 2, kx), bool))
    yield "no-mask-key", npz("no-mask-key", other=np.ones((1, kx), bool))
    yield "strings", npz("strings", mask=np.array(["a"] * kx)[None])
    obj = folder / "object.npz"
    with zipfile.ZipFile(obj, "w") as z:
        z.writestr("mask.npy", _npy_header("|O", (1,)) + pickle.dumps(np.array(
            [Marker(str(marker))], dtype=object)))
    yield "object-pickle", obj
    huge = folder / "huge.npz"
    with zipfile.ZipFile(huge, "w") as z:
        z.writestr("mask.npy", _npy_header("|b1", (1 << 20, 1 << 20)) + b"\x01" * 64)
    yield "huge-declared", huge
    notzip = folder / "not-zip.npz"
    notzip.write_bytes(b"PK\x03\x04 broken" * 10)
    yield "not-zip", notzip
    empty = folder / "empty.npz"
    empty.write_bytes(b"")
    yield "empty-file", empty


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


# ----------------------------------------------------------------------------- checkpoints


def checkpoint_cases(folder: Path, good: Path, marker: Path, rng: np.random.Generator
                     ) -> Iterator[tuple[str, Path]]:
    """Damaged, foreign and out-of-range checkpoints for ``reconstruct --model``."""
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    from mrirecon.models.checkpoint import METADATA_KEY, tensor_digest

    data = good.read_bytes()
    for label, damaged in truncations(data, 6):
        path = folder / f"{label}.safetensors"
        path.write_bytes(damaged)
        yield label, path
    for label, damaged in bit_flips(data[:4096], 4, rng, flips=8):
        path = folder / f"head-{label}.safetensors"
        path.write_bytes(damaged + data[4096:])
        yield f"head-{label}", path
    pickled = folder / "pickle.safetensors"
    torch.save({"state": Marker(str(marker))}, pickled)
    yield "torch-pickle", pickled
    with safe_open(str(good), "pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        meta = json.loads(f.metadata()[METADATA_KEY])

    def write(label: str, tensors_: dict, meta_: dict | str) -> Path:  # type: ignore[type-arg]
        path = folder / f"{label}.safetensors"
        text = meta_ if isinstance(meta_, str) else json.dumps(meta_)
        save_file(tensors_, str(path), metadata={METADATA_KEY: text})
        return path

    def with_digest(tensors_: dict) -> dict:  # type: ignore[type-arg]
        return {**meta, "sha256": tensor_digest(tensors_)}

    yield "unknown-model", write("unknown-model", tensors, {**meta, "name": "unet.v9"})
    yield "metadata-not-json", write("metadata-not-json", tensors, "{oops")
    yield "metadata-list", write("metadata-list", tensors, "[1]")
    yield "no-metadata", write("no-metadata", tensors, json.dumps({}))
    first = next(iter(tensors))
    wrong = {**tensors, first: torch.zeros(3, 3)}
    yield "wrong-shape", write("wrong-shape", wrong, with_digest(wrong))
    fewer = {k: v for k, v in tensors.items() if k != first}
    yield "missing-tensor", write("missing-tensor", fewer, with_digest(fewer))
    nan = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
           for k, v in tensors.items()}
    yield "nan-weights", write("nan-weights", nan, with_digest(nan))
    inf = {k: torch.full_like(v, float("inf")) if v.is_floating_point() else v
           for k, v in tensors.items()}
    yield "inf-weights", write("inf-weights", inf, with_digest(inf))
    yield "bad-digest", write("bad-digest", tensors, {**meta, "sha256": "0" * 64})
    for key, value in (("steps", 0), ("steps", 10**9), ("hidden", -1), ("hidden", 10**7),
                       ("levels", 40), ("steps", "many")):
        label = f"config-{key}-{value}"
        config = {**meta["config"], key: value}
        yield label, write(label, tensors, {**meta, "config": config})


# ----------------------------------------------------------------------------- configs


def config_cases(folder: Path, train: Path, marker: Path) -> Iterator[tuple[str, Path]]:
    """Hostile YAML training configurations."""
    base = (f"model: rim.v1\nmodel_config: {{steps: 2, hidden: 8}}\nmax_steps: 1\n"
            f"device: cpu\ndata: {{train: [{train}], batch_size: 1}}\n")

    def yaml(label: str, text: str) -> Path:
        path = folder / f"{label}.yaml"
        path.write_text(text)
        return path

    yield "invalid-yaml", yaml("invalid-yaml", "model: [rim.v1\n  steps: :\n")
    yield "unknown-key", yaml("unknown-key", base + "optimiser: {lr: 1}\n")
    yield "wrong-type", yaml("wrong-type", base + "max_steps: lots\n")
    yield "python-tag", yaml("python-tag", base.replace(
        "max_steps: 1", f"max_steps: !!python/object/apply:pathlib.Path.touch [['{marker}']]"))
    yield "python-name", yaml("python-name", base + "seed: !!python/name:os.system\n")
    yield "lr-inf", yaml("lr-inf", base + "optim: {lr: .inf}\n")
    yield "lr-nan", yaml("lr-nan", base + "optim: {lr: .nan}\n")
    yield "batch-zero", yaml("batch-zero", base.replace("batch_size: 1", "batch_size: 0"))
    yield "crop-tiny", yaml("crop-tiny", base.replace("batch_size: 1", "batch_size: 1, crop: 4"))
    yield "missing-data", yaml("missing-data", base.replace(str(train), str(train) + "-nope"))
    yield "huge-model", yaml("huge-model", base.replace("hidden: 8", "hidden: 100000"))
    yield "huge-seed", yaml("huge-seed", base + "seed: 99999999999999999999999\n")
    yield "not-a-mapping", yaml("not-a-mapping", "- 1\n- 2\n")
    yield "empty", yaml("empty", "")
    yield "binary", yaml("binary", "\x00\x01\x02")


# ----------------------------------------------------------------------------- the corpus


def build_corpus(root: Path, scans: Path, checkpoint: Path, seed: int = 0) -> list[Case]:
    """Write every hostile input under ``root`` and return the cases that read them.

    ``scans`` holds the simulated ``MR_small.h5`` (4 coils, 64x64) and ``example4d.h5``
    (1 coil); ``checkpoint`` is a small valid model (tiny i-RIM). The libraries' warnings about
    the values written (they are meant to be wrong) are silenced.
    """
    from pydicom import config

    mode = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE  # write the invalid values
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _build(root, scans, checkpoint, seed)
    finally:
        config.settings.writing_validation_mode = mode


def _build(root: Path, scans: Path, checkpoint: Path, seed: int) -> list[Case]:
    import pydicom
    from pydicom.data import get_testdata_file

    rng = np.random.default_rng(seed)
    marker = root / "MARKER"
    cases: list[Case] = []
    zf = ["--method", "zero-filled", "--device", "cpu"]

    def out() -> list[str]:
        return ["-o", f"{{dir}}/{OUT}"]

    # HDF5: byte damage and structured damage, read by info, reconstruct and evaluate
    h5dir = root / "h5"
    h5dir.mkdir(parents=True)
    for base in ("MR_small.h5", "example4d.h5"):
        data = (scans / base).read_bytes()
        stem = base.split(".")[0]
        damaged = [*truncations(data, 14), *bit_flips(data, 24, rng), *zero_blocks(data, 10, rng)]
        for label, blob in damaged:
            path = h5dir / f"{stem}-{label}.h5"
            path.write_bytes(blob)
            cases.append(Case(f"h5/{path.name}/info", "hdf5", ["info", str(path), "--json"],
                              [path.name]))
            cases.append(Case(f"h5/{path.name}/reconstruct", "hdf5",
                              ["reconstruct", str(path), *out(), *zf], [path.name]))
        for label, edit in h5_mutations(scans / base):
            path = h5dir / f"{stem}-{label}.h5"
            _copy_h5(scans / base, path, edit)
            for command in (["info", str(path), "--json"],
                            ["reconstruct", str(path), *out(), *zf],
                            ["evaluate", str(path), "--device", "cpu", "--json"]):
                cases.append(Case(f"h5/{path.name}/{command[0]}", "hdf5", command, [path.name]))

    # DICOM: byte damage, header edits, series that are not one series
    good_dcm = Path(get_testdata_file("MR_small.dcm", download=False))
    dcmdir = root / "dicom"
    dcmdir.mkdir()
    inputs: list[Path] = []
    data = good_dcm.read_bytes()
    for label, blob in [*truncations(data, 10), *bit_flips(data, 10, rng)]:
        path = dcmdir / f"{label}.dcm"
        path.write_bytes(blob)
        inputs.append(path)
    for label, edit in dicom_mutations(good_dcm):
        ds = pydicom.dcmread(good_dcm)
        edit(ds)
        path = dcmdir / f"{label}.dcm"
        ds.save_as(path, enforce_file_format=False)
        inputs.append(path)
    inputs += [folder for _, folder in dicom_series_cases(good_dcm, dcmdir)]
    for path in inputs:
        for command in (["info", str(path), "--json"],
                        ["reconstruct", str(path), *out(), *zf],
                        ["simulate", str(path), *out(), "--coils", "2"]):
            cases.append(Case(f"dicom/{path.name}/{command[0]}", "dicom", command, [path.name]))

    # NIfTI
    niidir = root / "nifti"
    niidir.mkdir()
    for label, path in nifti_cases(niidir, rng):
        for command in (["info", str(path), "--json"],
                        ["simulate", str(path), *out(), "--coils", "2"],
                        ["reconstruct", str(path), *out(), *zf]):
            cases.append(Case(f"nifti/{label}/{command[0]}", "nifti", command, [path.name]))

    # masks, checkpoints and configs, each with a good input
    good_h5 = scans / "MR_small.h5"
    maskdir = root / "masks"
    maskdir.mkdir()
    for label, path in mask_cases(maskdir, (64, 64), marker):
        cases.append(Case(f"mask/{label}", "mask",
                          ["reconstruct", str(good_h5), "--mask", str(path), *out(), *zf],
                          [path.name], marker=str(marker)))
    ckptdir = root / "checkpoints"
    ckptdir.mkdir()
    for label, path in checkpoint_cases(ckptdir, checkpoint, marker, rng):
        cases.append(Case(f"checkpoint/{label}", "checkpoint",
                          ["reconstruct", str(good_h5), "--model", str(path), *out(),
                           "--device", "cpu"], [path.name], marker=str(marker)))
    cfgdir = root / "configs"
    cfgdir.mkdir()
    train = root / "train"
    train.mkdir()
    shutil.copy(scans / "MR_small.h5", train / "MR_small.h5")
    for label, path in config_cases(cfgdir, train, marker):
        cases.append(Case(f"config/{label}", "config",
                          ["train", str(path), "--output", f"{{dir}}/{OUT}"],
                          [path.name, "train"], marker=str(marker)))
    cases += path_cases(root, good_h5)
    return cases


def path_cases(root: Path, good: Path) -> list[Case]:
    """Awkward paths: missing, a folder for a file, an output that is a file, odd names."""
    paths = root / "paths"
    paths.mkdir()
    zf = ["--method", "zero-filled", "--device", "cpu"]
    spaced = paths / "a scan with spaces é.h5"
    shutil.copy(good, spaced)
    (paths / "empty-folder").mkdir()
    a_file = paths / "a-file"
    a_file.write_text("not a folder")
    long_dir = paths / "long"
    long_dir.mkdir()
    long_name = long_dir / (("x" * 240) + ".h5")
    shutil.copy(good, long_name)
    return [
        Case("paths/missing", "paths", ["reconstruct", str(paths / "nope.h5"), "-o",
             "{dir}/out", *zf], ["nope.h5"]),
        Case("paths/missing-info", "paths", ["info", str(paths / "nope.h5")], ["nope.h5"]),
        Case("paths/empty-folder", "paths", ["reconstruct", str(paths / "empty-folder"), "-o",
             "{dir}/out", *zf], ["empty-folder"]),
        Case("paths/output-is-a-file", "paths", ["reconstruct", str(good), "-o", str(a_file),
             *zf], ["a-file"], keep=[str(a_file)]),
        Case("paths/output-under-a-file", "paths", ["reconstruct", str(good), "-o",
             str(a_file / "sub"), *zf], ["a-file"], keep=[str(a_file)]),
        Case("paths/unicode-and-spaces", "paths", ["reconstruct", str(spaced), "-o",
             "{dir}/out dir é", *zf], [spaced.name]),
        Case("paths/long-name", "paths", ["reconstruct", str(long_name), "-o", "{dir}/out",
             *zf], [long_name.name[:40]]),
        Case("paths/simulate-missing", "paths", ["simulate", str(paths / "nope.nii.gz"), "-o",
             "{dir}/out"], ["nope.nii.gz"]),
        Case("paths/mask-output-is-folder", "paths", ["mask", "-o", str(paths / "empty-folder")],
             ["empty-folder"]),
        Case("paths/evaluate-missing", "paths", ["evaluate", str(paths / "nope.h5")],
             ["nope.h5"]),
        Case("paths/train-output-is-file", "paths", ["train", "--model", "rim.v1", "--data",
             str(good.parent), "--output", str(a_file), "--max-steps", "1", "--device", "cpu"],
             ["a-file"], keep=[str(a_file)]),
    ]
