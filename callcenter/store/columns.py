"""Table columns derived from a pydantic model's fields (the call-log row is defined once, as ``CallRecord``)."""

from __future__ import annotations

import types
from datetime import datetime
from enum import Enum
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import JSON, Boolean, Column, Float, Integer, String, Text, false
from sqlalchemy.types import TypeEngine

from callcenter.calls.record import widths
from callcenter.store.types import UtcDateTime


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """``X | None`` -> (X, True); ``X`` -> (X, False)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _sql_type(kind: Any, width: int | None) -> TypeEngine[Any]:
    if get_origin(kind) in (list, dict):
        return JSON()
    if kind is bool:
        return Boolean()
    if kind is int:
        return Integer()
    if kind is float:
        return Float()
    if kind is datetime:
        return UtcDateTime()
    if kind is str or (isinstance(kind, type) and issubclass(kind, Enum)):
        return String(width) if width else Text()
    raise TypeError(f"no column type for {kind!r}")


def column(name: str, info: FieldInfo, width: int | None) -> Column[Any]:
    """The column for one field: its type, NULL only when the field is optional, a default as the model's."""
    kind, optional = _unwrap(info.annotation)
    sql_type = _sql_type(kind, width)
    server_default = false() if kind is bool else None  # rows added before a flag existed read as "no"
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if isinstance(default, list):
        default = list  # a fresh list per row, never one shared object
    return Column(name, sql_type, nullable=optional, default=default, server_default=server_default,
                  doc=info.description)


def columns(model: type[BaseModel]) -> list[Column[Any]]:
    """One column per field of ``model``, in field order."""
    sized = widths(model)
    return [column(name, info, sized.get(name)) for name, info in model.model_fields.items()]
