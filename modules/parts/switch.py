"""A switch that may be a module variable: a plain bool when the stacks are built from an
environment file, a Terraform value when the export hands the layer a variable."""

from __future__ import annotations

from typing import Any

from cdktn import Fn, TerraformLocal, TerraformResource, Token
from constructs import Construct


def pick(switch: bool | Any, when_on: str, when_off: str) -> str:
    """`when_on` or `when_off`: chosen now for a bool, by Terraform for a variable."""
    if isinstance(switch, bool):
        return when_on if switch else when_off
    return Token.as_string(Fn.conditional(switch, when_on, when_off))


def pick_text(scope: Construct, id: str, switch: bool | Any, when_on: str, when_off: str) -> str:
    """`pick` for long text with quotes (a JSON document): Terraform picks between two locals,
    since an expression cannot hold the text inline."""
    if isinstance(switch, bool):
        return when_on if switch else when_off
    on, off = TerraformLocal(scope, f"{id}_on", when_on), TerraformLocal(scope, f"{id}_off", when_off)
    return Token.as_string(Fn.conditional(switch, on.as_string, off.as_string))


def pick_number(switch: bool | Any, when_on: int, when_off: int) -> int | Any:
    """`pick` for a number argument."""
    if isinstance(switch, bool):
        return when_on if switch else when_off
    return Token.as_number(Fn.conditional(switch, when_on, when_off))


def negate(switch: bool | Any) -> bool | Any:
    """The switch's opposite, for an argument that says the reverse (skip_final_snapshot)."""
    if isinstance(switch, bool):
        return not switch
    return Fn.conditional(switch, False, True)


def pick_or_none(switch: bool | Any, when_on: Any) -> Any:
    """`when_on`, or no value (null) while the switch is off."""
    if isinstance(switch, bool):
        return when_on if switch else None
    chosen = Fn.conditional(switch, when_on, None)
    return Token.as_string(chosen) if isinstance(when_on, str) else chosen


def built(switch: bool | Any) -> bool:
    """Whether to build a resource at all: only a False decided now leaves it out; a variable
    builds it and lets `only_if` count it."""
    return not isinstance(switch, bool) or switch


def only_if(resource: TerraformResource, switch: bool | Any, *, unless: bool = False) -> None:
    """Terraform creates `resource` only while the variable is on (off with `unless`): `count`
    0 or 1. A bool switch was decided when the resource was built (see `built`)."""
    if not isinstance(switch, bool):
        resource.add_override("count", Fn.conditional(switch, 0 if unless else 1, 1 if unless else 0))


def address(resource: TerraformResource) -> str:
    """The resource's address in its module (`aws_vpc.network_vpc_4E8F0223`), for expressions
    cdktn's tokens cannot write (splats of a counted resource)."""
    return f"{resource.terraform_resource_type}.{resource.friendly_unique_id}"


def attribute(resource: TerraformResource, name: str, switch: bool | Any, *, fallback: TerraformResource | None = None
              ) -> str:
    """`name` of a resource `only_if` may leave out: in Terraform, null while it is off, or the
    `fallback` resource's instead."""
    if isinstance(switch, bool):
        return Token.as_string(resource.get_string_attribute(name))
    if fallback is not None:
        return f"${{concat({address(resource)}[*].{name}, [{address(fallback)}.{name}])[0]}}"
    return f"${{one({address(resource)}[*].{name})}}"


def major_version(version: str) -> str:
    """`16` of `16.4`: now for a literal, by Terraform for a variable."""
    if Token.is_unresolved(version):
        return Token.as_string(Fn.element(Fn.split(".", version), 0))
    return version.split(".")[0]


def attribute_or(resource: TerraformResource, name: str, switch: bool | Any, otherwise: str) -> str:
    """`name` of a resource `only_if` may leave out while the switch is on, `otherwise` while it
    is off. (Through a local: an expression token cannot hold the splat `attribute` writes.)"""
    if isinstance(switch, bool):
        return Token.as_string(resource.get_string_attribute(name)) if switch else otherwise
    scope = resource.node.scope
    assert scope is not None
    local = TerraformLocal(scope, f"{resource.node.id}_{name}_if_created", attribute(resource, name, switch))
    return Token.as_string(Fn.conditional(switch, local.as_string, otherwise))
