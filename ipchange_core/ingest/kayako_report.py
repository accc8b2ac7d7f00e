"""Kayako KQL report exports (CSV, XLSX) → canonical ``tickets`` text, by a mapping (SPEC 3.2).

A :class:`ReportMapping` (YAML, ``--mapping``) maps the report's human column labels onto the
canonical fields; columns it does not map are ignored (named in a note). Times stay text here,
in the mapping's ``date_format`` (local wall-clock time in the policy zone; an XLSX export's
date cells arrive as ISO-8601 text, see :mod:`ipchange_core.ingest.tabular`);
:mod:`ipchange_core.ingest.checks` checks and types them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from ipchange_core.errors import InvalidInputError
from ipchange_core.ingest.columns import CanonicalText, blank_column, no_rejects, text_array
from ipchange_core.ingest.kayako_values import UNASSIGNED, normalise_tags, replace_known
from ipchange_core.schema import TABLES
from ipchange_core.yamlconfig import load_config_yaml

REPORT_FIELDS = (*(col.name for col in TABLES["tickets"]), "ticket_type", "kayako_id")
"""Canonical fields a report column may be mapped to."""


REPORT_REQUIRED = ("ticket_id", "department", "status", "created_at")
"""Fields whose report column must be present (``creator`` may come from ``defaults`` instead)."""


DEFAULT_MAPPING = "kayako_report_mapping.yaml"
"""Packaged mapping used when ``--mapping`` is not given."""


@dataclass(frozen=True)
class ReportMapping:
    """How the columns of a Kayako report CSV map onto canonical ``tickets`` fields.

    Attributes:
        columns: Canonical field → report column labels, the first present one is used.
        date_format: ``strftime`` format of the report's dates, local time in the policy zone.
        defaults: Canonical field → value used when the report has no column for it.
        translations: Canonical field → {report value: canonical value} (the YAML ``values``
            section), applied before the checks.
        source: Name of the mapping file, for messages.
    """

    columns: Mapping[str, tuple[str, ...]]
    date_format: str = "%m/%d/%Y %H:%M:%S"
    defaults: Mapping[str, str] = field(default_factory=dict)
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    source: str = DEFAULT_MAPPING

    @property
    def ticket_id_labels(self) -> frozenset[str]:
        """Labels that mark a CSV as a report (those mapped to ``ticket_id``)."""
        return frozenset(self.columns.get("ticket_id", ()))


def load_mapping(path: Path | None = None) -> ReportMapping:
    """Read a report column mapping (YAML); ``None`` reads the packaged default.

    Args:
        path: The mapping file, or ``None`` for :data:`DEFAULT_MAPPING`.

    Returns:
        The mapping.

    Raises:
        InvalidInputError: The file is unreadable, not YAML, or names unknown fields.
    """
    if path is None:
        name = DEFAULT_MAPPING
        text = resources.files("ipchange_core").joinpath(DEFAULT_MAPPING).read_text("utf-8")
    else:
        name = Path(path).name
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InvalidInputError(f"cannot read the column mapping: {err}", file=name) from None
    try:
        doc = load_config_yaml(text)
    except yaml.YAMLError as err:
        raise InvalidInputError(f"column mapping is not valid YAML: {err}", file=name) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        raise InvalidInputError("column mapping needs a 'columns' section", file=name)
    unknown_keys = set(doc) - {"columns", "date_format", "defaults", "values"}
    if unknown_keys:
        raise InvalidInputError(
            f"column mapping has unknown key(s): {', '.join(sorted(unknown_keys))}", file=name
        )
    columns: dict[str, tuple[str, ...]] = {}
    for fld, labels in doc["columns"].items():
        labels = [labels] if isinstance(labels, str) else labels
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise InvalidInputError(
                f"columns.{fld} must be a column label or a list of labels", file=name
            )
        columns[str(fld)] = tuple(x.strip() for x in labels)
    defaults = _plain_mapping(doc.get("defaults"), "defaults", name)
    values = {
        k: _plain_mapping(v, f"values.{k}", name)
        for k, v in _plain_mapping(doc.get("values"), "values", name, nested=True).items()
    }
    for section, fields in (("columns", columns), ("defaults", defaults), ("values", values)):
        bad = sorted(set(fields) - set(REPORT_FIELDS))
        if bad:
            raise InvalidInputError(
                f"{section} names unknown field(s) {', '.join(bad)}; "
                f"known: {', '.join(REPORT_FIELDS)}",
                file=name,
            )
    date_format = doc.get("date_format", ReportMapping.date_format)
    if not isinstance(date_format, str) or not date_format.strip():
        raise InvalidInputError("date_format must be a strftime format string", file=name)
    return ReportMapping(columns, date_format, defaults, values, name)


def _plain_mapping(value: Any, where: str, name: str, *, nested: bool = False) -> dict[str, Any]:
    """A mapping section of the column mapping, as texts (or mappings, ``nested``); None: {}."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(v, dict | None) if nested else isinstance(v, str | int | float | dt.date)
        for v in value.values()
    ):
        kind = "mappings" if nested else "texts"
        raise InvalidInputError(f"{where} must be a mapping of field names to {kind}", file=name)
    return {str(k): v if nested else str(v) for k, v in value.items()}


def map_report(
    header: list[str],
    columns: list[pa.Array],
    lines: np.ndarray,
    mapping: ReportMapping,
    *,
    file: str,
) -> CanonicalText:
    """Map the columns of a Kayako report CSV onto canonical ``tickets`` text.

    Args:
        header: Column labels as read (stripped).
        columns: Stripped text of each column, in header order.
        lines: Line of each row (header = line 1).
        mapping: The column mapping.
        file: Name of the report file, for messages.

    Returns:
        The rows. ``-- Unassigned --`` owners become blank; tags become comma-separated.

    Raises:
        InvalidInputError: A required field has no column (``creator`` may be given by
            ``defaults`` instead), naming the labels the mapping looks for.
    """
    index = {label: i for i, label in enumerate(header)}
    n = len(lines)
    text: dict[str, pa.Array] = {}
    source: dict[str, str] = {}
    for fld in REPORT_FIELDS:
        labels = mapping.columns.get(fld, ())
        found = next((label for label in labels if label in index), None)
        if found is not None:
            text[fld] = columns[index[found]]
            source[fld] = found
        elif fld in mapping.defaults:
            text[fld] = text_array(pa.repeat(mapping.defaults[fld], n))
            source[fld] = f"defaults.{fld}"
        elif fld in REPORT_REQUIRED or fld == "creator":
            wanted = " or ".join(repr(x) for x in labels) or "(none mapped)"
            extra = f" and {mapping.source} sets no defaults.{fld}" if fld == "creator" else ""
            raise InvalidInputError(
                f"report has no column for {fld}: {mapping.source} looks for {wanted}{extra}",
                file=file,
            )
        else:
            text[fld] = blank_column(n)
    for fld, table in mapping.translations.items():
        text[fld] = replace_known(text[fld], table)
    text["owner"] = pc.if_else(pc.equal(text["owner"], UNASSIGNED), "", text["owner"])
    text["tags"] = normalise_tags(text["tags"])
    used = set(source.values())
    ignored = [label for label in header if label not in used]
    notes = []
    if ignored:
        notes.append(f"ignored report column(s) not in the mapping: {', '.join(ignored)}")
    return CanonicalText(
        columns={k: text_array(v) for k, v in text.items()},
        lines=lines,
        rejects=no_rejects(),
        source_names=source,
        notes=tuple(notes),
    )
