"""The AWS account and partition a stack deploys into, resolved at plan time (no credentials at synth)."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from cdktn_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktn_provider_aws.data_aws_partition import DataAwsPartition


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
