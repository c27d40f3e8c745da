"""``mrirecon models``: the registered model names, the shipped checkpoints and their domains."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mrirecon.cli._console import emit_json, print_table


def _checkpoint_record(path: Path, alias: str | None = None) -> dict[str, Any]:
    """What a checkpoint declares; ``alias``: its ``--model`` name if it is a shipped one."""
    from mrirecon.models.checkpoint import read_metadata
    from mrirecon.models.domain import describe

    meta = read_metadata(path)
    domain = (meta.get("extra") or {}).get("domain")
    record = {"file": str(path), "name": meta.get("name"), "domain": domain,
              "domain_summary": describe(domain)}
    return record if alias is None else {"alias": alias, **record}


def models_command(
    checkpoints: Annotated[list[Path] | None, typer.Argument(
        help="Checkpoints to describe, or the shipped ones' names (default, default-cinn) "
        "\\[default: the shipped ones].", metavar="[CHECKPOINT]...",
        show_default=False)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """List the registered learned models and the domain each checkpoint declares.

    Models are listed by their versioned names (for --model checkpoints). A checkpoint's domain
    is the coils, matrix sizes, accelerations, mask kinds and data sources it was trained on
    (reconstruct and evaluate warn outside it). The shipped checkpoints are listed with their
    names (--model default, --model default-cinn) and paths.
    """
    from mrirecon.models.default import resolve_model, shipped_names
    from mrirecon.models.registry import list_models

    if checkpoints:  # a shipped one's name is described under that name
        resolved = [(resolve_model(p), p) for p in checkpoints]
        ckpts = [_checkpoint_record(path, None if path == p else str(p)) for path, p in resolved]
        if json_out:
            emit_json(ckpts)
        else:
            _print_checkpoints(ckpts)
        return
    ckpts = [_checkpoint_record(path, alias) for alias, path in shipped_names().items()
             if path.is_file()]
    records = list_models()
    for record in records:
        record["shipped"] = [c for c in ckpts if c["name"] == record["name"]]
    if json_out:
        emit_json(records)
        return
    print_table(["name", "parameters", "description", "defaults"], [
        [r["name"], f"{r['parameters']:,}" if r.get("available") else "unavailable",
         r["description"],
         ", ".join(f"{k}={v}" for k, v in r.get("defaults", {}).items()) or r.get("error", "")]
        for r in records])
    print_table(["--model", "model", "training domain", "path"],
                [[c["alias"], c["name"], c["domain_summary"], c["file"]] for c in ckpts],
                title="shipped checkpoints")


def _print_checkpoints(ckpts: list[dict[str, Any]]) -> None:
    print_table(["checkpoint", "model", "training domain"],
                [[Path(c["file"]).name, c["name"], c["domain_summary"]] for c in ckpts])
