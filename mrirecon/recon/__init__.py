"""Reconstructors: one protocol (``recon(kspace) -> Volume``), classical methods behind it.

Modules: :mod:`.base` (the protocol), :mod:`.zero_filled`, :mod:`.sigpy_baselines` (SENSE,
L1-wavelet CS), :mod:`.methods` (names -> reconstructors). Nothing is imported here so that the
command line can list the methods without loading torch.
"""
