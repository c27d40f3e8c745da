"""Training: typed configuration (:mod:`~mrirecon.train.config`), on-the-fly undersampled
datasets (:mod:`~mrirecon.train.dataset`), losses and the one training loop.

Nothing is imported here, so ``import mrirecon.train.config`` stays light (no torch until a
model configuration is validated).
"""
