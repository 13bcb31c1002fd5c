"""The AWS account, partition and region a stack deploys into, resolved at plan time (no
credentials at synth), and the facts that differ between regions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from cdktn import Fn, TerraformLocal, TerraformStack, Token
from constructs import Construct
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_partition import DataAwsPartition

from modules.config.regions import REGIONS

REGION_TABLE = "regions"  # the Terraform local holding REGIONS in a stack whose region is the provider's


@dataclass(frozen=True)
class Account:
    id: str
    partition: str
    region: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.id}:{resource}"


def current_account(scope: Construct, region: str) -> Account:
    identity = DataAwsCallerIdentity(scope, "caller_identity")
    partition = DataAwsPartition(scope, "partition")
    return Account(id=identity.account_id, partition=partition.partition, region=region)


def region_table(scope: Construct) -> TerraformLocal:
    """REGIONS as the stack's local `regions` (made once per stack)."""
    stack = TerraformStack.of(scope)
    found = stack.node.try_find_child(REGION_TABLE)
    if isinstance(found, TerraformLocal):
        return found
    table = TerraformLocal(stack, REGION_TABLE, {name: {**asdict(region), "zones": list(region.zones)} for name, region in REGIONS.items()})
    table.override_logical_id(REGION_TABLE)
    return table


def region_fact(scope: Construct, region: str, fact: str) -> str:
    """A field of the region's REGIONS entry: the value itself for a region known at synth;
    for the provider's region (a token), a lookup in the stack's region table at plan."""
    if not Token.is_unresolved(region):
        return str(getattr(REGIONS[region], fact))
    return Token.as_string(Fn.lookup(Fn.lookup(region_table(scope).as_any_map, region), fact))
