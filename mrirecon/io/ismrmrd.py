"""The ISMRMRD XML header, as fastMRI files carry it (the ``ismrmrd_header`` dataset).

Only the part of the ISMRMRD schema (namespace :data:`NAMESPACE`, schema
``ismrmrd.xsd`` of the ISMRMRD project) that fastMRI files use and fastMRI code reads is built
and parsed here::

    ismrmrdHeader
      acquisitionSystemInformation   systemVendor, systemModel, systemFieldStrength_T,
                                     receiverChannels
      experimentalConditions         H1resonanceFrequency_Hz
      encoding
        encodedSpace                 matrixSize {x, y, z}, fieldOfView_mm {x, y, z}
        reconSpace                   matrixSize {x, y, z}, fieldOfView_mm {x, y, z}
        encodingLimits               kspace_encoding_step_1 {minimum, maximum, center},
                                     kspace_encoding_step_2, slice
        trajectory                   "cartesian"
      sequenceParameters             TR, TE, TI, flipAngle_deg, sequence_type, echo_spacing

Axis naming. ISMRMRD's ``x`` is the readout and ``y`` the first phase-encode direction. In our
k-space layout ``(slices, coils, ky, kx)`` (table in :mod:`mrirecon.data`) the readout is the
row axis ``ky`` (H) and the phase-encode direction the last axis ``kx`` (W), exactly as in
fastMRI files (knee: k-space ``(slices, 640, 368)``, encoded matrix ``x = 640, y = 368``). So
``matrixSize = (x, y, z) = (H, W, 1)`` for 2-D acquisitions.

fastMRI's ``SliceDataset._retrieve_metadata`` reads ``encodedSpace/matrixSize``,
``reconSpace/matrixSize`` and ``encodingLimits/kspace_encoding_step_1/{center, maximum}`` and
computes the zero-padded phase-encode band of the k-space (see :func:`fastmri_padding`)::

    padding_left  = enc_y // 2 - center
    padding_right = padding_left + maximum + 1

:func:`build_header` defaults the limits to a fully sampled, centred acquisition
(``minimum = 0, maximum = y - 1, center = y // 2``) so that band is ``[0, y)``.
"""

from __future__ import annotations

import math
import numbers
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

from mrirecon.errors import InvalidParameterError

NAMESPACE = "http://www.ismrm.org/ISMRMRD"
#: Proton gyromagnetic ratio over 2 pi, in Hz/T (CODATA 2018): f = GAMMA_H1_HZ_PER_T * B0.
GAMMA_H1_HZ_PER_T = 42.577478518e6
#: sequenceParameters children in schema order; all but ``sequence_type`` are numeric lists.
SEQUENCE_KEYS = ("TR", "TE", "TI", "flipAngle_deg", "sequence_type", "echo_spacing")
_LIMIT_KEYS = ("minimum", "maximum", "center")

__all__ = [
    "GAMMA_H1_HZ_PER_T",
    "NAMESPACE",
    "SEQUENCE_KEYS",
    "build_header",
    "fastmri_padding",
    "parse_header",
]


