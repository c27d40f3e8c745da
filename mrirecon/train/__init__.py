"""Training: configuration, data, losses and the one training loop of every learned model.

Modules:

- :mod:`~mrirecon.train.config`: typed configuration, read from YAML and ``key=value``
  overrides;
- :mod:`~mrirecon.train.loop`: the training loop (plain PyTorch, optional DDP);
- :mod:`~mrirecon.train.objective`: what one step minimises, each item's loss over the batch;
- :mod:`~mrirecon.train.losses`: SSIM, L1 and MSE on magnitudes, over the model's steps;
- :mod:`~mrirecon.train.optimiser`: AdamW with a warm-up + cosine or constant schedule;
- :mod:`~mrirecon.train.validation`: PSNR, SSIM and NMSE over the validation volumes;
- :mod:`~mrirecon.train.runlog`: ``log.csv``, TensorBoard and the progress callback;
- :mod:`~mrirecon.train.run`: a run's folder, shared state and saves;
- :mod:`~mrirecon.train.start`: a fresh model, an ``init`` checkpoint or a ``resume``;
- :mod:`~mrirecon.train.state`: the resume state ``state.pt`` and the global RNG states;
- :mod:`~mrirecon.train.distributed`: the torchrun process group, rank and device;
- :mod:`~mrirecon.train.loader`: the data a run iterates, epoch by epoch;
- :mod:`~mrirecon.train.dataset`: fastMRI-format HDF5 slices undersampled on the fly;
- :mod:`~mrirecon.train.synthetic`: the domain-randomised generator of k-space items;
- :mod:`~mrirecon.train.sources`: the generator's pinned magnitude-image sources;
- :mod:`~mrirecon.train.augment`: the generator's geometry and contrast randomisation;
- :mod:`~mrirecon.train.procedural`: procedural images (ellipses, textures, gratings).

Nothing is imported here, so ``import mrirecon.train.config`` stays light (no torch until a
model configuration is validated).
"""
