"""Rewrite a checkpoint in today's state-dict layout (e.g. each i-RIM weight stored once).

    python scripts/migrate_checkpoint.py CKPT [CKPT ...]

Each file is read with :func:`mrirecon.models.checkpoint.load_checkpoint` (which maps older
layouts of the same registry version onto today's; never unpickled) and written back in place
with its name, configuration and ``extra`` unchanged; ``extra["created_first"]`` keeps the
original creation time. The weights, and so every output of the model, are identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from mrirecon.models.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    for name in sys.argv[1:]:
        path = Path(name)
        before = path.stat().st_size
        model, meta = load_checkpoint(path)
        extra = {**meta["extra"], "created_first": meta["extra"].get("created_first",
                                                                     meta.get("created"))}
        save_checkpoint(path, model, name=meta["name"], config=meta["config"], extra=extra,
                        overwrite=True)
        print(json.dumps({"checkpoint": str(path), "bytes_before": before,
                          "bytes_after": path.stat().st_size}))


if __name__ == "__main__":
    main()
