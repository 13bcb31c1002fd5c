"""Resources made once per zone. The stacks know their zones (a plain list): one resource per
zone, addressed `<name>_<i>`. An exported module takes the zones as a variable of any length:
the same construct code makes one resource, `<name>_0`, counted over the list
(modules.parts.counted, with what only zones need: one NAT gateway for all)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktn import Fn, TerraformCount, TerraformResource, Token

from modules.parts.counted import Item, Items
from modules.parts.switch import address


@dataclass(frozen=True)
class Zone(Item):
    """One zone's resource (`count` None), or the counted resource standing for every zone."""

    def round(self, resources: list[TerraformResource], name: str) -> str:
        """`name` of the resource serving this zone where there may be fewer than zones (one
        NAT gateway for all): round the list, as Terraform's `element` does."""
        if self.count is None:
            return Token.as_string(resources[self.number % len(resources)].get_string_attribute(name))
        return f"${{element({address(resources[0])}[*].{name}, count.index)}}"

    def own(self, resource: TerraformResource, name: str) -> str:
        """`name` of this zone's instance of another per-zone resource."""
        if self.count is None:
            return Token.as_string(resource.get_string_attribute(name))
        return f"${{{address(resource)}[count.index].{name}}}"


class Zones(Items):
    """The zones a construct spreads over: a list of names, or a module's list variable."""

    def __init__(self, names: list[str] | Any) -> None:
        super().__init__(names)
        self.names = names

    def each(self, first_only: bool | Any = False) -> list[Zone]:
        """A Zone per zone (the first only, while `first_only`), or one counted Zone."""
        if not self.counted:
            return [Zone(i) for i in range(1 if first_only is True else len(self.names))]
        length = Fn.length_of(self.names)
        if not isinstance(first_only, bool):
            length = Fn.conditional(first_only, 1, length)
        elif first_only:
            length = 1
        return [Zone(0, TerraformCount.of(Token.as_number(length)))]

    def all(self, resources: list[TerraformResource], name: str) -> list[str]:
        """`name` of every zone's resource, in zone order."""
        if not self.counted:
            return [Token.as_string(r.get_string_attribute(name)) for r in resources]
        return Token.as_list(f"${{{address(resources[0])}[*].{name}}}")

    def spread(self, resources: list[TerraformResource], name: str, zonal: TerraformResource) -> list[str]:
        """`name` of the resource serving each zone when there may be fewer than zones (one NAT
        gateway for all): round the list, as Terraform's `element` does. `zonal` is a per-zone
        resource, whose count is the zones'."""
        if not self.counted:
            values = self.all(resources, name)
            return [values[i % len(values)] for i in range(len(self.names))]
        return Token.as_list(f"${{[for i in range(length({address(zonal)})) : "
                             f"element({address(resources[0])}[*].{name}, i)]}}")
