"""Learned reconstruction networks: invertible building blocks, the invertible U-Net, RIM and i-RIM.

Networks take real channels (see the layout table in :mod:`mrirecon.data`) and receive the
physics as callables; they never read files or build FFTs themselves. Import the submodules
directly, e.g. ``from mrirecon.models.invertible import AdditiveCoupling``.
"""
