"""``mrirecon models``: the registered model names, their parameter counts and defaults."""

from __future__ import annotations

from typing import Annotated

import typer

from mrirecon.cli._console import emit_json, print_table


def models_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON records.")] = False,
) -> None:
    """List the registered learned models (versioned names for --model checkpoints)."""
    from mrirecon.models.registry import list_models

    records = list_models()
    if json_out:
        emit_json(records)
        return
    print_table(["name", "parameters", "description", "defaults"], [
        [r["name"], f"{r['parameters']:,}" if r.get("available") else "unavailable",
         r["description"],
         ", ".join(f"{k}={v}" for k, v in r.get("defaults", {}).items()) or r.get("error", "")]
        for r in records])
