"""JSON (the `snapshot --json` cluster schema) -> ClusterSnapshot: how `replay` reads a recording.

The JSON writer (jsonout) names every key after the model's field, so the reader needs no second copy of the
schema: it walks the dataclasses' type hints. Keys it does not know are ignored (a newer recording read by an
older replay), keys that are missing take the field's default (an older recording), so a recording stays
readable while the schema only grows. A value of the wrong shape raises SnapshotDecodeError (one line).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args, get_origin

from pgiam_tui.model import ClusterSnapshot

__all__ = ["SnapshotDecodeError", "decode", "decode_cluster"]

T = TypeVar("T")


class SnapshotDecodeError(ValueError):
    """A recorded value that does not fit the snapshot schema."""


def decode_cluster(data: Any) -> ClusterSnapshot:
    """One cluster object of the JSON contract as the immutable snapshot the console renders."""
    return decode(ClusterSnapshot, data)


def decode(kind: type[T], data: Any) -> T:
    """DATA (parsed JSON) as an instance of the dataclass KIND."""
    return typing.cast(T, _value(kind, data, kind.__name__))


@functools.cache
def _hints(kind: type) -> dict[str, Any]:
    return typing.get_type_hints(kind)


def _dataclass(kind: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise SnapshotDecodeError(f"{where}: expected an object, got {type(data).__name__}")
    hints = _hints(kind)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SnapshotDecodeError(f"{where}: missing {f.name!r}")
            continue
        values[f.name] = _value(hints[f.name], data[f.name], f"{where}.{f.name}")
    return kind(**values)


def _value(hint: Any, data: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _value(option, data, where)
            except SnapshotDecodeError as exc:
                errors.append(str(exc))
        raise SnapshotDecodeError(errors[0] if errors else f"{where}: unexpected null")
    if origin is Literal:
        if data not in get_args(hint):
            raise SnapshotDecodeError(f"{where}: unexpected value {data!r}")
        return data
    if origin is tuple:
        if not isinstance(data, list):
            raise SnapshotDecodeError(f"{where}: expected a list")
        item = get_args(hint)[0]
        return tuple(_value(item, v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin is dict:
        if not isinstance(data, dict):
            raise SnapshotDecodeError(f"{where}: expected an object")
        _, item = get_args(hint)
        return {str(k): _value(item, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _dataclass(hint, data, where)
    return _scalar(hint, data, where)


def _scalar(hint: Any, data: Any, where: str) -> Any:
    if hint is Any:
        return data
    if hint is datetime:
        if not isinstance(data, str):
            raise SnapshotDecodeError(f"{where}: expected a time")
        try:
            value = datetime.fromisoformat(data)
        except ValueError:
            raise SnapshotDecodeError(f"{where}: not an ISO 8601 time: {data!r}") from None
        if value.tzinfo is None:
            raise SnapshotDecodeError(f"{where}: time without an offset: {data!r}")
        return value
    if hint is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise SnapshotDecodeError(f"{where}: expected a number")
        return float(data)
    if hint is bool or hint is int or hint is str:
        if not isinstance(data, hint) or (hint is int and isinstance(data, bool)):
            raise SnapshotDecodeError(f"{where}: expected {hint.__name__}, got {type(data).__name__}")
        return data
    if isinstance(hint, type) and issubclass(hint, str):  # str-valued enums
        try:
            return hint(data)
        except ValueError:
            raise SnapshotDecodeError(f"{where}: unexpected value {data!r}") from None
    raise SnapshotDecodeError(f"{where}: cannot read a {hint!r}")
