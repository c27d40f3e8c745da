"""The ISMRMRD XML header: what we build is what fastMRI's ``SliceDataset`` reads."""

from __future__ import annotations

import xml.etree.ElementTree as etree

import pytest

from mrirecon.errors import InvalidParameterError
from mrirecon.io.ismrmrd import (
    NAMESPACE,
    build_header,
    fastmri_padding,
    parse_header,
)

# A header in the shape of a fastMRI knee file (multi-coil, 640 x 368 encoded, 320 x 320 recon,
# partial phase-encode coverage), written by hand with elements we neither build nor read.
KNEE_LIKE = """<?xml version="1.0" encoding="utf-8"?>
<ismrmrdHeader xmlns="http://www.ismrm.org/ISMRMRD"
               xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <studyInformation><studyTime>10:00:00</studyTime></studyInformation>
  <acquisitionSystemInformation>
    <systemVendor>SIEMENS</systemVendor><systemModel>Skyra</systemModel>
    <systemFieldStrength_T>2.89362</systemFieldStrength_T>
    <relativeReceiverNoiseBandwidth>0.793</relativeReceiverNoiseBandwidth>
    <receiverChannels>15</receiverChannels>
  </acquisitionSystemInformation>
  <experimentalConditions><H1resonanceFrequency_Hz>123251815</H1resonanceFrequency_Hz>
  </experimentalConditions>
  <encoding>
    <encodedSpace><matrixSize><x>640</x><y>368</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>280</x><y>161</y><z>4.5</z></fieldOfView_mm></encodedSpace>
    <reconSpace><matrixSize><x>320</x><y>320</y><z>1</z></matrixSize>
      <fieldOfView_mm><x>140</x><y>140</y><z>3</z></fieldOfView_mm></reconSpace>
    <encodingLimits>
      <kspace_encoding_step_1><minimum>0</minimum><maximum>366</maximum><center>185</center>
      </kspace_encoding_step_1>
      <slice><minimum>0</minimum><maximum>34</maximum><center>17</center></slice>
    </encodingLimits>
    <trajectory>cartesian</trajectory>
  </encoding>
  <sequenceParameters><TR>2750</TR><TE>27</TE><TI>100</TI><flipAngle_deg>140</flipAngle_deg>
    <sequence_type>TurboSpinEcho</sequence_type></sequenceParameters>
</ismrmrdHeader>
"""


def et_query(root: etree.Element, qlist: list[str], namespace: str = NAMESPACE) -> str:
    """fastMRI's ``mri_data.et_query``, restated: nested ``//`` searches in the namespace."""
    s, prefix = ".", "ismrmrd_namespace"
    for el in qlist:
        s += f"//{prefix}:{el}"
    return root.find(s, {prefix: namespace}).text


def fastmri_metadata(xml: str | bytes) -> dict:
    """fastMRI's ``SliceDataset._retrieve_metadata`` on a header, restated with xml.etree."""
    root = etree.fromstring(xml)
    enc, rec = ["encoding", "encodedSpace", "matrixSize"], ["encoding", "reconSpace", "matrixSize"]
    enc_size = tuple(int(et_query(root, enc + [a])) for a in "xyz")
    recon_size = tuple(int(et_query(root, rec + [a])) for a in "xyz")
    lims = ["encoding", "encodingLimits", "kspace_encoding_step_1"]
    enc_limits_center = int(et_query(root, lims + ["center"]))
    enc_limits_max = int(et_query(root, lims + ["maximum"])) + 1
    padding_left = enc_size[1] // 2 - enc_limits_center
    padding_right = padding_left + enc_limits_max
    return {"padding_left": padding_left, "padding_right": padding_right,
            "encoding_size": enc_size, "recon_size": recon_size}


