"""mrirecon: MRI reconstruction from undersampled k-space, on the command line.

The package is layered (imports point downward only)::

    cli/  ->  inference, train/, evaluate  ->  models/, recon/, metrics
          ->  physics/, sampling/  ->  io/  ->  data/

See ``ARCHITECTURE`` notes in the README.
"""

__version__ = "0.1.0"
