"""Ship a trained i-RIM as the package's default: memory-free inference, the stage history kept.

    python scripts/ship_default.py runs/default-irim/stage5/best.safetensors \
        [--out mrirecon/models/default/irim-default.safetensors] [--stage-json STAGE.json]

Reads the checkpoint (weights and metadata, never unpickled), switches ``memory_free`` on (the
same weights: training keeps activations because that is faster on a CPU), appends the new
stage to the previous default's ``stages`` list, and writes the result over ``--out``. The
checkpoint's declared ``domain`` (what it was trained on) travels unchanged.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mrirecon.models.checkpoint import load_checkpoint, read_metadata, save_checkpoint

DEFAULT = Path("mrirecon/models/default/irim-default.safetensors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--out", type=Path, default=DEFAULT)
    parser.add_argument("--stage-json", type=Path,
                        help="JSON object describing the new stage (data, steps, lr, loss, ...)")
    args = parser.parse_args()
    model, meta = load_checkpoint(args.checkpoint)
    previous = read_metadata(args.out)["extra"] if args.out.is_file() else {}
    stage = json.loads(args.stage_json.read_text()) if args.stage_json else {}
    extra = dict(meta.get("extra") or {})
    extra["stages"] = [*previous.get("stages", []), stage]
    extra["note"] = (f"stages 1-{len(extra['stages'])} by scripts/train_default.sh; trained with "
                     "memory_free=false (faster on a CPU), shipped with memory_free=true (same "
                     "weights); all training k-space simulated from magnitude images")
    config = {**meta["config"], "memory_free": True}
    model.sequence.memory_free = True
    save_checkpoint(args.out, model, name=meta["name"], config=config, extra=extra,
                    overwrite=True)
    print(json.dumps({"out": str(args.out), "stages": len(extra["stages"]),
                      "domain": extra.get("domain")}, indent=2))


if __name__ == "__main__":
    main()
