"""ipchange: business-hours, 48-hour-notice and fee rules for a help desk's IP change requests.

For analysts: ``load_requests("2026-11")`` is a period's requests as a DataFrame, every computed
field included; ``load_frames("2026-11")`` the typed tables that ``evaluate`` judges.

The public names below are imported on first use, not with the package: pandas, the business
calendar and the rules take about a second to import, and ``ipchange --help``, ``policy show``
or a report's parent process need none of them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ipchange_core.errors import InvalidInputError, IpchangeError, PolicyError

if TYPE_CHECKING:
    from ipchange_core.business_calendar import BusinessCalendar
    from ipchange_core.evaluation import evaluate
    from ipchange_core.policy import Policy, PolicySet, load_policy
    from ipchange_core.reports import load_frames, load_requests

__all__ = [
    "BusinessCalendar",
    "InvalidInputError",
    "IpchangeError",
    "Policy",
    "PolicyError",
    "PolicySet",
    "evaluate",
    "load_frames",
    "load_policy",
    "load_requests",
]
__version__ = "0.1.0"

_LAZY = {
    "BusinessCalendar": "ipchange_core.business_calendar",
    "Policy": "ipchange_core.policy",
    "PolicySet": "ipchange_core.policy",
    "evaluate": "ipchange_core.evaluation",
    "load_frames": "ipchange_core.reports",
    "load_policy": "ipchange_core.policy",
    "load_requests": "ipchange_core.reports",
}
"""Public name → the module that defines it."""


def __getattr__(name: str) -> object:
    """Import a public name from its module on first use (PEP 562)."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
