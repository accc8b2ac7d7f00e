"""Configuration YAML (the policy, a report column mapping) read as untrusted text.

``yaml.safe_load`` builds no objects but plain data, yet a hand-written file can still stop it
with something other than :class:`yaml.YAMLError`: an impossible date (``2026-13-01``,
``2026-02-30``) raises ``ValueError`` from ``datetime``, an integer of more than 4,300 digits
raises ``ValueError`` from ``int``, nesting a few hundred levels deep raises ``RecursionError``.
And aliases of aliases (a "billion laughs" file) are small in memory but expand to billions of
values for any code that walks or prints them. :func:`load_config_yaml` turns each of these into
a :class:`yaml.YAMLError` (so a caller's one ``except`` names the file), keeps an impossible date
or an over-long integer as its text (so the key's own check names it), and refuses a document
that expands to more than :data:`MAX_VALUES` values.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

MAX_VALUES = 100_000
"""Most values (scalars, lists, mappings) a configuration file may expand to, aliases expanded."""


class ConfigYamlError(yaml.YAMLError):
    """A configuration YAML the reader refuses although PyYAML could parse it (or crashed)."""


class _Loader(yaml.SafeLoader):
    """The safe loader, keeping a scalar it cannot convert (impossible date, huge int) as text."""


def _scalar_or_text(convert: Any) -> Any:
    def construct(loader: _Loader, node: yaml.ScalarNode) -> Any:
        try:
            return convert(loader, node)
        except ValueError:  # 2026-13-01, 2026-02-30, 10**5000: the key's own check names it
            return loader.construct_scalar(node)

    return construct


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", _scalar_or_text(yaml.SafeLoader.construct_yaml_timestamp)
)
_Loader.add_constructor(
    "tag:yaml.org,2002:int", _scalar_or_text(yaml.SafeLoader.construct_yaml_int)
)
_Loader.add_constructor(
    "tag:yaml.org,2002:float", _scalar_or_text(yaml.SafeLoader.construct_yaml_float)
)


def _expanded_size(node: yaml.Node) -> int:
    """Values ``node`` stands for with every alias expanded, counted without expanding them.

    Each node object is counted once (an alias is the same node object again), iteratively: no
    recursion for a deeply nested file. An alias inside its own anchor counts as too many.
    """
    sizes: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(node, False)]
    while stack:
        current, children_done = stack.pop()
        if id(current) in sizes:
            continue
        if not children_done and id(current) in entered:
            return MAX_VALUES + 1  # an alias inside its own anchor: expands without end
        entered.add(id(current))
        children = _children(current)
        if children_done or not children:
            sizes[id(current)] = min(
                1 + sum(sizes.get(id(child), 0) for child in children), MAX_VALUES + 1
            )
            continue
        stack.append((current, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(node)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_config_yaml(text: str) -> Any:
    """Parse one configuration YAML document into plain data.

    Args:
        text: The file's text.

    Returns:
        The document (None for an empty file). Dates are ``datetime.date`` (or ``datetime`` with
        a time); a date or integer that cannot exist is kept as its text.

    Raises:
        ConfigYamlError: (a :class:`yaml.YAMLError`) Not YAML, nested too deeply, or more than
            :data:`MAX_VALUES` values once its aliases are expanded; the message is one line
            with the line and column where PyYAML knows them.
    """
    try:
        return _load(text)
    except RecursionError:
        raise ConfigYamlError("nested too deeply") from None
    except ConfigYamlError:
        raise
    except yaml.MarkedYAMLError as exc:  # PyYAML quotes the line under its message: one line
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigYamlError(f"{exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:  # the reader's: a character YAML does not allow
        raise ConfigYamlError(" ".join(str(exc).split())) from None
    except (ValueError, TypeError, AttributeError, LookupError, OverflowError) as exc:  # "!!bool x"
        raise ConfigYamlError(f"a value YAML cannot build ({type(exc).__name__}: {exc})") from None


def _load(text: str) -> Any:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node) > MAX_VALUES:
            raise ConfigYamlError(
                f"expands to more than {MAX_VALUES:,} values (aliases of aliases?)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = 60
_BRIEF.maxother = 60
_BRIEF.maxlevel = 3


def brief(value: object) -> str:
    """A short ``repr`` of a configuration value for a message (long, deep or huge values cut)."""
    return _BRIEF.repr(value)
