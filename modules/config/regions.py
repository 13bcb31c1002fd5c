"""The commercial regions the platform runs in, and the facts that differ between them.

A region qualifies when Amazon Bedrock serves a geographic cross-region inference profile
there (the gateway's routes go through one), beside the services every region has (VPC,
ECS Fargate, RDS, ElastiCache, DynamoDB, Lambda, API Gateway WebSockets, Cognito, WAF).
Sources:
- geographies and their source regions: Amazon Bedrock user guide, "Supported Regions and
  models for inference profiles" (docs.aws.amazon.com/bedrock/latest/userguide/
  inference-profiles-support.html), as the AWS CDK encodes them (@aws-cdk/aws-bedrock-alpha
  CrossRegionInferenceProfileRegion: us-*, eu-*, and apac for ap-* and me-central-1);
- ELB log-delivery accounts: the regions opened before August 2022 deliver access logs as an
  Elastic Load Balancing account of the region (the provider's aws_elb_service_account map);
  later ones as the service principal logdelivery.elasticloadbalancing.amazonaws.com
  (Elastic Load Balancing user guide, "Enable access logs for your Application Load Balancer");
- zones: the zone names the region offers new accounts (AWS "Regions and Zones").

The environment files are checked against this table; an exported module carries it as the
Terraform local `regions` and reads its facts for the provider's region at plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Region:
    zones: tuple[str, ...]
    bedrock_geography: str  # prefix of the region's geographic inference profiles ("eu.anthropic…")
    elb_account: str = ""   # ELB's log-delivery account; "": the service principal delivers


def _zones(region: str, letters: str = "abc") -> tuple[str, ...]:
    return tuple(f"{region}{letter}" for letter in letters)


REGIONS: dict[str, Region] = {
    "eu-west-1": Region(_zones("eu-west-1"), "eu", "156460612806"),
    "eu-west-2": Region(_zones("eu-west-2"), "eu", "652711504416"),
    "eu-west-3": Region(_zones("eu-west-3"), "eu", "009996457667"),
    "eu-central-1": Region(_zones("eu-central-1"), "eu", "054676820928"),
    "eu-central-2": Region(_zones("eu-central-2"), "eu"),
    "eu-north-1": Region(_zones("eu-north-1"), "eu", "897822967062"),
    "eu-south-1": Region(_zones("eu-south-1"), "eu", "635631232127"),
    "eu-south-2": Region(_zones("eu-south-2"), "eu"),
    "us-east-1": Region(_zones("us-east-1", "abcdf"), "us", "127311923021"),
    "us-east-2": Region(_zones("us-east-2"), "us", "033677994240"),
    "us-west-1": Region(_zones("us-west-1"), "us", "027434742980"),
    "us-west-2": Region(_zones("us-west-2", "abcd"), "us", "797873946194"),
    "ap-northeast-1": Region(_zones("ap-northeast-1", "acd"), "apac", "582318560864"),
    "ap-northeast-2": Region(_zones("ap-northeast-2", "abcd"), "apac", "600734575887"),
    "ap-northeast-3": Region(_zones("ap-northeast-3"), "apac", "383597477331"),
    "ap-south-1": Region(_zones("ap-south-1"), "apac", "718504428378"),
    "ap-south-2": Region(_zones("ap-south-2"), "apac"),
    "ap-southeast-1": Region(_zones("ap-southeast-1"), "apac", "114774131450"),
    "ap-southeast-2": Region(_zones("ap-southeast-2"), "apac", "783225319266"),
    "ap-southeast-3": Region(_zones("ap-southeast-3"), "apac"),
    "ap-southeast-4": Region(_zones("ap-southeast-4"), "apac"),
    "ap-southeast-5": Region(_zones("ap-southeast-5"), "apac"),
    "ap-southeast-7": Region(_zones("ap-southeast-7"), "apac"),
    "ap-east-2": Region(_zones("ap-east-2"), "apac"),
    "me-central-1": Region(_zones("me-central-1"), "apac"),
}
