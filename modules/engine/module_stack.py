"""Provider-less Terraform: a provider requirement without a provider block, and module
variables and outputs under their own names.

CDKTF had these in `cdktf-tf-module-stack`, which has no CDK Terrain build; this is the
part the project uses. The export (modules/tools/export.py) drops the backend itself.
"""

from __future__ import annotations

from typing import Any

from cdktn import TerraformOutput, TerraformProvider, TerraformProviderGeneratorMetadata, TerraformVariable
from constructs import Construct


class ProviderRequirement(TerraformProvider):
    """`terraform.required_providers.<name>` only: no `provider` block. A module must not
    configure providers; in a stack, declared after the provider, it replaces the
    requirement the bindings would write."""

    def __init__(self, scope: Construct, name: str, version: str, source: str, *, id: str | None = None) -> None:
        super().__init__(scope, id or name, terraform_resource_type=name, terraform_provider_source=source,
                         terraform_generator_metadata=TerraformProviderGeneratorMetadata(
                             provider_name=name, provider_version_constraint=version))

    def to_terraform(self) -> Any:
        return {"terraform": super().to_terraform()["terraform"]}


class TFModuleVariable(TerraformVariable):
    """A variable named exactly `name` (not a construct-path id); an output may share the name."""

    def __init__(self, scope: Construct, name: str, **config: Any) -> None:
        super().__init__(scope, f"variable_{name}", **config)
        self.override_logical_id(name)


class TFModuleOutput(TerraformOutput):
    """An output named exactly `name` (not a construct-path id)."""

    def __init__(self, scope: Construct, name: str, **config: Any) -> None:
        super().__init__(scope, name, **config)
        self.override_logical_id(name)
