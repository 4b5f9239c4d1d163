"""Which option a user probably meant when a log lacks a column: ``--amount-col total``.

Pure functions on column names and type names; :func:`custscore.features.io.check_columns`
adds the hint to its one-line error, so every engine (pandas, Arrow, DuckDB, Spark) gives it.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, Mapping, Optional, Sequence

#: CLI option that names the column of each ColumnMap field.
OPTIONS = {"customer": "--customer-col", "date": "--date-col", "amount": "--amount-col",
           "discount": "--discount-col", "arrears": "--arrears-col"}

#: Words in a column name that usually mean the field (besides the field's own name).
SYNONYMS = {
    "customer": ("customer", "cust", "client", "user", "member", "account", "buyer", "shopper"),
    "date": ("date", "day", "timestamp", "time", "datetime", "ts", "order_date", "purchase_date"),
    "amount": ("amount", "amt", "total", "value", "revenue", "price", "sales", "spend", "sum"),
    "discount": ("discount", "promo", "coupon", "voucher", "rebate"),
    "arrears": ("arrears", "overdue", "owed", "debt", "past_due"),
}

#: Kinds of column each field can be read from (None: the type is unknown, never excluded).
_FITS = {"customer": {"text", "number"}, "date": {"date", "text", "number"}, "amount": {"number", "text"},
         "discount": {"number", "text", "bool"}, "arrears": {"number", "text"}}


def column_kind(type_name: Any) -> Optional[str]:
    """``number``, ``date``, ``bool`` or ``text`` for a pandas, Arrow, DuckDB or Spark type
    (by its name), or None when unknown (e.g. pandas ``object``: values not inspected).

    >>> [column_kind(t) for t in ("int64", "DOUBLE", "timestamp[ns]", "DATE", "string", "object")]
    ['number', 'number', 'date', 'date', 'text', None]
    """
    name = str(type_name).lower()
    if "bool" in name:
        return "bool"
    if "date" in name or "timestamp" in name:
        return "date"
    if any(word in name for word in ("int", "float", "double", "decimal", "numeric", "real")):
        return "number"
    if any(word in name for word in ("str", "varchar", "text", "char", "utf8")):
        return "text"
    return None


def _words(name: str) -> set[str]:
    lowered = name.lower()
    return {lowered, *re.split(r"[^a-z0-9]+", lowered)} - {""}


def _name_score(role: str, wanted: str, candidate: str) -> float:
    """How much ``candidate`` looks like the column of ``role`` the user called ``wanted``: a
    difflib ratio of at least 0.6, else 0.5 for a synonym word, else 0."""
    ratio = difflib.SequenceMatcher(None, wanted.lower(), candidate.lower()).ratio()
    if ratio >= 0.6:
        return ratio
    return 0.5 if _words(candidate) & set(SYNONYMS.get(role, ())) else 0.0


def suggest_options(missing: Sequence[tuple[str, str]], found: Sequence[Any],
                    kinds: Optional[Mapping[str, Optional[str]]] = None, taken: Sequence[str] = ()) -> list[str]:
    """Options probably meant, e.g. ``["--amount-col total"]``, for ``missing`` (role, name)
    pairs given the ``found`` column names; ``kinds`` (name -> :func:`column_kind`) drops
    candidates of a type the field cannot be read from and, when no name matches and only one
    column is missing, picks the only column of the field's type (a number for an amount, a
    date for a date). Columns in
    ``taken`` (read for another field) and columns suggested already are not offered.
    """
    kinds = kinds or {}
    used = {str(c) for c in taken}
    out = []
    for role, wanted in missing:
        if role not in OPTIONS:
            continue
        free = [str(c) for c in found if str(c) not in used and kinds.get(str(c)) in _FITS[role] | {None}]
        scored = sorted(((_name_score(role, wanted, c), c) for c in free), key=lambda sc: -sc[0])
        best = scored[0][1] if scored and scored[0][0] > 0 else None
        if best is None and role in ("amount", "date") and len(missing) == 1:
            typed = [c for c in free if kinds.get(c) == ("number" if role == "amount" else "date")]
            best = typed[0] if len(typed) == 1 else None
        if best is not None:
            used.add(best)
            out.append(f"{OPTIONS[role]} {best}" if re.fullmatch(r"[\w.-]+", best) else f"{OPTIONS[role]} {best!r}")
    return out
