"""A switch that may be a module variable: a plain bool when the stacks are built from an
environment file, a Terraform value when the export hands the layer a variable."""

from __future__ import annotations

from typing import Any

from cdktn import Fn, Token


def pick(switch: bool | Any, when_on: str, when_off: str) -> str:
    """`when_on` or `when_off`: chosen now for a bool, by Terraform for a variable."""
    if isinstance(switch, bool):
        return when_on if switch else when_off
    return Token.as_string(Fn.conditional(switch, when_on, when_off))