def test_build_parse_round_trip_keeps_every_field() -> None:
    xml = build_header(
        encoded_matrix=(640, 368, 1), encoded_fov_mm=(280.0, 161.5, 4.5),
        recon_matrix=(320, 320, 1), recon_fov_mm=(140.0, 140.0, 3.0),
        kspace_encoding_step_1=(0, 366, 185), n_slices=35, coils=15, field_strength_t=2.89362,
        sequence={"TR": 2750, "TE": [27.0, 54.0], "sequence_type": "TurboSpinEcho"},
        vendor="mrirecon", model="simulated",
    )
    h = parse_header(xml)
    assert h["encoded_matrix"] == (640, 368, 1)
    assert h["encoded_fov_mm"] == (280.0, 161.5, 4.5)
    assert h["recon_matrix"] == (320, 320, 1)
    assert h["recon_fov_mm"] == (140.0, 140.0, 3.0)
    assert h["enc_limits"]["kspace_encoding_step_1"] == {"minimum": 0, "maximum": 366,
                                                         "center": 185}
    assert h["enc_limits"]["slice"] == {"minimum": 0, "maximum": 34, "center": 17}
    assert h["coils"] == 15 and h["field_strength_t"] == 2.89362
    assert h["larmor_hz"] == 123_203_043  # 42.577478518 MHz/T (CODATA 2018) x 2.89362 T
    assert (h["vendor"], h["model"], h["trajectory"]) == ("mrirecon", "simulated", "cartesian")
    assert h["sequence"] == {"TR": [2750.0], "TE": [27.0, 54.0], "sequence_type": "TurboSpinEcho"}


@pytest.mark.parametrize("as_bytes", [False, True])
def test_fastmri_reads_our_header(as_bytes: bool) -> None:
    """fastMRI's own procedure finds every field, with the default full-coverage limits."""
    xml = build_header(encoded_matrix=(640, 372, 1), encoded_fov_mm=(280, 163, 4.5),
                       recon_matrix=(320, 320, 1), recon_fov_mm=(140, 140, 3))
    meta = fastmri_metadata(xml.encode() if as_bytes else xml)
    assert meta == {"padding_left": 0, "padding_right": 372, "encoding_size": (640, 372, 1),
                    "recon_size": (320, 320, 1)}
    assert fastmri_padding(parse_header(xml)) == (0, 372)


def test_padding_agrees_with_fastmri_on_partial_coverage() -> None:
    meta = fastmri_metadata(KNEE_LIKE)
    assert fastmri_padding(parse_header(KNEE_LIKE)) == (meta["padding_left"],
                                                        meta["padding_right"]) == (-1, 366)
    xml = build_header(encoded_matrix=(640, 368, 1), encoded_fov_mm=(280, 161, 4.5),
                       kspace_encoding_step_1=(0, 340, 170))
    meta = fastmri_metadata(xml)
    assert fastmri_padding(parse_header(xml)) == (meta["padding_left"],
                                                  meta["padding_right"]) == (14, 355)


def test_parses_a_fastmri_style_header() -> None:
    h = parse_header(KNEE_LIKE)
    assert h["encoded_matrix"] == (640, 368, 1) and h["recon_matrix"] == (320, 320, 1)
    assert h["encoded_fov_mm"] == (280.0, 161.0, 4.5) and h["recon_fov_mm"] == (140.0, 140.0, 3.0)
    assert h["coils"] == 15 and h["field_strength_t"] == 2.89362
    assert h["larmor_hz"] == 123251815 and h["vendor"] == "SIEMENS"
    assert h["sequence"]["flipAngle_deg"] == [140.0]
    assert "kspace_encoding_step_2" not in h["enc_limits"]


def test_recon_space_defaults_to_encoded_space() -> None:
    h = parse_header(build_header(encoded_matrix=(64, 48, 1), encoded_fov_mm=(64, 48, 3)))
    assert h["recon_matrix"] == h["encoded_matrix"] == (64, 48, 1)
    assert h["recon_fov_mm"] == h["encoded_fov_mm"] == (64.0, 48.0, 3.0)
    assert h["enc_limits"]["kspace_encoding_step_1"] == {"minimum": 0, "maximum": 47,
                                                         "center": 24}


