"""ipchange: business-hours, 48-hour-notice and fee rules for a help desk's IP change requests."""

from ipchange_core.business_calendar import BusinessCalendar
from ipchange_core.errors import InvalidInputError, IpchangeError, PolicyError
from ipchange_core.evaluate import evaluate
from ipchange_core.policy import Policy, PolicySet, load_policy

__all__ = [
    "BusinessCalendar",
    "InvalidInputError",
    "IpchangeError",
    "Policy",
    "PolicyError",
    "PolicySet",
    "evaluate",
    "load_policy",
]
__version__ = "0.1.0"
