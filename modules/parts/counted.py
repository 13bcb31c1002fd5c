"""Resources made once per item of a list. The stacks know their lists (plain lists): one
resource per item, addressed `<name>_<i>`. An exported module takes the list as a variable of
any length: the same construct code makes one resource, counted over the list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktn import Fn, Op, TerraformCount, Token

ORDINAL_WIDTH = 3  # `001`: how ElastiCache numbers a group's nodes, and the alarms after them


@dataclass(frozen=True)
class Item:
    """One item's resource (`count` None), or the counted resource standing for every item."""

    number: int
    count: TerraformCount | None = None

    def of(self, values: list[Any] | Any) -> Any:
        """This item's entry of a list of the same length (literal, or a list token)."""
        if self.count is None:
            return values[self.number]
        return Token.as_string(Fn.element(values, self.count.index))

    @property
    def label(self) -> str:
        """The item's number in names and tags."""
        return str(self.number) if self.count is None else Token.as_string(self.count.index)

    @property
    def ordinal(self) -> str:
        """The item's number from 1, zero-padded (`001`), in names."""
        if self.count is None:
            return f"{self.number + 1:0{ORDINAL_WIDTH}d}"
        return Token.as_string(Fn.format(f"%0{ORDINAL_WIDTH}d", [Op.add(Token.as_number(self.count.index), 1)]))


class Items:
    """The items a construct makes a resource for: a list, or a module's list variable."""

    def __init__(self, values: list[Any] | Any) -> None:
        self.values = values
        self.counted = Token.is_unresolved(values)

    def each(self) -> list[Item]:
        """An Item per item, or one counted Item."""
        if not self.counted:
            return [Item(i) for i in range(len(self.values))]
        return [Item(0, TerraformCount.of(Token.as_number(Fn.length_of(self.values))))]
