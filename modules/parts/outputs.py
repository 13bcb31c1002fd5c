"""Named, non-sensitive stack outputs for operators (beside cdktn's own cross-stack outputs)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdktn import TerraformOutput
from constructs import Construct


def publish(scope: Construct, outputs: Mapping[str, tuple[Any, str]]) -> None:
    """One output per `name: (value, description)`, addressed by its plain name.

    Values are identifiers, names, endpoints and ARNs — never secret values."""
    for name, (value, description) in outputs.items():
        output = TerraformOutput(scope, name, value=value, description=description, sensitive=False)
        output.override_logical_id(name)
