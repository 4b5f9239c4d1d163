"""A data-only codec for fitted objects: a JSON tree plus named numpy arrays, never pickle.

:func:`encode` walks an object whose class is in an explicit allow-list (name -> class)
through its ``__dict__`` and returns a JSON-ready tree and the arrays it references. Plain values are
written as JSON; anything else is a one-key tag:

- ``{"$float": "nan" | "inf" | "-inf"}`` non-finite floats (the JSON has no NaN literal);
- ``{"$tuple": [...]}``, ``{"$dict": {...}}`` (str keys only), lists as JSON arrays;
- ``{"$array": "a0"}``, ``{"$scalar": "a1"}`` a numpy array or scalar, stored in the
  ``.npz`` under that key (a scalar as a 0-d array of its dtype);
- ``{"$timestamp": {"value": ns, "unit": "s"|"ms"|"us"|"ns", "tz": None | name}}``;
- ``{"$frame": {...}}`` a DataFrame of one numeric dtype (e.g. a variance matrix);
- ``{"$object": NAME, "state": {...}}`` an instance of the allow-listed class ``NAME``.

Any other value raises :class:`TypeError` at encode (save) time naming its path, so an
attribute of an unsupported type fails the tests rather than a user. :func:`decode`
rebuilds the tree; an unknown tag or class raises :class:`ValueError`. Decoding runs no
code of the file: objects are created with ``cls.__new__`` and their ``__dict__`` filled.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import pandas as pd

#: Names of the tags, the only JSON objects a tree holds.
_TAGS = ("$float", "$tuple", "$dict", "$array", "$scalar", "$timestamp", "$frame", "$object")


def encode(obj: Any, classes: Mapping[str, type]) -> tuple[Any, dict[str, np.ndarray]]:
    """The JSON tree of ``obj`` and its arrays (``.npz`` keys ``a0``, ``a1``, ...)."""
    names = {cls: name for name, cls in classes.items()}
    arrays: dict[str, np.ndarray] = {}
    return _encode(obj, names, arrays, names.get(type(obj), type(obj).__name__)), arrays


def _encode(value: Any, names: Mapping[type, str], arrays: dict[str, np.ndarray], path: str) -> Any:
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return value
    if kind is float:
        return value if math.isfinite(value) else {"$float": repr(value)}
    if kind is list:
        return [_encode(v, names, arrays, f"{path}[{i}]") for i, v in enumerate(value)]
    if kind is tuple:
        return {"$tuple": [_encode(v, names, arrays, f"{path}[{i}]") for i, v in enumerate(value)]}
    if kind is dict:
        bad = [k for k in value if type(k) is not str]
        if bad:
            raise TypeError(f"{path}: dict keys must be str, got {bad[0]!r}")
        return {"$dict": {k: _encode(v, names, arrays, f"{path}[{k!r}]") for k, v in value.items()}}
    if kind is np.ndarray or isinstance(value, np.generic):
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"{path}: numpy array of dtype {array.dtype} is not plain data")
        key = f"a{len(arrays)}"
        arrays[key] = array
        return {"$array" if kind is np.ndarray else "$scalar": key}
    if kind is pd.Timestamp:
        return {"$timestamp": _timestamp_state(value, path)}
    if kind is pd.DataFrame:
        return {"$frame": _frame_state(value, names, arrays, path)}
    if kind in names:
        if hasattr(kind, "__slots__") and not hasattr(value, "__dict__"):
            raise TypeError(f"{path}: {kind.__name__} keeps its state in __slots__")
        state = {k: _encode(v, names, arrays, f"{path}.{k}") for k, v in vars(value).items()}
        return {"$object": names[kind], "state": state}
    raise TypeError(f"{path}: {kind.__module__}.{kind.__qualname__} is not plain data (allowed: numbers, "
                    "strings, None, lists, tuples, str-keyed dicts, numpy arrays and scalars, pandas "
                    f"Timestamps, numeric DataFrames and the classes {sorted(names.values())})")


def _timestamp_state(value: pd.Timestamp, path: str) -> dict[str, Any]:
    state = {"value": int(value.value), "unit": value.unit, "tz": None if value.tz is None else str(value.tz)}
    if _timestamp(state) != value or _timestamp(state).unit != value.unit:
        raise TypeError(f"{path}: timestamp {value!r} does not round-trip (time zone {value.tz!r})")
    return state


def _timestamp(state: Mapping[str, Any]) -> pd.Timestamp:
    ts = pd.Timestamp(int(state["value"]), unit="ns")
    if state["tz"] is not None:
        ts = ts.tz_localize("UTC").tz_convert(state["tz"])
    return ts.as_unit(state["unit"])


def _frame_state(frame: pd.DataFrame, names, arrays, path: str) -> dict[str, Any]:
    if frame.dtypes.nunique() > 1 or any(isinstance(i, pd.MultiIndex) for i in (frame.index, frame.columns)):
        raise TypeError(f"{path}: only DataFrames of one dtype with flat index and columns are plain data")
    return {"values": _encode(frame.to_numpy(), names, arrays, f"{path}.values"),
            "index": _encode(frame.index.tolist(), names, arrays, f"{path}.index"),
            "columns": _encode(frame.columns.tolist(), names, arrays, f"{path}.columns"),
            "names": _encode([frame.index.name, frame.columns.name], names, arrays, f"{path}.names")}


def decode(tree: Any, arrays: Mapping[str, np.ndarray], classes: Mapping[str, type]) -> Any:
    """Rebuild what :func:`encode` wrote; ``ValueError`` on an unknown tag, class or array key."""
    if tree is None or type(tree) in (bool, int, float, str):
        return tree
    if type(tree) is list:
        return [decode(v, arrays, classes) for v in tree]
    keys = sorted(tree) if type(tree) is dict else None
    if keys != ["$object", "state"] and (keys is None or len(keys) != 1 or keys[0] not in _TAGS):
        raise ValueError(f"not a value of the model format: {str(tree)[:80]}")
    tag, body = next(iter(tree.items()))
    if tag == "$float":
        if body not in ("nan", "inf", "-inf"):
            raise ValueError(f"not a non-finite float: {body!r}")
        return float(body)
    if tag == "$tuple":
        return tuple(decode(v, arrays, classes) for v in _typed(body, list, tag))
    if tag == "$dict":
        return {str(k): decode(v, arrays, classes) for k, v in _typed(body, dict, tag).items()}
    if tag in ("$array", "$scalar"):
        if type(body) is not str or body not in arrays:
            raise ValueError(f"array {str(body)[:80]!r} is missing from the arrays file")
        array = arrays[body]
        if tag == "$array":
            return array
        if array.ndim != 0:
            raise ValueError(f"array {body!r} is not a scalar")
        return array[()]
    if tag == "$timestamp":
        return _timestamp(_typed(body, dict, tag))
    if tag == "$frame":
        body = _typed(body, dict, tag)
        index_name, columns_name = decode(body["names"], arrays, classes)
        return pd.DataFrame(decode(body["values"], arrays, classes),
                            index=pd.Index(decode(body["index"], arrays, classes), name=index_name),
                            columns=pd.Index(decode(body["columns"], arrays, classes), name=columns_name))
    body = tree["$object"]
    cls = classes.get(body) if type(body) is str else None
    if cls is None:
        raise ValueError(f"unknown class {str(body)[:80]!r} (known: {sorted(classes)})")
    obj = cls.__new__(cls)
    obj.__dict__.update({str(k): decode(v, arrays, classes) for k, v in _typed(tree["state"], dict, body).items()})
    return obj


def _typed(body: Any, kind: type, tag: str) -> Any:
    if type(body) is not kind:
        raise ValueError(f"{tag}: expected a {kind.__name__}, got {type(body).__name__}")
    return body