def test_no_field_strength_writes_no_invented_one() -> None:
    """The schema requires experimentalConditions; an unknown frequency is written as 0."""
    xml = build_header(encoded_matrix=(8, 8, 1), encoded_fov_mm=(8, 8, 1))
    h = parse_header(xml)
    assert h["field_strength_t"] is None and h["larmor_hz"] is None and h["coils"] is None
    assert "<H1resonanceFrequency_Hz>0</H1resonanceFrequency_Hz>" in xml
    assert "acquisitionSystemInformation" not in xml
    assert parse_header(build_header(encoded_matrix=(8, 8, 1), encoded_fov_mm=(8, 8, 1),
                                     larmor_hz=63.87e6))["larmor_hz"] == 63870000


def test_elements_follow_the_schema_order() -> None:
    """ISMRMRD's XSD uses xs:sequence, so element order is part of validity."""
    xml = build_header(encoded_matrix=(8, 8, 1), encoded_fov_mm=(8, 8, 1), coils=4,
                       field_strength_t=1.5, n_slices=3, sequence={"TE": 5, "TR": 10})
    root = etree.fromstring(xml)
    assert root.tag == f"{{{NAMESPACE}}}ismrmrdHeader"

    def names(node: etree.Element) -> list[str]:
        return [child.tag.split("}")[1] for child in node]

    assert names(root) == ["acquisitionSystemInformation", "experimentalConditions", "encoding",
                           "sequenceParameters"]
    encoding = root.find(f"{{{NAMESPACE}}}encoding")
    assert names(encoding) == ["encodedSpace", "reconSpace", "encodingLimits", "trajectory"]
    limits = encoding.find(f"{{{NAMESPACE}}}encodingLimits")
    assert names(limits) == ["kspace_encoding_step_1", "kspace_encoding_step_2", "slice"]
    assert names(root.find(f"{{{NAMESPACE}}}sequenceParameters")) == ["TR", "TE"]
    assert names(root.find(f"{{{NAMESPACE}}}acquisitionSystemInformation")) == [
        "systemFieldStrength_T", "receiverChannels"]


def test_header_without_namespace_is_read() -> None:
    xml = KNEE_LIKE.replace(' xmlns="http://www.ismrm.org/ISMRMRD"', "")
    assert parse_header(xml)["encoded_matrix"] == (640, 368, 1)


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("<ismrmrdHeader><encoding>", "not well-formed XML"),
        ("", "not well-formed XML"),
        ("just text", "not well-formed XML"),
        ('<other xmlns="http://www.ismrm.org/ISMRMRD"/>', "expected <ismrmrdHeader>"),
        (KNEE_LIKE.replace("<x>640</x>", "<x>six forty</x>"),
         "encoding/encodedSpace/matrixSize/x is 'six forty', expected int"),
        (KNEE_LIKE.replace("<center>185</center>", "<center>18.5</center>"), "expected int"),
    ],
)
def test_malformed_header_is_a_clear_value_error(xml: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_header(xml)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"encoded_matrix": (64, 48)}, "encoded_matrix must be three positive integers"),
        ({"encoded_matrix": (64, 0, 1)}, "encoded_matrix must be three positive integers"),
        ({"encoded_matrix": (64, 48.5, 1)}, "encoded_matrix must be three positive integers"),
        ({"encoded_fov_mm": (1, float("nan"), 1)}, "encoded_fov_mm must be three positive"),
        ({"recon_matrix": ("a", 2, 3)}, "recon_matrix must be three"),
        ({"kspace_encoding_step_1": (0, 20, 30)}, "minimum <= center <= maximum"),
        ({"sequence": {"TX": 3}}, "unknown sequenceParameters"),
    ],
)
def test_build_header_rejects_bad_parameters(kwargs: dict, match: str) -> None:
    args = {"encoded_matrix": (64, 48, 1), "encoded_fov_mm": (64.0, 48.0, 3.0), **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        build_header(**args)
