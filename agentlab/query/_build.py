"""Columns (``dict[str, list]``) to a pandas or polars frame, with the same types in both.

Each column has a declared type, so an empty result or an all-missing column still gets its
proper dtype, and both libraries hold the same values:

=========  =============================  ==========================
type       pandas                         polars
=========  =============================  ==========================
``str``    the default string dtype       ``String``
``int``    ``int64``                      ``Int64``
``int?``   ``Int64`` (missing: ``<NA>``)  ``Int64`` (missing: null)
``float``  ``float64`` (missing: NaN)     ``Float64`` (missing: null)
``bool``   ``bool``                       ``Boolean``
``bool?``  ``boolean`` (missing: <NA>)    ``Boolean`` (missing: null)
``time``   ``datetime64[us, UTC]``        ``Datetime("us", "UTC")``
``list``   ``object`` (lists of str)      ``List(String)``
=========  =============================  ==========================

``time`` columns are given as integer microseconds since the epoch (or None) and converted
in bulk. pandas and polars are imported here, when a frame is built, never before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from agentlab.query._filters import Engine

__all__ = ["ColumnType", "to_frame"]

ColumnType = Literal["str", "int", "int?", "float", "bool", "bool?", "time", "list"]
_TYPES = ("str", "int", "int?", "float", "bool", "bool?", "time", "list")


def to_frame(columns: Mapping[str, Sequence[Any]], types: Mapping[str, ColumnType], *,
             engine: Engine = "pandas") -> Any:
    """A frame with one column per entry of ``types`` (in that order) from ``columns``."""
    missing = [n for n in types if n not in columns]
    if missing:
        raise ValueError(f"no values for the columns {missing}")
    bad = {n: t for n, t in types.items() if t not in _TYPES}
    if bad:
        raise ValueError(f"unknown column types {bad}; use one of {list(_TYPES)}")
    if engine == "pandas":
        return _pandas(columns, types)
    if engine == "polars":
        return _polars(columns, types)
    raise ValueError(f"engine={engine!r} is not a frame library; use 'pandas' or 'polars'")


def _import(name: str) -> Any:
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError:
        raise ImportError(
            f"engine={name!r} needs {name}, which is not installed: pip install {name} "
            "(or agentlab[notebook]), or choose the other engine"
        ) from None


def _pandas(columns: Mapping[str, Sequence[Any]], types: Mapping[str, ColumnType]) -> Any:
    pd = _import("pandas")
    data: dict[str, Any] = {}
    for name, kind in types.items():
        values = list(columns[name])
        if kind == "time":
            data[name] = pd.to_datetime(pd.Series(values, dtype="Int64"), unit="us", utc=True)
            if str(data[name].dtype) != "datetime64[us, UTC]":  # pandas 2 gives ns
                data[name] = data[name].astype("datetime64[us, UTC]")
        elif kind == "str":
            # pandas' default string dtype (``str`` from pandas 3, ``object`` before), also
            # for a column without any string, which pandas would otherwise make ``object``
            data[name] = pd.Series(values, dtype=pd.Series(["x"]).dtype)
        elif kind == "list":
            data[name] = pd.Series(values, dtype=object)
        else:
            dtype = {"int": "int64", "int?": "Int64", "float": "float64", "bool": "bool",
                     "bool?": "boolean"}[kind]
            data[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data, columns=list(types))


def _polars(columns: Mapping[str, Sequence[Any]], types: Mapping[str, ColumnType]) -> Any:
    pl = _import("polars")
    dtypes = {"str": pl.String, "int": pl.Int64, "int?": pl.Int64, "float": pl.Float64,
              "bool": pl.Boolean, "bool?": pl.Boolean, "time": pl.Int64,
              "list": pl.List(pl.String)}
    series = []
    for name, kind in types.items():
        s = pl.Series(name, list(columns[name]), dtype=dtypes[kind], strict=True)
        if kind == "time":
            s = s.cast(pl.Datetime("us", "UTC"))
        series.append(s)
    return pl.DataFrame(series)