def build_header(
    *,
    encoded_matrix: Sequence[int],
    encoded_fov_mm: Sequence[float],
    recon_matrix: Sequence[int] | None = None,
    recon_fov_mm: Sequence[float] | None = None,
    kspace_encoding_step_1: Sequence[int] | None = None,
    n_slices: int | None = None,
    coils: int | None = None,
    field_strength_t: float | None = None,
    larmor_hz: float | None = None,
    sequence: Mapping[str, Any] | None = None,
    vendor: str | None = None,
    model: str | None = None,
    trajectory: str = "cartesian",
) -> str:
    """An ISMRMRD XML header that fastMRI code reads like one of its own files.

    Parameters
    ----------
    encoded_matrix, encoded_fov_mm
        ``encodedSpace`` ``(x, y, z)``: matrix size (positive ints) and field of view in mm.
        For our k-space ``(slices, coils, H, W)`` that is ``(H, W, 1)`` (module docstring).
    recon_matrix, recon_fov_mm
        ``reconSpace`` ``(x, y, z)``; default: the encoded values.
    kspace_encoding_step_1
        ``(minimum, maximum, center)`` of the phase-encode lines; default
        ``(0, y - 1, y // 2)`` (fully sampled, centred).
    n_slices
        Writes ``encodingLimits/slice = (0, n_slices - 1, n_slices // 2)`` when given.
    coils, field_strength_t, vendor, model
        ``acquisitionSystemInformation`` (``receiverChannels``, ``systemFieldStrength_T``,
        ``systemVendor``, ``systemModel``); each is left out when ``None``.
    larmor_hz
        ``experimentalConditions/H1resonanceFrequency_Hz``; default ``round(gamma * B0)`` with
        :data:`GAMMA_H1_HZ_PER_T` when ``field_strength_t`` is known. The schema requires the
        element; when both are unknown it is written as ``0`` (no real resonance frequency, so
        unambiguous), which :func:`parse_header` reads back as ``None``.
    sequence
        ``sequenceParameters``: keys from :data:`SEQUENCE_KEYS`; numeric values (ms, degrees)
        may be a number or a list, ``sequence_type`` is text.
    trajectory
        ``encoding/trajectory`` (the schema requires one; fastMRI data are ``"cartesian"``).

    Returns
    -------
    str
        The XML document (``<?xml version="1.0"?>`` then the indented ``ismrmrdHeader``).

    Raises
    ------
    InvalidParameterError
        Sizes that are not three positive numbers, limits outside the matrix, unknown sequence
        keys.
    """
    enc_m = _triple(encoded_matrix, "encoded_matrix", integer=True)
    enc_f = _triple(encoded_fov_mm, "encoded_fov_mm", integer=False)
    rec_m = enc_m if recon_matrix is None else _triple(recon_matrix, "recon_matrix", integer=True)
    rec_f = enc_f if recon_fov_mm is None else _triple(recon_fov_mm, "recon_fov_mm", integer=False)
    ny = int(enc_m[1])
    limits = (0, ny - 1, ny // 2) if kspace_encoding_step_1 is None else tuple(
        int(v) for v in kspace_encoding_step_1)
    if len(limits) != 3 or not 0 <= limits[0] <= limits[2] <= limits[1] <= 65535:
        raise InvalidParameterError(
            f"kspace_encoding_step_1 must be (minimum, maximum, center) with "
            f"minimum <= center <= maximum, got {tuple(kspace_encoding_step_1 or ())}")
    if larmor_hz is None and field_strength_t is not None:
        larmor_hz = round(GAMMA_H1_HZ_PER_T * float(field_strength_t))

    root = ET.Element(_q("ismrmrdHeader"))
    system = [("systemVendor", vendor), ("systemModel", model),
              ("systemFieldStrength_T", field_strength_t), ("receiverChannels", coils)]
    if any(value is not None for _, value in system):
        node = ET.SubElement(root, _q("acquisitionSystemInformation"))
        for tag, value in system:
            if value is not None:
                _leaf(node, tag, int(value) if tag == "receiverChannels" else value)
    _leaf(ET.SubElement(root, _q("experimentalConditions")), "H1resonanceFrequency_Hz",
          0 if larmor_hz is None else int(round(float(larmor_hz))))
    encoding = ET.SubElement(root, _q("encoding"))
    for space, matrix, fov in (("encodedSpace", enc_m, enc_f), ("reconSpace", rec_m, rec_f)):
        node = ET.SubElement(encoding, _q(space))
        for group, values in (("matrixSize", matrix), ("fieldOfView_mm", fov)):
            sub = ET.SubElement(node, _q(group))
            for axis, value in zip("xyz", values, strict=True):
                _leaf(sub, axis, value)
    lims = ET.SubElement(encoding, _q("encodingLimits"))
    slices = None if n_slices is None else (0, int(n_slices) - 1, int(n_slices) // 2)
    for name, triple in (("kspace_encoding_step_1", limits), ("kspace_encoding_step_2", (0, 0, 0)),
                         ("slice", slices)):
        if triple is not None:
            sub = ET.SubElement(lims, _q(name))
            for key, value in zip(_LIMIT_KEYS, triple, strict=True):
                _leaf(sub, key, value)
    _leaf(encoding, "trajectory", trajectory)
    if sequence:
        _sequence(ET.SubElement(root, _q("sequenceParameters")), sequence)
    ET.indent(root, space="  ")
    return '<?xml version="1.0"?>\n' + ET.tostring(root, encoding="unicode",
                                                   default_namespace=NAMESPACE) + "\n"


def parse_header(xml: str | bytes) -> dict[str, Any]:
    """Read the fields :func:`build_header` writes from an ISMRMRD XML header.

    The ISMRMRD namespace is expected (fastMRI's ``et_query`` needs it); a header without any
    namespace is read too. Elements are found by path from the root, the first ``encoding``
    being used, as fastMRI does.

    Returns
    -------
    dict
        ``encoded_matrix``, ``recon_matrix`` (``(x, y, z)`` ints), ``encoded_fov_mm``,
        ``recon_fov_mm`` (``(x, y, z)`` floats), ``enc_limits`` (``{"kspace_encoding_step_1":
        {"minimum": int, "maximum": int, "center": int}, ...}`` for every limit present),
        ``field_strength_t`` (float), ``coils`` (int), ``larmor_hz`` (int; ``0`` -> ``None``),
        ``receiver_noise_bandwidth`` (float, the noise-scan filter's relative bandwidth),
        ``vendor``,
        ``model``, ``trajectory`` (str) and ``sequence`` (dict, see :func:`build_header`).
        Anything absent is ``None`` (``{}`` for the two dicts).

    Raises
    ------
    ValueError
        Not well-formed XML, a root other than ``ismrmrdHeader``, or a value of the wrong type;
        the message names the element and the value.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"ISMRMRD header is not well-formed XML ({exc})") from None
    ns = root.tag[1:].split("}")[0] if root.tag.startswith("{") else ""
    if root.tag.split("}")[-1] != "ismrmrdHeader":
        raise ValueError(f"ISMRMRD header root is <{root.tag}>, expected <ismrmrdHeader>")

    def find(path: str) -> ET.Element | None:
        return root.find("/".join(f"{{{ns}}}{p}" if ns else p for p in path.split("/")))

    def value(path: str, kind: type) -> Any:
        node = find(path)
        if node is None or node.text is None or not node.text.strip():
            return None
        return _convert(node.text.strip(), kind, path)

    def triple(path: str, kind: type) -> tuple | None:
        values = tuple(value(f"{path}/{axis}", kind) for axis in "xyz")
        return None if any(v is None for v in values) else values

    limits: dict[str, dict[str, int]] = {}
    node = find("encoding/encodingLimits")
    for child in [] if node is None else list(node):
        name = child.tag.split("}")[-1]
        entry = {k: value(f"encoding/encodingLimits/{name}/{k}", int) for k in _LIMIT_KEYS}
        limits[name] = {k: v for k, v in entry.items() if v is not None}
    sequence: dict[str, Any] = {}
    node = find("sequenceParameters")
    for child in [] if node is None else list(node):
        key, text = child.tag.split("}")[-1], (child.text or "").strip()
        if key == "sequence_type":
            sequence[key] = text
        elif key in SEQUENCE_KEYS and text:
            sequence.setdefault(key, []).append(_convert(text, float, f"sequenceParameters/{key}"))
    return {
        "encoded_matrix": triple("encoding/encodedSpace/matrixSize", int),
        "encoded_fov_mm": triple("encoding/encodedSpace/fieldOfView_mm", float),
        "recon_matrix": triple("encoding/reconSpace/matrixSize", int),
        "recon_fov_mm": triple("encoding/reconSpace/fieldOfView_mm", float),
        "enc_limits": limits,
        "field_strength_t": value("acquisitionSystemInformation/systemFieldStrength_T", float),
        "coils": value("acquisitionSystemInformation/receiverChannels", int),
        "larmor_hz": value("experimentalConditions/H1resonanceFrequency_Hz", int) or None,
        "receiver_noise_bandwidth": value(
            "acquisitionSystemInformation/relativeReceiverNoiseBandwidth", float),
        "vendor": value("acquisitionSystemInformation/systemVendor", str),
        "model": value("acquisitionSystemInformation/systemModel", str),
        "trajectory": value("encoding/trajectory", str),
        "sequence": sequence,
    }


def fastmri_padding(parsed: Mapping[str, Any]) -> tuple[int, int] | None:
    """The fastMRI ``(padding_left, padding_right)`` of a :func:`parse_header` result.

    The phase-encode columns ``[padding_left, padding_right)`` hold acquired (or acquirable)
    lines; fastMRI's mask functions zero the mask outside them. Exactly
    ``SliceDataset._retrieve_metadata``: ``left = enc_y // 2 - center``,
    ``right = left + maximum + 1``. ``None`` when the header lacks those fields.
    """
    step1 = parsed.get("enc_limits", {}).get("kspace_encoding_step_1", {})
    enc = parsed.get("encoded_matrix")
    if enc is None or "center" not in step1 or "maximum" not in step1:
        return None
    left = enc[1] // 2 - step1["center"]
    return left, left + step1["maximum"] + 1


def _q(tag: str) -> str:
    return f"{{{NAMESPACE}}}{tag}"


def _leaf(parent: ET.Element, tag: str, value: Any) -> None:
    ET.SubElement(parent, _q(tag)).text = _text(value)


def _text(value: Any) -> str:
    """Numbers as short exact text: ``140`` for 140.0, ``repr`` otherwise; strings as given."""
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _triple(values: Sequence[Any], name: str, *, integer: bool) -> tuple:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        out = ()
    if len(out) != 3 or not all(math.isfinite(v) and v > 0 for v in out) or (
            integer and not all(v.is_integer() and v <= 65535 for v in out)):
        kind = "positive integers (at most 65535)" if integer else "positive finite numbers"
        raise InvalidParameterError(f"{name} must be three {kind} (x, y, z), got {values!r}")
    return tuple(int(v) for v in out) if integer else out


def _sequence(node: ET.Element, sequence: Mapping[str, Any]) -> None:
    unknown = sorted(set(sequence) - set(SEQUENCE_KEYS))
    if unknown:
        raise InvalidParameterError(
            f"unknown sequenceParameters {unknown}; expected some of {list(SEQUENCE_KEYS)}")
    for key in SEQUENCE_KEYS:  # schema order
        value = sequence.get(key)
        if value is None:
            continue
        if key == "sequence_type":
            _leaf(node, key, str(value))
            continue
        for item in (value if isinstance(value, (list, tuple)) else [value]):
            _leaf(node, key, float(item))


def _convert(text: str, kind: type, path: str) -> Any:
    if kind is str:
        return text
    try:
        if kind is int:
            try:
                return int(text)
            except ValueError:
                number = float(text)  # "320.0" from some converters
                if not number.is_integer():
                    raise
                return int(number)
        return float(text)
    except ValueError:
        raise ValueError(
            f"ISMRMRD header element {path} is {text!r}, expected {kind.__name__}") from None
