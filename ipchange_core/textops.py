"""Text operations on help-desk columns, computed once per distinct value."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def money(cents: int, currency: str = "USD") -> str:
    """Integer cents as ``$1,234.56`` / ``-$0.01`` (``EUR 1,234.56``), exact for any amount."""
    symbol = "$" if currency == "USD" else f"{currency} "
    units, rest = divmod(abs(int(cents)), 100)
    return f"{'-' if cents < 0 else ''}{symbol}{units:,}.{rest:02d}"


def per_unique(values: pd.Series, fn: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply a vectorised text function to the distinct values only, then spread the result.

    Help-desk columns (names, subjects, tags) repeat heavily, and pandas runs regular expressions
    one value at a time in Python; this keeps that cost proportional to the distinct values.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    if not len(uniques):  # empty, or all NA: NA stays NA
        return values.copy()
    mapped = fn(pd.Series(uniques, dtype=values.dtype)).to_numpy()
    result = mapped.take(np.where(codes < 0, 0, codes))
    out = pd.Series(result, index=values.index)
    if (codes < 0).any():
        out = out.where(codes >= 0)
    return out.astype(mapped.dtype)


def normalise_name(names: pd.Series) -> pd.Series:
    """Names compared case-insensitively with surrounding and repeated spaces ignored."""
    return per_unique(
        names, lambda u: u.str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()
    ).astype("str")


_EMAIL = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
# North American numbers with or without country code / area code ((214) 555-0142, 214.555.0142,
# +1 214 555 0142, 555-0142) and international ones written with a leading "+". Ticket mask ids
# (ABC-123-45678), dates, times and IP addresses do not match.
_PHONE = (
    r"(?<![\w.-])(?:(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}"
    r"|\d{3}-\d{4}|\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5})(?![\w-])"
)


def mask_contacts(values: pd.Series) -> pd.Series:
    """Replace e-mail addresses by ``[e-mail]`` and telephone numbers by ``[phone]`` in text.

    For manager- and billing-facing output (SPEC 1): people type contact details into any free
    text field (a person of record, a waiver reason), and those pages must not show them.
    """
    return per_unique(
        values.astype("str"),
        lambda u: u.str.replace(_EMAIL, "[e-mail]", regex=True).str.replace(
            _PHONE, "[phone]", regex=True
        ),
    ).astype("str")


def join_labels(masks: dict[str, Any], index: pd.Index, sep: str = ";") -> pd.Series:
    """Per row, the labels whose mask is true, joined with ``sep`` in the order given.

    Rows are encoded as bit patterns and each distinct pattern is joined once, so the cost does
    not grow with the length of the text.
    """
    code = np.zeros(len(index), dtype=np.int64)
    for bit, mask in enumerate(masks.values()):
        on = pd.Series(mask, index=index).fillna(False).to_numpy(dtype=bool)
        code |= on.astype(np.int64) << bit
    labels = list(masks)
    combos, inverse = np.unique(code, return_inverse=True)
    names = [sep.join(lab for bit, lab in enumerate(labels) if c >> bit & 1) for c in combos]
    return pd.Series(np.array(names, dtype=object)[inverse], index=index, dtype="str")


def in_set(values: pd.Series, members: pd.Series) -> np.ndarray:
    """Whether each text of ``values`` is one of ``members`` (missing values never are).

    In Arrow: ``Series.isin`` on the ``str`` dtype takes seconds for a few hundred thousand ids.
    """
    texts, wanted = values.astype("str").array, members.dropna().astype("str").array
    found = pc.is_in(pa.array(texts), value_set=pa.array(wanted))
    return np.asarray(pc.fill_null(found, False), dtype=bool)
