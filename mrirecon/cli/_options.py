"""Option values that accept lists: ``--accel 2 --accel 4`` and ``--accel 2,4`` alike."""

from __future__ import annotations

from mrirecon.errors import InvalidParameterError


def split_values(values: list[str]) -> list[str]:
    """``["2,4", "8"]`` -> ``["2", "4", "8"]`` (repeated options and comma lists alike)."""
    return [part.strip() for v in values for part in str(v).split(",") if part.strip()]


def float_values(values: list[str], option: str) -> list[float]:
    """The numbers of a list option; a non-number is one error line naming ``option``."""
    out = []
    for part in split_values(values):
        try:
            out.append(float(part))
        except ValueError:
            raise InvalidParameterError(f"{option} {part!r} is not a number; expected e.g. "
                                        f"{option} 4 or {option} 2,4,8") from None
    return out
