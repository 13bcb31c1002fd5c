"""Where moto's server mode is not AWS: one row per difference, applied by name and reported.

A row rewrites an argument of the rehearsal copy before apply (the stack itself is right for
AWS), explains a plan change after apply (a false drift), allows one more destroy after a known
emulator race, or names a correction of the rehearsal's server (moto_corrected.py: a call moto
lacks or answers wrongly). No row leaves a resource out or deletes one behind Terraform. Anything
a row does not explain is a project defect. The README's table is `markdown_table()` (a test
keeps them equal).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modules.rehearsal.rewrite import replace_strings

Doc = dict[str, Any]
# moto ships these public parameters (moto/ssm/resources/ami-amazon-linux-latest/<region>.json.gz).
EMULATED_AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
# The public parameters the project reads that moto does not ship (the LLM layer's AMI_PARAMETER,
# kept equal by a test): only these are read as the emulated one, so a misspelt path still fails.
PUBLIC_PARAMETERS_NOT_EMULATED = frozenset({
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"})


@dataclass(frozen=True)
class Seeded:
    """What the emulator was seeded with, for the rewrites that need it."""

    certificate_arns: dict[str, str] = field(default_factory=dict)  # configured ARN -> emulator's
    account_id: str = "123456789012"


@dataclass(frozen=True)
class Difference:
    name: str
    resource_type: str
    symptom: str
    evidence: str
    rewrite: Callable[[Doc, Seeded], int] | None = None  # changes the copy; returns how many places
    # (type, changes {attribute: (before, after)}, before): True when the row explains the change
    drift: Callable[[str, dict[str, tuple[Any, Any]], dict[str, Any]], bool] | None = None
    # (error summary prefix, detail pattern): a destroy failing only with such errors is run once more
    retry_destroy: tuple[str, str] | None = None
    corrected: bool = False  # a moto bug fixed in the rehearsal's server (moto_corrected.CORRECTIONS)

    @property
    def handling(self) -> str:
        if self.corrected:
            return "corrected in the emulator"
        if self.retry_destroy:
            return "destroy run once more"
        return "rewritten in the copy" if self.rewrite else "plan change ignored"


def _certificate_arns(doc: Doc, seeded: Seeded) -> int:
    count = 0
    for configured, emulated in seeded.certificate_arns.items():
        for section in ("resource", "data", "locals", "output"):
            if section in doc:
                doc[section], n = replace_strings(doc[section], configured, emulated)
                count += n
    return count


LOG_DELIVERY = "logging.s3.amazonaws.com"


def _log_delivery_resource_as_string(doc: Doc, seeded: Seeded) -> int:
    count = 0
    for block in doc.get("resource", {}).get("aws_s3_bucket_policy", {}).values():
        policy = json.loads(block["policy"])
        for statement in policy["Statement"]:
            service = statement.get("Principal", {}).get("Service")
            if LOG_DELIVERY not in (service if isinstance(service, list) else [service]):
                continue
            for key, value in (("Resource", statement.get("Resource")), ("Principal", service)):
                if isinstance(value, list) and len(value) == 1:
                    if key == "Resource":
                        statement["Resource"] = value[0]
                    else:
                        statement["Principal"]["Service"] = value[0]
                    count += 1
        block["policy"] = json.dumps(policy)
    return count


def _public_ami_parameter(doc: Doc, seeded: Seeded) -> int:
    count = 0
    for block in doc.get("data", {}).get("aws_ssm_parameter", {}).values():
        if block.get("name") in PUBLIC_PARAMETERS_NOT_EMULATED:
            block["name"] = EMULATED_AMI_PARAMETER
            count += 1
    return count


def _backup_vaults_kept_on_destroy(doc: Doc, seeded: Seeded) -> int:
    vaults = [block for block in doc.get("resource", {}).get("aws_backup_vault", {}).values()
              if block.get("force_destroy")]
    for block in vaults:
        block["force_destroy"] = False  # an emulated vault never holds a recovery point
    return len(vaults)






def _dynamodb_replicas(doc: Doc, seeded: Seeded) -> int:
    """Rehearse global tables as single-region tables: drop their `replica` blocks."""
    tables = doc.get("resource", {}).get("aws_dynamodb_table", {}).values()
    return sum(table.pop("replica", None) is not None for table in tables)


def _empty(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_empty(v) for v in value.values())
    if isinstance(value, list):
        return all(_empty(v) for v in value)
    return value in (None, "", 0, False)


def _same(a: Any, b: Any) -> bool:
    """Equal, counting unset, empty and zero values (and blocks of only those) as one."""
    if _empty(a) and _empty(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return all(_same(a.get(k), b.get(k)) for k in set(a) | set(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _same_where_known(a: Any, b: Any, unknown: Any) -> bool:
    """Equal wherever the planned value is known: `unknown` is the plan's `after_unknown` for this
    value, `true` where a part is known only after apply (at any depth, e.g. a launch template
    version inside a group's mixed instances policy)."""
    if unknown is True:
        return True
    if isinstance(unknown, dict) and unknown and isinstance(b, dict) and isinstance(a, (dict, type(None))):
        a = a or {}
        return all(_same_where_known(a.get(k), b.get(k), unknown.get(k)) for k in set(a) | set(b))
    if isinstance(unknown, list) and unknown and isinstance(b, list) and isinstance(a, (list, type(None))):
        a = a or []
        if len(a) != len(b):
            return _same(a, b)
        return all(_same_where_known(x, y, unknown[i] if i < len(unknown) else None)
                   for i, (x, y) in enumerate(zip(a, b)))
    return _same(a, b)


def changes(before: dict[str, Any], after: dict[str, Any], unknown: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The attributes a plan really changes: known after apply, and not just unset versus empty.
    An attribute whose only differences are values known after apply is not a change of its
    own: it follows from a change elsewhere (the caller counts it as a consequence)."""
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after))
            if not _same_where_known(before.get(k), after.get(k), unknown.get(k))}


SG_RULE_TYPES = ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule")








def _performance_insights(type_: str, changed: dict[str, tuple[Any, Any]], before: dict[str, Any]) -> bool:
    return (type_ == "aws_db_instance" and bool(changed) and set(changed) <= {
        "performance_insights_enabled", "performance_insights_kms_key_id", "performance_insights_retention_period"}
        and all(not was for was, _ in changed.values()))


def _parameters_without_source(type_: str, changed: dict[str, tuple[Any, Any]], before: dict[str, Any]) -> bool:
    return type_ == "aws_db_parameter_group" and set(changed) == {"parameter"} and not changed["parameter"][0]


def _same_json(type_: str, changed: dict[str, tuple[Any, Any]], before: dict[str, Any]) -> bool:
    if type_ != "aws_sqs_queue" or set(changed) != {"redrive_policy"}:
        return False
    was, wanted = changed["redrive_policy"]
    try:
        return bool(was) and json.loads(was) == json.loads(wanted)
    except (TypeError, ValueError):
        return False








DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "acm-certificate-arn", "aws_acm_certificate (configured ARN)",
        "The environment's certificates are issued outside Terraform; an imported certificate cannot keep "
        "its ARN in moto, so the configured ARN is unknown there.",
        "moto/acm/models.py `import_certificate`: an ARN not already known raises CertificateNotFound; "
        "without one moto generates the ARN. The rehearsal imports a self-signed certificate per configured "
        "ARN and uses moto's ARN in the copy.",
        rewrite=_certificate_arns),
    Difference(
        "s3-log-delivery-policy-resource", "aws_s3_bucket_policy",
        "PutBucketLogging is refused when the target's log-delivery statement lists its Resource (or "
        "Service principal) as a one-element array.",
        "moto/s3/models.py `FakeBucket._log_permissions_enabled_policy` compares `Resource` and "
        "`Principal.Service` with `!=` against one string; AWS accepts a string or an array "
        "(IAM JSON policy reference, Resource element). The copy states the one value as a string.",
        rewrite=_log_delivery_resource_as_string),
    Difference(
        "ssm-public-ami-parameter", "data.aws_ssm_parameter",
        "The Deep Learning AMI's public parameter (/aws/service/deeplearning/…) is not found.",
        "moto/ssm/models.py loads only ami-amazon-linux-latest, ecs and global-infrastructure public "
        "parameters, and `put_parameter` refuses names starting with /aws (reserved). The copy reads "
        f"{EMULATED_AMI_PARAMETER} instead (an image moto's EC2 knows).",
        rewrite=_public_ami_parameter),
    Difference(
        "sg-rule-referenced-group-description", "aws_vpc_security_group_ingress_rule / _egress_rule",
        "A rule that references another security group reads back without its description: the plan "
        "after apply wants to add it again.",
        "moto/ec2/models/security_groups.py `SecurityGroupRule.description` returns "
        "`ip_range.get(\"Description\")`, and a rule with a referenced group has no IP range (its "
        "description is kept in the group pair); AWS returns the description of every rule (EC2 API, "
        "SecurityGroupRule.Description). The rehearsal's server reads the pair's description.",
        corrected=True),
    Difference(
        "autoscaling-group-settings", "aws_autoscaling_group",
        "The group reads back with `default_instance_warmup = 0` and without its instance maintenance policy: "
        "the plan after apply sets them again.",
        "moto/autoscaling (models.py, responses.py) has no DefaultInstanceWarmup or InstanceMaintenancePolicy: "
        "CreateAutoScalingGroup and UpdateAutoScalingGroup drop them and DescribeAutoScalingGroups never "
        "returns them; AWS returns what was set (Auto Scaling API, AutoScalingGroup.DefaultInstanceWarmup, "
        "InstanceMaintenancePolicy). The rehearsal's server keeps both.",
        corrected=True),
    Difference(
        "autoscaling-update-clears-mixed-instances-policy", "aws_autoscaling_group",
        "A group with an initial lifecycle hook reads back without its mixed instances policy: the plan "
        "after apply adds it again.",
        "With an initial lifecycle hook the provider creates the group at zero capacity, puts the hook, "
        "then sets the capacity with an UpdateAutoScalingGroup call that carries no MixedInstancesPolicy "
        "(internal/service/autoscaling/group.go, resourceGroupCreate); moto/autoscaling/models.py "
        "`FakeAutoScalingGroup.update` assigns the request's policy unconditionally, so the absent one "
        "clears it. AWS changes only the parameters an update names (Auto Scaling API, "
        "UpdateAutoScalingGroup). The rehearsal's server keeps the policy an update does not name.",
        corrected=True),
    Difference(
        "kms-replica-shares-primary-configuration", "aws_kms_key (multi-Region) / aws_kms_replica_key",
        "After the replica key is read, refreshing its primary fails: \"KMS Key (mrk-…) is not a "
        "multi-Region primary key\".",
        "moto/kms/models.py `replicate_key` copies the primary with a shallow `copy()`, so both keys share "
        "one MultiRegionConfiguration dict, and `describe_key` of the replica sets its MultiRegionKeyType "
        "to REPLICA in that shared dict. AWS keeps the primary PRIMARY (KMS API, MultiRegionConfiguration). "
        "The rehearsal's server gives each replica its own copy.",
        corrected=True),
    Difference(
        "backup-list-tags-path", "aws_backup_vault / aws_backup_plan",
        "A vault or plan reads back without its tags: the plan after apply adds the default tags again.",
        "moto/backup/responses.py `list_tags` takes the ARN as `self.path.split(\"/\")[-2]`, right only for "
        "a path ending in a slash (boto3 sends `GET /tags/<arn>/`); the provider's SDK sends `GET /tags/<arn>` "
        "(seen in the rehearsal's moto.log), so the ARN read is `tags` and the answer `{}`. AWS returns the "
        "resource's tags (AWS Backup API, ListTags). The rehearsal's server reads the segment after `tags`.",
        corrected=True),
    Difference(
        "ec2-requests-not-atomic", "aws_network_acl_rule (any EC2 resource)",
        "Now and then, under load, a network apply fails with NetworkAclEntryAlreadyExists for an entry the "
        "configuration declares once.",
        "moto/server.py serves each request on its own thread (werkzeug `threaded=True`) and the EC2 "
        "backend's dicts and lists change without a lock (moto/ec2/models/network_acls.py "
        "`create_network_acl_entry` checks for the rule number, then appends). AWS applies each request "
        "atomically. The rehearsal's server runs EC2 requests one at a time (the exact interleaving was "
        "not reproduced).",
        corrected=True),
    Difference(
        "ec2-rule-revoke-not-found", "aws_vpc_security_group_ingress_rule / _egress_rule",
        "Now and then a destroy fails: revoking a rule by its id answers InvalidPermission.NotFound for a "
        "rule the destroy's own refresh had just read.",
        "Seen once in nine network destroys, never on the same rule twice. moto's documentation says it "
        "does not support concurrent access (getmoto/moto#7166, 'Moto concurrency safety'), while its "
        "server answers on threads and Terraform deletes up to ten resources at once; a group's rules are "
        "a plain list that each revoke rebuilds (moto/ec2/models/security_groups.py "
        "`revoke_security_group_ingress`). AWS revokes a rule that exists. A second destroy refreshes "
        "the state (the rule is gone) and completes.",
        retry_destroy=("Error: deleting VPC Security Group Rule", r"InvalidPermission\.NotFound")),
    Difference(
        "autoscaling-policy-enabled", "aws_autoscaling_policy",
        "Every scaling policy reads back disabled and with an empty predictive block: the plan enables it "
        "and removes the block.",
        "moto/autoscaling/models.py `FakeScalingPolicy` keeps no Enabled flag (DescribePolicies omits it, so "
        "it reads false), and responses.py stores an absent PredictiveScalingConfiguration as `{}`; AWS keeps "
        "Enabled, true unless the request says false, and answers a predictive configuration only for a "
        "policy given one (Auto Scaling API, PutScalingPolicy, ScalingPolicy). The rehearsal's server does so.",
        corrected=True),
    Difference(
        "launch-template-own-tags", "aws_launch_template",
        "The template's own tags (resource type `launch-template`, from default_tags) read back as part of "
        "its data: the plan removes them, and a new version would follow.",
        "moto/ec2/responses/launch_templates.py `create_launch_template` appends the request's "
        "TagSpecifications into LaunchTemplateData.TagSpecifications; AWS tags the template itself and "
        "keeps them out of the version's data (EC2 API, CreateLaunchTemplate TagSpecifications). The "
        "rehearsal's server keeps them out.",
        corrected=True),
    Difference(
        "route53-private-zone-vpc", "aws_route53_zone",
        "A private zone (created with its VPC) reads back public and without the VPC: the plan adds the VPC "
        "again.",
        "moto/route53/responses.py `create_hosted_zone` keeps the VPC only when HostedZoneConfig.PrivateZone "
        "is true, which the provider does not send; on AWS a VPC in CreateHostedZone makes the zone private "
        "(Route 53 API, CreateHostedZone, VPC). The rehearsal's server does so.",
        corrected=True),
    Difference(
        "rds-performance-insights", "aws_db_instance",
        "The instance reads back with Performance Insights off (no key, 0 days): the plan turns it on again.",
        "moto/rds/models.py keeps no Performance Insights settings (no PerformanceInsights* field in "
        "`DBInstance`), so DescribeDBInstances reports it disabled; AWS returns what CreateDBInstance set "
        "(RDS API, DBInstance.PerformanceInsightsEnabled).",
        drift=_performance_insights),
    Difference(
        "rds-parameter-source", "aws_db_parameter_group",
        "The group's parameters read back empty: the plan sets every parameter again.",
        "moto/rds/responses.py `describe_db_parameters` returns the parameters as ModifyDBParameterGroup "
        "received them, without `Source` (and ignores the Source filter); the provider keeps only "
        "parameters whose Source is `user`, which AWS reports for every parameter a user set (RDS API, "
        "Parameter.Source).",
        drift=_parameters_without_source),
    Difference(
        "sfn-validate-definition", "aws_sfn_state_machine",
        "Creating a state machine fails: the provider first calls ValidateStateMachineDefinition, which "
        "moto does not implement (HTTP 500).",
        "moto/stepfunctions/responses.py has no `validate_state_machine_definition` (the provider's calls, "
        "TF_LOG=debug: ValidateStateMachineDefinition before CreateStateMachine). AWS answers OK or FAIL "
        "with diagnostics (Step Functions API, ValidateStateMachineDefinition). The rehearsal's server "
        "validates the definition's JSON, StartAt/States, state types, transition targets and terminal state.",
        corrected=True),
    Difference(
        "sfn-list-state-machine-versions", "aws_sfn_state_machine",
        "Reading a state machine fails: ListStateMachineVersions answers HTTP 500.",
        "moto/stepfunctions/responses.py has no `list_state_machine_versions`, which the provider calls on "
        "every read (TF_LOG=debug); AWS lists the published versions, newest first (Step Functions API, "
        "ListStateMachineVersions). The rehearsal's server lists moto's own versions of the machine.",
        corrected=True),
    Difference(
        "appautoscaling-tags", "aws_appautoscaling_target",
        "Reading a scalable target fails: ListTagsForResource answers HTTP 500.",
        "moto/applicationautoscaling/responses.py implements targets, policies and scheduled actions but "
        "no tagging (no TagResource/ListTagsForResource/UntagResource, and RegisterScalableTarget drops Tags); "
        "the provider lists a target's tags on every read. AWS tags scalable targets (Application Auto Scaling "
        "API, TagResource, ListTagsForResource, UntagResource). The rehearsal's server keeps the tags per "
        "target ARN (unknown ARN: ResourceNotFoundException; at most 50).",
        corrected=True),
    Difference(
        "apigatewayv2-domain-status", "aws_apigatewayv2_domain_name",
        "Creating a custom domain waits for status AVAILABLE and fails on an empty status; once created, "
        "it reads back with an empty mutual TLS block, which the plan removes.",
        "moto/apigatewayv2/models.py `DomainName.to_json` has no DomainNameStatus (nor the regional endpoint's "
        "ApiGatewayDomainName and HostedZoneId) and answers MutualTlsAuthentication `{}` when none was "
        "configured; AWS reports AVAILABLE with the endpoint and omits an absent mutual TLS (API Gateway v2 "
        "API, DomainName, DomainNameConfiguration). The rehearsal's server answers so; the API mappings are "
        "moto's own.",
        corrected=True),
    Difference(
        "kms-multi-region-ciphertext", "aws_kms_key (multi-Region) / aws_kms_replica_key",
        "Decrypting a data key generated under a multi-Region key fails with AccessDeniedException (the "
        "realtime history check of prod-us).",
        "moto/kms/utils.py packs the key id into a 36-byte ciphertext header (KEY_ID_LEN = 36), so a "
        "multi-Region key's 40-character `mrk-…` id is cut short and `decrypt` finds no such key; AWS "
        "decrypts with the key the ciphertext names, in the primary's or a replica's region (KMS API, "
        "Decrypt; KMS developer guide, multi-Region keys). The rehearsal's server packs 40 bytes.",
        corrected=True),
    Difference(
        "secretsmanager-replica-kms-key", "aws_secretsmanager_secret (replica)",
        "A replicated secret's replica reads back with the AWS managed key: the plan sets the replica's "
        "KMS key again.",
        "moto/secretsmanager/models.py `ReplicaSecret.config` reports KmsKeyId `alias/aws/secretsmanager` "
        "whatever AddReplicaRegions gave; AWS's DescribeSecret reports the replica's key as set (Secrets "
        "Manager API, DescribeSecret ReplicationStatus, ReplicationStatusType.KmsKeyId). The rehearsal's "
        "server keeps the requested key.",
        corrected=True),
    Difference(
        "kms-replicate-key-request", "aws_kms_replica_key",
        "Creating a replica key times out waiting for its policy, then for its tags; once created, the plan "
        "changes its description back to its own.",
        "moto/kms/responses.py `replicate_key` reads only KeyId and ReplicaRegion and the backend copies the "
        "primary key (description and policy included) without tags, while the provider passes the replica's "
        "Description, Policy and Tags (default tags included) and waits until the replica's policy and tags "
        "are as configured (internal/service/kms/replica_key.go); AWS gives the replica what the request says "
        "(KMS API, ReplicateKey). The rehearsal's server applies them in the replica's region.",
        corrected=True),
    Difference(
        "dynamodb-global-table-replicas", "aws_dynamodb_table (replica)",
        "Creating a table with a replica never completes: the provider waits for a replica that never "
        "appears, up to its 30-minute timeout.",
        "moto/dynamodb/responses.py `update_table` reads no ReplicaUpdates (moto has no global tables of "
        "version 2019.11.21), so DescribeTable never lists the replica; the provider adds replicas with "
        "UpdateTable after the table is created and waits for each to be ACTIVE "
        "(internal/service/dynamodb/table.go, createReplicas). AWS creates them (DynamoDB global tables). "
        "The copy drops the tables' `replica` blocks: replicas are not rehearsed (their region's KMS "
        "replica key is).",
        rewrite=_dynamodb_replicas),
    Difference(
        "ecr-pull-through-cache-rule", "aws_ecr_pull_through_cache_rule",
        "Creating a pull-through cache rule fails: moto has no CreatePullThroughCacheRule.",
        "moto/ecr/responses.py has no `create_pull_through_cache_rule` (nor describe/delete) in moto 5.2; "
        "AWS has (ECR API, CreatePullThroughCacheRule, DescribePullThroughCacheRules, "
        "DeletePullThroughCacheRule). The rehearsal's server keeps the rules, checking the prefix, the "
        "upstream and, for Docker Hub/GitHub/GitLab, an `ecr-pullthroughcache/` credential. Pulls through "
        "the cache are not rehearsed (the rehearsal pulls no image).",
        corrected=True),
    Difference(
        "cloudwatch-composite-alarm", "aws_cloudwatch_composite_alarm",
        "Creating a composite alarm fails: PutCompositeAlarm answers HTTP 500.",
        "moto/cloudwatch/responses.py has no `put_composite_alarm` (its PutMetricAlarm stores an AlarmRule) "
        "and DescribeAlarms ignores AlarmTypes; AWS creates composite alarms and describes metric alarms only "
        "unless AlarmTypes asks otherwise (CloudWatch API, PutCompositeAlarm, DescribeAlarms). The "
        "rehearsal's server checks the rule (length, existing alarms) and stores it through PutMetricAlarm.",
        corrected=True),
    Difference(
        "ecs-service-settings", "aws_ecs_service",
        "The service reads back without its capacity provider strategy (and ECS Exec, managed tags, health "
        "check grace period): the plan replaces it (replace_paths: capacity_provider_strategy).",
        "moto/ecs/responses.py `create_service` reads none of capacityProviderStrategy, enableExecuteCommand, "
        "enableECSManagedTags, healthCheckGracePeriodSeconds or availabilityZoneRebalancing; AWS returns them "
        "(ECS API, CreateService, Service). The rehearsal's server keeps them, and no launch type beside a "
        "capacity provider strategy.",
        corrected=True),
    Difference(
        "ecs-fargate-container-memory", "aws_ecs_task_definition",
        "RunTask of a Fargate task whose container sets no memory of its own (the proxy's migration task, "
        "run by `pipeline apply`) fails with a server error.",
        "moto/ecs/models.py `_calculate_task_resource_requirements` adds each container's `memory` to a sum "
        "and fails on None; AWS makes container memory optional on Fargate (ECS API, ContainerDefinition). "
        "The rehearsal's server counts a container without one as 0.",
        corrected=True),
    Difference(
        "lambda-logging-config", "aws_lambda_function",
        "Functions read back without their logging configuration (JSON format, log group): the plan sets "
        "it again.",
        "moto/awslambda/models.py keeps no LoggingConfig (CreateFunction drops it, GetFunction omits it); "
        "AWS returns it, its log group defaulting to /aws/lambda/<name> and its format to Text (Lambda API, "
        "FunctionConfiguration.LoggingConfig, LoggingConfig). The rehearsal's server keeps it on create and "
        "update.",
        corrected=True),
    Difference(
        "sqs-redrive-policy-format", "aws_sqs_queue",
        "The redrive policy reads back as the same JSON with other spacing: the plan rewrites it "
        "(\"whitespace changes\").",
        "moto/sqs/models.py returns `json.dumps(self.redrive_policy)` (Python's spaced separators) while "
        "the provider compares with its compact normal form of the configured JSON; the documents are equal.",
        drift=_same_json),
    Difference(
        "elasticache-replication-group-delete", "aws_elasticache_replication_group",
        "Destroy waits up to 40 minutes: a deleted replication group stays `deleting` for ever.",
        "moto/elasticache/models.py `delete_replication_group` sets the status to `deleting` and never "
        "removes the group, while the provider waits for it to disappear; AWS deletes it and its member "
        "clusters (ElastiCache API, DeleteReplicationGroup). The rehearsal's server answers `deleting`, then "
        "the group and its members are gone.",
        corrected=True),
    Difference(
        "elasticache-subnet-group-delete", "aws_elasticache_subnet_group",
        "Destroy fails: DeleteCacheSubnetGroup answers HTTP 500.",
        "moto/elasticache/responses.py has no `delete_cache_subnet_group`; AWS deletes a subnet group no "
        "cluster uses (ElastiCache API, DeleteCacheSubnetGroup: CacheSubnetGroupInUse, "
        "CacheSubnetGroupNotFoundFault). The rehearsal's server does, with both errors.",
        corrected=True),
    Difference(
        "cognito-resource-server-delete", "aws_cognito_resource_server",
        "Destroy fails: DeleteResourceServer answers HTTP 500.",
        "moto/cognitoidp/responses.py implements CreateResourceServer and DescribeResourceServer but no "
        "`delete_resource_server`; AWS has (Cognito API, DeleteResourceServer). The rehearsal's server "
        "deletes it (unknown pool or identifier: ResourceNotFoundException).",
        corrected=True),
    Difference(
        "backup-selection", "aws_backup_selection",
        "Creating a backup selection fails: CreateBackupSelection answers HTTP 500.",
        "moto/backup/responses.py implements plans, vaults and vault lock but no backup selections "
        "(moto_server: \"The create_backup_selection action has not been implemented\"); AWS has (AWS Backup "
        "API, CreateBackupSelection, GetBackupSelection, ListBackupSelections, DeleteBackupSelection; "
        "DeleteBackupPlan refuses while selections remain). The rehearsal's server keeps them per plan.",
        corrected=True),
    Difference(
        "backup-vault-force-destroy", "aws_backup_vault (force_destroy)",
        "Destroying a vault with force_destroy fails: ListRecoveryPointsByBackupVault answers HTTP 404.",
        "The provider lists and deletes a vault's recovery points before deleting it when force_destroy is "
        "set (internal/service/backup/vault.go); moto/backup/urls.py has no recovery-points route. An emulated "
        "vault never holds one, so the copy destroys it without emptying it first.",
        rewrite=_backup_vaults_kept_on_destroy),
    Difference(
        "logs-query-definition", "aws_cloudwatch_query_definition",
        "Creating a saved Logs Insights query fails: PutQueryDefinition answers HTTP 500.",
        "moto/logs/responses.py has no `put_query_definition` (moto_server: \"The put_query_definition action "
        "has not been implemented\"), nor Describe/DeleteQueryDefinition; AWS has (CloudWatch Logs API, "
        "PutQueryDefinition, DescribeQueryDefinitions, DeleteQueryDefinition). The rehearsal's server keeps "
        "them; their fields are also tested against log samples.",
        corrected=True),
    Difference(
        "elasticache-member-clusters", "aws_elasticache_replication_group",
        "Reading the new replication group fails: `CacheClusterNotFound` for its member `<group>-001`; "
        "created by hand, the members read back without at-rest encryption or security groups, and one "
        "member stands for two: the plan replaces the group.",
        "moto/elasticache/models.py `ReplicationGroup` lists member cluster ids (`<group>-001`, …) but never "
        "creates those cache clusters (`describe_cache_clusters` looks only at created ones), and "
        "`_set_node_members_clusters_disabled` counts them from ReplicasPerNodeGroup, ignoring "
        "NumCacheClusters; the provider reads at-rest encryption and security groups from the first member. "
        "On AWS the members exist with the group's settings (ElastiCache API, CreateReplicationGroup, "
        "ReplicationGroup.MemberClusters). The rehearsal's server creates them with the group.",
        corrected=True),
)


def by_name(name: str) -> Difference:
    return next(d for d in DIFFERENCES if d.name == name)


def apply_rewrites(doc: Doc, seeded: Seeded) -> list[str]:
    """Apply every rewrite row to the copy; one note per row that changed something."""
    notes = []
    for row in DIFFERENCES:
        if row.rewrite:
            count = row.rewrite(doc, seeded)
            if count:
                notes.append(f"emulator difference {row.name}: {count} place(s) rewritten")
    return notes


def destroy_retry(errors: list[str], output: str) -> Difference | None:
    """The row allowing one more destroy: every error of the failed one is of its kind."""
    return next((row for row in DIFFERENCES if row.retry_destroy and errors
                 and all(error.startswith(row.retry_destroy[0]) for error in errors)
                 and re.search(row.retry_destroy[1], output)), None)


def explain_drift(resource_type: str, changed: dict[str, tuple[Any, Any]],
                  before: dict[str, Any]) -> tuple[Difference, ...]:
    """The rows explaining a plan change of a resource (its `changes()`), attribute by attribute:
    empty unless every changed attribute is explained (one resource can show two differences)."""
    rows: list[Difference] = []
    for key, change in changed.items():
        row = next((r for r in DIFFERENCES if r.drift and r.drift(resource_type, {key: change}, before)), None)
        if row is None:
            return ()
        rows.append(row)
    return tuple(dict.fromkeys(rows))


def markdown_table() -> str:
    lines = ["| name | resource type | symptom on moto | evidence | handling |", "|---|---|---|---|---|"]
    for row in DIFFERENCES:
        cells = [f"`{row.name}`", f"`{row.resource_type}`", row.symptom, row.evidence, row.handling]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
