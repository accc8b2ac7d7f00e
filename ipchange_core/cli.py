"""The ``ipchange`` command: ingest, export, demo data and policy (exit codes 0 / 1 / 2)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from ipchange_core.errors import IpchangeError
from ipchange_core.policy import PolicySet, load_policy

EXIT_OK, EXIT_REJECTS, EXIT_FATAL = 0, 1, 2


class FatalError(click.ClickException):
    """A usage or input error reported as one line, exit code 2."""

    exit_code = EXIT_FATAL


class _Group(click.Group):
    """Turns the package's own errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except IpchangeError as exc:
            raise FatalError(str(exc)) from None


def policy_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--policy FILE`` (env ``IPCHANGE_POLICY``) and pass the loaded policy as ``policy``."""

    @click.option(
        "--policy",
        "policy_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="IPCHANGE_POLICY",
        help="Policy YAML extending the default (env IPCHANGE_POLICY).",
    )
    @functools.wraps(command)
    def wrapper(*args: Any, policy_file: Path | None, **kwargs: Any) -> Any:
        return command(*args, policy=load_policy(policy_file), **kwargs)

    return wrapper


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ipchange")
def main() -> None:
    """Reports and SLA analytics for a help desk's IP change requests.

    Exit codes: 0 ok, 1 rejected rows present, 2 usage or fatal input error.
    """


@main.group(cls=_Group)
def policy() -> None:
    """Show or check the policy (the procedure's rules as data)."""


@policy.command("show")
@policy_option
def policy_show(policy: PolicySet) -> None:
    """Print every resolved policy version as YAML."""
    click.echo(yaml.safe_dump(policy.as_dict(), sort_keys=False, allow_unicode=True), nl=False)


@policy.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def policy_check(file: Path) -> None:
    """Validate a policy FILE; exit 2 with the key and the problem when it is invalid."""
    checked = load_policy(file)
    for p in checked.versions:
        click.echo(
            f"ok  {p.version:<12} from {p.effective_from}  {p.timezone}  "
            f"notice < {p.threshold_hours:g} {p.notice_measure} h  "
            f"fee {p.fee_cents / 100:.2f} {p.currency}"
        )
