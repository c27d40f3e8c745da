"""The one typed-configuration engine: dataclasses whose fields are coerced and range-checked.

Training sections (:mod:`mrirecon.train.config`) and the model configurations of the registry
(:class:`~mrirecon.models.rim.RIMConfig`, ``IRIMConfig``, ``CINNConfig``) are all
:class:`Section` dataclasses. On creation every field is coerced to its annotated type
(:func:`coerce`: ``"1e-4"`` becomes a float, an integral ``8.0`` or ``"8"`` an int, a scalar a
one-item list, ``null``/``none`` clears an optional field) and then :meth:`Section._validate`
checks ranges. Every problem is one :class:`~mrirecon.errors.InvalidParameterError` line naming
the key (with the section's ``_prefix``), what was expected and what was received.
"""

from __future__ import annotations

import dataclasses
import os
import types
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, ClassVar, NoReturn, TypeVar, Union, get_args, get_origin, get_type_hints

from mrirecon.errors import InvalidParameterError

_NONE_WORDS = ("none", "null", "~")
S = TypeVar("S")


class Section:
    """Shared ``__post_init__`` of a config dataclass: coerce every field, then validate."""

    _prefix: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = coerce(getattr(self, f.name), hints[f.name], self._prefix + f.name)
            setattr(self, f.name, value)
        self._validate()

    def _validate(self) -> None:
        """Check value ranges; raise :class:`InvalidParameterError` naming the key."""

    def _require_range(self, name: str, low: int, high: int) -> None:
        """Raise unless the integer ``name`` lies in ``[low, high]``.

        The upper bounds stop absurd sizes before anything is allocated.
        """
        value = getattr(self, name)
        self._require(low <= value <= high, name, f"an integer from {low} to {high}")

    def _require(self, ok: bool, name: str, expected: str) -> None:
        """Raise ``{prefix}{name} must be {expected}, got {value}`` unless ``ok``."""
        if not ok:
            raise InvalidParameterError(
                f"{self._prefix}{name} must be {expected}, got {getattr(self, name)!r}"
            )


def build(cls: type[S], data: Mapping[str, Any], prefix: str = "", extra: str = "") -> S:
    """``cls(**data)`` after checking that every key of ``data`` is a field of ``cls``.

    ``prefix`` and ``extra`` name the section in the message (``unknown key 'optim.lx'; valid
    keys in optim: ...``).
    """
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    check_keys(data, names, prefix, extra)
    return cls(**data)


def check_keys(data: Mapping[str, Any], names: Sequence[str], prefix: str,
               extra: str = "") -> None:
    """Reject the first key of ``data`` that is not in ``names``, listing the valid ones."""
    unknown = [k for k in data if k not in names]
    if unknown:
        where = f" in {prefix.rstrip('.')}{extra}" if prefix else ""
        raise InvalidParameterError(
            f"unknown key '{prefix}{unknown[0]}'; valid keys{where}: {', '.join(names)}"
        )


def coerce(value: Any, tp: Any, key: str) -> Any:
    """``value`` converted to type ``tp`` (see the module docstring), or a one-line error."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in _NONE_WORDS):
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], key) if len(inner) == 1 else value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):  # type: ignore[arg-type]
            return value
        if not isinstance(value, Mapping):
            _wrong(key, "a mapping", value)
        return build(tp, value, key + ".")  # type: ignore[arg-type]
    if origin is list:
        if value is None or isinstance(value, Mapping):
            _wrong(key, "a list", value)
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return [coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(items)]
    if tp is dict or origin is dict:
        if not isinstance(value, Mapping):
            _wrong(key, "a mapping", value)
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            _wrong(key, "true or false", value)
    elif tp is int:
        return _integer(value, key)
    elif tp is float:
        number = _number(value)
        if number is None:
            _wrong(key, "a number", value)
        return number
    elif tp is str:
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if not isinstance(value, str):
            _wrong(key, "a string", value)
    return value


def plain(value: Any) -> Any:
    """``value`` as plain YAML/JSON data (mappings, lists, enums and paths unwrapped)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _integer(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if number is None or not number.is_integer():
        _wrong(key, "an integer", value)
    return int(number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _wrong(key: str, expected: str, value: Any) -> NoReturn:
    raise InvalidParameterError(f"{key} must be {expected}, got {value!r}")
