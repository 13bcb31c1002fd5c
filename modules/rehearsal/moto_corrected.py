"""moto's server with the corrections the emulator-difference table lists as "corrected in
the emulator": bugs of moto itself that no rewrite of a stack can route around, and calls
moto lacks, each added here so the emulator answers as AWS documents (each docstring names
the API reference page it follows). Run as a script (the rehearsal's server process):
`python moto_corrected.py -H 127.0.0.1 -p PORT`. Imports only moto.

moto's server answers on threads: state added here lives on moto's own backend objects
(reset with them) and is changed only under `_LOCK`.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import threading
import time
import uuid
from typing import Any, Callable

_LOCK = threading.RLock()


def _added(backend: Any, name: str) -> dict[str, Any]:
    """A table this module keeps on one of moto's backends (one account and region)."""
    with _LOCK:
        return backend.__dict__.setdefault(f"_rehearsal_{name}", {})  # type: ignore[no-any-return]


def _fail(code: str, message: str, service: str | None = None) -> Exception:
    """The error AWS answers: `service`'s own exception base for the services moto serializes
    from their model (ElastiCache, CloudWatch, ECR, ECS), a JSON error for the others."""
    if service is None:
        from moto.core.exceptions import JsonRESTError

        return JsonRESTError(code, message)
    import importlib

    base = {"elasticache": "ElastiCacheException", "cloudwatch": "CloudWatchException", "ecr": "ValidationException",
            "ecs": "InvalidParameterException"}
    module = importlib.import_module(f"moto.{service}.exceptions")
    error = type(code, (getattr(module, base[service]),), {"code": code, "__module__": module.__name__})
    return error(message)  # type: ignore[no-any-return]


def kms_replica_owns_its_configuration() -> None:
    """ReplicateKey copies the primary key shallowly, so primary and replica share one
    MultiRegionConfiguration and DescribeKey on the replica turns the primary into a REPLICA.
    AWS keeps the primary's type PRIMARY (KMS API, MultiRegionConfiguration)."""
    from moto.kms.models import KmsBackend

    replicate_key = KmsBackend.replicate_key

    def replicate_with_own_configuration(self: Any, key_id: str, replica_region: str) -> Any:
        replica = replicate_key(self, key_id, replica_region)
        replica.multi_region_configuration = copy.deepcopy(replica.multi_region_configuration)
        return replica

    KmsBackend.replicate_key = replicate_with_own_configuration


def backup_list_tags_reads_the_arn_without_a_trailing_slash() -> None:
    """ListTags takes the ARN from the path's second-to-last segment, which holds it only when
    the request ends in a slash (as boto3 sends it); the AWS provider's SDK sends
    `GET /tags/<arn>` without one, so every tag read answers {}. Take the segment after `tags`."""
    from urllib.parse import unquote

    from moto.backup.responses import BackupResponse

    def list_tags(self: Any) -> str:
        segments = [part for part in self.path.split("?")[0].split("/") if part]
        resource_arn = unquote(segments[segments.index("tags") + 1])
        return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=resource_arn)})

    BackupResponse.list_tags = list_tags


# --- Step Functions -------------------------------------------------------------------------

STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}


def _asl_errors(states_owner: dict[str, Any], where: str) -> list[dict[str, str]]:
    """The ERROR diagnostics AWS reports for a States/StartAt block (and the branches within)."""
    def error(code: str, message: str, location: str) -> dict[str, str]:
        return {"severity": "ERROR", "code": code, "message": message, "location": location}

    states, start = states_owner.get("States"), states_owner.get("StartAt")
    if not isinstance(states, dict) or not states or not isinstance(start, str):
        return [error("SCHEMA_VALIDATION_FAILED", "StartAt and a non-empty States object are required", where)]
    found = [] if start in states else [error("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {start}",
                                              f"{where}/StartAt")]
    terminal = False
    for name, state in states.items():
        at = f"{where}/States/{name}"
        kind = state.get("Type") if isinstance(state, dict) else None
        if kind not in STATE_TYPES:
            found.append(error("SCHEMA_VALIDATION_FAILED", f"Unknown state type: {kind}", f"{at}/Type"))
            continue
        targets = [state.get("Next"), state.get("Default"), *(c.get("Next") for c in state.get("Choices", []))]
        found += [error("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {t}", at)
                  for t in targets if t is not None and t not in states]
        ends = kind in ("Succeed", "Fail", "Choice") or state.get("End") is True
        terminal = terminal or kind in ("Succeed", "Fail") or state.get("End") is True
        if not ends and state.get("Next") is None:
            found.append(error("SCHEMA_VALIDATION_FAILED", "A state needs Next or End: true", at))
        for i, branch in enumerate(state.get("Branches", [])):
            found += _asl_errors(branch, f"{at}/Branches[{i}]")
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                found += _asl_errors(state[key], f"{at}/{key}")
    if not terminal:
        found.append(error("MISSING_END_STATE", "Workflow has no terminal state", where))
    return found


def sfn_validate_state_machine_definition() -> None:
    """ValidateStateMachineDefinition: result OK or FAIL with ERROR diagnostics (the codes of
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html
    and API_ValidateStateMachineDefinitionDiagnostic.html): JSON syntax, StartAt/States,
    state types, transition targets, a terminal state."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def validate_state_machine_definition(self: Any) -> Any:
        definition = self._get_param("definition")
        try:
            document = json.loads(definition or "")
            found = _asl_errors(document, "") if isinstance(document, dict) else [
                {"severity": "ERROR", "code": "SCHEMA_VALIDATION_FAILED", "message": "not an object", "location": ""}]
        except ValueError as err:
            code = "MISSING_DESCRIPTION" if not definition else "INVALID_JSON_DESCRIPTION"
            found = [{"severity": "ERROR", "code": code, "message": str(err), "location": ""}]
        limit = self._get_int_param("maxResults") or 100
        return ActionResult({"result": "FAIL" if found else "OK", "diagnostics": found[:limit],
                             "truncated": len(found) > limit})

    StepFunctionResponse.validate_state_machine_definition = validate_state_machine_definition


def sfn_list_state_machine_versions() -> None:
    """ListStateMachineVersions: the published versions, newest first
    (https://docs.aws.amazon.com/step-functions/latest/apireference/API_ListStateMachineVersions.html);
    an unknown state machine is StateMachineDoesNotExist."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def list_state_machine_versions(self: Any) -> Any:
        machine = self.stepfunction_backend.describe_state_machine(self._get_param("stateMachineArn"))
        versions = sorted(getattr(machine, "versions", {}).values(), key=lambda v: v.version, reverse=True)
        return ActionResult({"stateMachineVersions": [
            {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]})

    StepFunctionResponse.list_state_machine_versions = list_state_machine_versions


# --- Application Auto Scaling ---------------------------------------------------------------


def appautoscaling_tags() -> None:
    """TagResource, ListTagsForResource, UntagResource for scalable targets, and the Tags of
    RegisterScalableTarget (https://docs.aws.amazon.com/autoscaling/application/APIReference/
    API_TagResource.html, API_ListTagsForResource.html, API_UntagResource.html): an ARN that is
    no registered target is ResourceNotFoundException; at most 50 tags."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    register, deregister = (ApplicationAutoScalingResponse.register_scalable_target,
                            ApplicationAutoScalingResponse.deregister_scalable_target)

    def tags_of(self: Any, arn: str) -> dict[str, str]:
        backend = self.applicationautoscaling_backend
        known = {t.arn for group in backend.targets.values() for t in group.values()}
        if arn not in known:
            raise _fail("ResourceNotFoundException", f"No scalable target found for ARN: {arn}")
        return _added(backend, "appautoscaling_tags").setdefault(arn, {})

    def put_tags(self: Any, arn: str, tags: dict[str, str]) -> None:
        with _LOCK:
            current = tags_of(self, arn)
            if len({**current, **tags}) > 50:
                raise _fail("TooManyTagsException", "A scalable target can have at most 50 tags")
            current.update(tags)

    def register_scalable_target(self: Any) -> str:
        answer = register(self)
        if self._get_param("Tags"):
            put_tags(self, json.loads(answer)["ScalableTargetARN"], self._get_param("Tags"))
        return answer  # type: ignore[no-any-return]

    def deregister_scalable_target(self: Any) -> str:
        backend = self.applicationautoscaling_backend
        before = {t.arn for group in backend.targets.values() for t in group.values()}
        answer = deregister(self)
        with _LOCK:
            gone = before - {t.arn for group in backend.targets.values() for t in group.values()}
            for arn in gone:
                _added(backend, "appautoscaling_tags").pop(arn, None)
        return answer  # type: ignore[no-any-return]

    def tag_resource(self: Any) -> str:
        put_tags(self, self._get_param("ResourceARN"), self._get_param("Tags") or {})
        return "{}"

    def list_tags_for_resource(self: Any) -> str:
        with _LOCK:
            return json.dumps({"Tags": dict(tags_of(self, self._get_param("ResourceARN")))})

    def untag_resource(self: Any) -> str:
        with _LOCK:
            current = tags_of(self, self._get_param("ResourceARN"))
            for key in self._get_param("TagKeys") or []:
                current.pop(key, None)
        return "{}"

    for method in (register_scalable_target, deregister_scalable_target, tag_resource, list_tags_for_resource,
                   untag_resource):
        setattr(ApplicationAutoScalingResponse, method.__name__, method)


# --- CloudWatch -----------------------------------------------------------------------------

ALARM_FUNCTION = re.compile(r'\b(ALARM|OK|INSUFFICIENT_DATA)\(\s*"?([^")]+?)"?\s*\)')


def cloudwatch_composite_alarms() -> None:
    """PutCompositeAlarm, and DescribeAlarms answering by AlarmTypes (metric alarms only when it
    is absent) (https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutCompositeAlarm.html,
    API_DescribeAlarms.html): the rule is at most 10240 characters and names existing alarms.
    moto's PutMetricAlarm already stores an AlarmRule; DeleteAlarms deletes either kind."""
    from moto.cloudwatch.responses import CloudWatchResponse

    describe = CloudWatchResponse.describe_alarms

    def put_composite_alarm(self: Any) -> Any:
        rule = self._get_param("AlarmRule") or ""
        if not 1 <= len(rule) <= 10240:
            raise _fail("ValidationError", "AlarmRule must be 1 to 10240 characters long", "cloudwatch")
        named = [name for _, name in ALARM_FUNCTION.findall(rule)]
        if not named and rule.strip() not in ("TRUE", "FALSE"):
            raise _fail("ValidationError", f"AlarmRule names no alarm: {rule}", "cloudwatch")
        known = {a.name for a in self.cloudwatch_backend.alarms.values()} | {
            a.alarm_arn for a in self.cloudwatch_backend.alarms.values()}
        missing = [name for name in named if name not in known]
        if missing:
            raise _fail("ValidationError", f"Could not save the composite alarm as alarms [{', '.join(missing)}] "
                        "in the alarm rule do not exist", "cloudwatch")
        return self.put_metric_alarm()

    def describe_alarms(self: Any) -> Any:
        answer = describe(self)
        types = self._get_param("AlarmTypes") or ["MetricAlarm"]
        for kind, key in (("MetricAlarm", "MetricAlarms"), ("CompositeAlarm", "CompositeAlarms")):
            if kind not in types:
                answer.result[key] = []
        return answer

    CloudWatchResponse.put_composite_alarm = put_composite_alarm
    CloudWatchResponse.describe_alarms = describe_alarms


# --- API Gateway v2 -------------------------------------------------------------------------


# API Gateway's regional endpoints' hosted zones (AWS General Reference, API Gateway endpoints).
REGIONAL_API_ZONES = {"us-east-1": "Z1UJRXOUMOOFQ8", "us-east-2": "ZOJJZC49E0EPZ", "us-west-2": "Z2OJLYMUO9EFXC",
                      "eu-west-1": "ZLY8HYME6SFDD", "eu-west-2": "ZJ5UAJN8Y3Z2Q", "eu-central-1": "Z1U9ULNL0V5AJ3"}


def apigatewayv2_domain_status() -> None:
    """A custom domain's configurations carry DomainNameStatus AVAILABLE and the regional
    endpoint's domain name and hosted zone, as GetDomainName answers once the certificate is
    attached (https://docs.aws.amazon.com/apigatewayv2/latest/api-reference/domainnames-domainname.html,
    DomainNameConfiguration), and without a MutualTlsAuthentication when none was configured
    (moto answers `{}`, which reads back as an empty block). moto already implements the API
    mappings."""
    from moto.apigatewayv2.models import DomainName

    to_json = DomainName.to_json

    def with_status(self: Any) -> dict[str, Any]:
        answer = to_json(self)
        region = self.domain_name_arn.split(":")[3]
        suffix = uuid.uuid5(uuid.NAMESPACE_DNS, self.domain_name).hex[:10]
        zone = {"hostedZoneId": REGIONAL_API_ZONES[region]} if region in REGIONAL_API_ZONES else {}
        answer["domainNameConfigurations"] = [{
            "domainNameStatus": "AVAILABLE", "apiGatewayDomainName": f"d-{suffix}.execute-api.{region}.amazonaws.com",
            **zone, **config} for config in self.domain_name_configurations or []]
        if not answer.get("mutualTlsAuthentication"):
            answer.pop("mutualTlsAuthentication", None)
        return answer

    DomainName.to_json = with_status


# --- ElastiCache ----------------------------------------------------------------------------


def elasticache_replication_group_members() -> None:
    """CreateReplicationGroup creates its member cache clusters (NumCacheClusters of them when
    cluster mode is disabled), each with the group's node type, engine, subnet group, security
    groups, ports, windows and encryption, as DescribeCacheClusters shows them on AWS
    (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_CreateReplicationGroup.html,
    API_CacheCluster.html). moto names the members but never creates them, and numbers them from
    ReplicasPerNodeGroup only."""
    from moto.elasticache.models import ElastiCacheBackend

    create = ElastiCacheBackend.create_replication_group

    def create_replication_group(self: Any, **kwargs: Any) -> Any:
        count = kwargs.get("num_cache_clusters")
        if kwargs.get("cluster_mode") != "enabled" and count and not kwargs.get("replicas_per_node_group"):
            kwargs["replicas_per_node_group"] = count - 1
        with _LOCK:
            group = create(self, **kwargs)
            for node_group in group.node_groups:
                for node in node_group["node_group_members"]:
                    _create_member(self, group, node, kwargs)
        return group

    ElastiCacheBackend.create_replication_group = create_replication_group


def _create_member(backend: Any, group: Any, node: dict[str, Any], settings: dict[str, Any]) -> None:
    shared = ("cache_node_type", "engine", "engine_version", "cache_parameter_group_name", "cache_subnet_group_name",
              "transit_encryption_enabled", "network_type", "ip_discovery", "preferred_maintenance_window", "port",
              "notification_topic_arn", "auto_minor_version_upgrade", "snapshot_retention_limit", "snapshot_window",
              "cache_security_group_names", "security_group_ids", "tags", "log_delivery_configurations")
    member = backend.create_cache_cluster(
        cache_cluster_id=node["cache_cluster_id"], replication_group_id=group.replication_group_id,
        az_mode="single-az", preferred_availability_zone=node["preferred_availability_zone"], num_cache_nodes=1,
        snapshot_name=None, auth_token=None, outpost_mode=None, preferred_outpost_arn=None,
        preferred_availability_zones=None, snapshot_arns=None, preferred_outpost_arns=None,
        cache_node_ids_to_remove=None, cache_node_ids_to_reboot=None, **{k: settings.get(k) for k in shared})
    member.at_rest_encryption_enabled = bool(settings.get("at_rest_encryption_enabled"))
    member.security_groups = [{"SecurityGroupId": g, "Status": "active"} for g in settings.get("security_group_ids") or []]


def elasticache_replication_group_deletion() -> None:
    """DeleteReplicationGroup answers the group as `deleting` and then it is gone, with its
    member clusters (all but the primary when RetainPrimaryCluster)
    (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DeleteReplicationGroup.html).
    moto keeps the group `deleting` for ever."""
    from moto.elasticache.models import ElastiCacheBackend

    delete = ElastiCacheBackend.delete_replication_group

    def delete_replication_group(self: Any, replication_group_id: str, retain_primary_cluster: bool | None) -> Any:
        with _LOCK:
            group = self.replication_groups.get(replication_group_id)
            members = list(group.member_clusters) if group else []
            primary = group.primary_cluster_id if group else None
            answer = delete(self, replication_group_id, retain_primary_cluster)
            self.replication_groups.pop(replication_group_id, None)
            for member in members:
                if not (retain_primary_cluster and member == primary):
                    self.cache_clusters.pop(member, None)
        return answer

    ElastiCacheBackend.delete_replication_group = delete_replication_group


def elasticache_subnet_group_deletion() -> None:
    """DeleteCacheSubnetGroup: CacheSubnetGroupNotFoundFault for an unknown name,
    CacheSubnetGroupInUse while a cache cluster uses it
    (https://docs.aws.amazon.com/AmazonElastiCache/latest/APIReference/API_DeleteCacheSubnetGroup.html)."""
    from moto.core.responses import EmptyResult
    from moto.elasticache.responses import ElastiCacheResponse

    def delete_cache_subnet_group(self: Any) -> Any:
        name, backend = self._get_param("CacheSubnetGroupName"), self.elasticache_backend
        with _LOCK:
            if name not in backend.cache_subnet_groups:
                raise _fail("CacheSubnetGroupNotFoundFault", f"Cache subnet group {name} not found.", "elasticache")
            users = [c.cache_cluster_id for c in backend.cache_clusters.values() if c.cache_subnet_group_name == name]
            if users:
                raise _fail("CacheSubnetGroupInUse", f"Cache subnet group {name} is in use by {', '.join(users)}.",
                            "elasticache")
            del backend.cache_subnet_groups[name]
        return EmptyResult()

    ElastiCacheResponse.delete_cache_subnet_group = delete_cache_subnet_group


# --- Cognito --------------------------------------------------------------------------------


def cognito_resource_server_deletion() -> None:
    """DeleteResourceServer: ResourceNotFoundException for an unknown pool or identifier
    (https://docs.aws.amazon.com/cognito-user-identity-pools/latest/APIReference/API_DeleteResourceServer.html)."""
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.core.responses import EmptyResult

    def delete_resource_server(self: Any) -> Any:
        pool_id, identifier = self._get_param("UserPoolId"), self._get_param("Identifier")
        with _LOCK:
            self.backend.describe_resource_server(pool_id, identifier)  # ResourceNotFoundException if unknown
            del self.backend.user_pools[pool_id].resource_servers[identifier]
        return EmptyResult()

    CognitoIdpResponse.delete_resource_server = delete_resource_server


# --- CloudWatch Logs ------------------------------------------------------------------------


def logs_query_definitions() -> None:
    """PutQueryDefinition (create, or update by queryDefinitionId), DescribeQueryDefinitions
    (by name prefix) and DeleteQueryDefinition
    (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutQueryDefinition.html,
    API_DescribeQueryDefinitions.html, API_DeleteQueryDefinition.html): name 1-255 and query
    1-10000 characters; an unknown id is ResourceNotFoundException."""
    from moto.logs.responses import LogsResponse

    def definitions(self: Any) -> dict[str, dict[str, Any]]:
        return _added(self.logs_backend, "query_definitions")

    def put_query_definition(self: Any) -> str:
        name, query = self._get_param("name") or "", self._get_param("queryString") or ""
        if not 1 <= len(name) <= 255 or not 1 <= len(query) <= 10000:
            raise _fail("InvalidParameterException", "name must be 1-255 and queryString 1-10000 characters")
        with _LOCK:
            known = definitions(self)
            given = self._get_param("queryDefinitionId")
            if given and given not in known:
                raise _fail("ResourceNotFoundException", f"Query definition {given} does not exist")
            ident = given or str(uuid.uuid4())
            known[ident] = {"queryDefinitionId": ident, "name": name, "queryString": query,
                            "lastModified": int(time.time() * 1000),
                            "logGroupNames": self._get_param("logGroupNames") or []}
        return json.dumps({"queryDefinitionId": ident})

    def describe_query_definitions(self: Any) -> str:
        prefix = self._get_param("queryDefinitionNamePrefix") or ""
        with _LOCK:
            found = [dict(d) for d in definitions(self).values() if d["name"].startswith(prefix)]
        return json.dumps({"queryDefinitions": sorted(found, key=lambda d: d["name"])})

    def delete_query_definition(self: Any) -> str:
        ident = self._get_param("queryDefinitionId")
        with _LOCK:
            if definitions(self).pop(ident, None) is None:
                raise _fail("ResourceNotFoundException", f"Query definition {ident} does not exist")
        return json.dumps({"success": True})

    for method in (put_query_definition, describe_query_definitions, delete_query_definition):
        setattr(LogsResponse, method.__name__, method)


# --- AWS Backup -----------------------------------------------------------------------------

SELECTION_NAME = re.compile(r"^[a-zA-Z0-9\-_.]{1,50}$")


def _selections(self: Any, plan_id: str) -> dict[str, dict[str, Any]]:
    """A plan's selections by id (an unknown or deleted plan: ResourceNotFoundException)."""
    plan = self.backup_backend.plans.get(plan_id)
    if plan is None or plan.deletion_date is not None:
        raise _fail("ResourceNotFoundException", f"Failed reading Backup plan {plan_id}")
    return _added(self.backup_backend, "selections").setdefault(plan_id, {})  # type: ignore[no-any-return]


def _selection(self: Any) -> dict[str, Any]:
    plan_id, ident = self._get_param("backupPlanId"), self._get_param("selectionId")
    found = _selections(self, plan_id).get(ident)
    if found is None:
        raise _fail("ResourceNotFoundException", f"Backup selection {ident} not found in plan {plan_id}")
    return found


def backup_selections() -> None:
    """CreateBackupSelection, GetBackupSelection, ListBackupSelections, DeleteBackupSelection
    (https://docs.aws.amazon.com/aws-backup/latest/devguide/API_CreateBackupSelection.html and
    the Get/List/Delete pages): the plan must exist, the name matches ^[a-zA-Z0-9\\-\\_\\.]{1,50}$,
    a role is required; DeleteBackupPlan refuses while selections remain (API_DeleteBackupPlan.html)."""
    from moto.backup.responses import BackupResponse

    delete_plan = BackupResponse.delete_backup_plan

    def create_backup_selection(self: Any) -> str:
        plan_id, selection = self._get_param("backupPlanId"), self._get_param("BackupSelection") or {}
        if not SELECTION_NAME.match(selection.get("SelectionName", "")) or not selection.get("IamRoleArn"):
            raise _fail("InvalidParameterValueException", "SelectionName must match ^[a-zA-Z0-9\\-\\_\\.]{1,50}$ "
                        "and IamRoleArn is required")
        with _LOCK:
            ident, created = str(uuid.uuid4()), time.time()
            _selections(self, plan_id)[ident] = {"BackupSelection": selection, "SelectionId": ident,
                                                "BackupPlanId": plan_id, "CreationDate": created,
                                                "CreatorRequestId": self._get_param("CreatorRequestId")}
        return json.dumps({"SelectionId": ident, "BackupPlanId": plan_id, "CreationDate": created})

    def get_backup_selection(self: Any) -> str:
        with _LOCK:
            return json.dumps({k: v for k, v in _selection(self).items() if v is not None})

    def list_backup_selections(self: Any) -> str:
        with _LOCK:
            found = list(_selections(self, self._get_param("backupPlanId")).values())
        return json.dumps({"BackupSelectionsList": [{
            "SelectionId": s["SelectionId"], "SelectionName": s["BackupSelection"]["SelectionName"],
            "BackupPlanId": s["BackupPlanId"], "CreationDate": s["CreationDate"],
            "IamRoleArn": s["BackupSelection"]["IamRoleArn"]} for s in found]})

    def delete_backup_selection(self: Any) -> str:
        with _LOCK:
            del _selections(self, self._get_param("backupPlanId"))[_selection(self)["SelectionId"]]
        return "{}"

    def delete_backup_plan(self: Any) -> str:
        with _LOCK:
            if _added(self.backup_backend, "selections").get(self.path.rstrip("/").split("/")[-1]):
                raise _fail("InvalidRequestException", "Related backup plan selections must be deleted prior to "
                            "backup plan deletion")
            return delete_plan(self)  # type: ignore[no-any-return]

    for method in (create_backup_selection, get_backup_selection, list_backup_selections, delete_backup_selection,
                   delete_backup_plan):
        setattr(BackupResponse, method.__name__, method)


# --- ECR ------------------------------------------------------------------------------------

CACHE_PREFIX = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
UPSTREAMS = {"public.ecr.aws": "ecr-public", "registry-1.docker.io": "docker-hub", "ghcr.io":
             "github-container-registry", "registry.gitlab.com": "gitlab-container-registry",
             "registry.k8s.io": "k8s", "quay.io": "quay"}
NEEDS_CREDENTIALS = {"docker-hub", "github-container-registry", "gitlab-container-registry"}


def ecr_pull_through_cache_rules() -> None:
    """CreatePullThroughCacheRule, DescribePullThroughCacheRules, DeletePullThroughCacheRule
    (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_CreatePullThroughCacheRule.html
    and the Describe/Delete pages): a prefix of 2-30 characters in the documented pattern, once
    per registry; a supported upstream; Docker Hub, GitHub and GitLab need a Secrets Manager
    credential whose name starts `ecr-pullthroughcache/`; an unknown prefix is
    PullThroughCacheRuleNotFoundException."""
    from moto.core.responses import ActionResult
    from moto.ecr.responses import ECRResponse

    def rules(self: Any) -> dict[str, dict[str, Any]]:
        return _added(self.ecr_backend, "pull_through_cache_rules")

    def create_pull_through_cache_rule(self: Any) -> Any:
        prefix, url = self._get_param("ecrRepositoryPrefix") or "", self._get_param("upstreamRegistryUrl") or ""
        credential = self._get_param("credentialArn")
        upstream = UPSTREAMS.get(url)
        if not (2 <= len(prefix) <= 30 and CACHE_PREFIX.match(prefix)) or upstream is None:
            raise _fail("InvalidParameterException", f"Invalid ecrRepositoryPrefix {prefix!r} or unsupported "
                        f"upstreamRegistryUrl {url!r}", "ecr")
        if upstream in NEEDS_CREDENTIALS and ":secret:ecr-pullthroughcache/" not in (credential or ""):
            raise _fail("InvalidParameterException", f"{upstream} needs a credentialArn of a secret named "
                        "ecr-pullthroughcache/…", "ecr")
        rule = {"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": url, "createdAt": time.time(),
                "registryId": self._get_param("registryId") or self.current_account, "upstreamRegistry": upstream,
                **({"credentialArn": credential} if credential else {})}
        with _LOCK:
            if prefix in rules(self):
                raise _fail("PullThroughCacheRuleAlreadyExistsException", f"A rule for {prefix} already exists", "ecr")
            rules(self)[prefix] = rule
        return ActionResult(dict(rule))

    def describe_pull_through_cache_rules(self: Any) -> Any:
        wanted = self._get_param("ecrRepositoryPrefixes")
        with _LOCK:
            known = rules(self)
            missing = [p for p in wanted or [] if p not in known]
            if missing:
                raise _fail("PullThroughCacheRuleNotFoundException", f"No rule for {', '.join(missing)}", "ecr")
            return ActionResult({"pullThroughCacheRules": [dict(known[p]) for p in wanted or known]})

    def delete_pull_through_cache_rule(self: Any) -> Any:
        prefix = self._get_param("ecrRepositoryPrefix")
        with _LOCK:
            rule = rules(self).pop(prefix, None)
        if rule is None:
            raise _fail("PullThroughCacheRuleNotFoundException", f"No rule for {prefix}", "ecr")
        return ActionResult(rule)

    for method in (create_pull_through_cache_rule, describe_pull_through_cache_rules, delete_pull_through_cache_rule):
        setattr(ECRResponse, method.__name__, method)


# --- ECS ------------------------------------------------------------------------------------

SERVICE_SETTINGS = {"capacityProviderStrategy": "capacity_provider_strategy",
                    "enableExecuteCommand": "enable_execute_command",
                    "enableECSManagedTags": "enable_ecs_managed_tags",
                    "healthCheckGracePeriodSeconds": "health_check_grace_period_seconds",
                    "availabilityZoneRebalancing": "availability_zone_rebalancing"}


def ecs_service_settings() -> None:
    """CreateService keeps the capacity provider strategy, ECS Exec, managed tags, health check
    grace period and AZ rebalancing it was given, and DescribeServices returns them; with a
    capacity provider strategy the service has no launch type
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html, API_Service.html:
    "If a capacityProviderStrategy is specified, the launchType parameter must be omitted").
    moto's CreateService reads none of them (UpdateService already stores what it is given)."""
    from moto.ecs.responses import EC2ContainerServiceResponse

    create = EC2ContainerServiceResponse.create_service

    def create_service(self: Any) -> Any:
        strategy = self._get_param("capacityProviderStrategy")
        if strategy and self._get_param("launchType"):
            raise _fail("InvalidParameterException", "Specifying both a launch type and capacity provider "
                        "strategy is not supported. Remove one and try again.", "ecs")
        answer = create(self)
        service = answer.result["service"]
        with _LOCK:
            for key, attribute in SERVICE_SETTINGS.items():
                if self._get_param(key) is not None:
                    setattr(service, attribute, self._get_param(key))
            if strategy:
                service.launch_type = None
        return answer

    EC2ContainerServiceResponse.create_service = create_service
def ecs_fargate_container_memory() -> None:
    """A Fargate container may leave `memory` out: the task's memory is the limit (Amazon ECS API
    Reference, ContainerDefinition `memory`: "If using the Fargate launch type, this parameter is
    optional"). moto's RunTask adds every container's memory to its placement sums
    (moto/ecs/models.py `_calculate_task_resource_requirements`: `+= None`) and answers 500. A
    container without either figure counts 0 here, as a definition without a container
    instance to fit on needs nothing more."""
    from moto.ecs.models import EC2ContainerServiceBackend

    calculate = EC2ContainerServiceBackend._calculate_task_resource_requirements

    def with_task_memory(task_definition: Any) -> dict[str, Any]:
        containers = task_definition.container_definitions
        task_definition.container_definitions = [
            c if {"memory", "memoryReservation", "Memory", "MemoryReservation"} & set(c) else {**c, "memory": 0}
            for c in containers]
        try:
            return dict(calculate(task_definition))
        finally:
            task_definition.container_definitions = containers

    EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(with_task_memory)


# --- KMS, Secrets Manager -------------------------------------------------------------------

MRK_KEY_ID_BYTES = 40  # "mrk-" and a 36-character UUID


def kms_multi_region_ciphertext() -> None:
    """moto's ciphertext header holds a 36-byte key id (moto/kms/utils.py KEY_ID_LEN), so a
    multi-Region key's 40-character `mrk-…` id is cut short and Decrypt finds no key
    (AccessDeniedException). AWS decrypts with the key named in the ciphertext's metadata, and
    any related multi-Region key can decrypt it
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_Decrypt.html,
    https://docs.aws.amazon.com/kms/latest/developerguide/multi-region-keys-overview.html).
    The header holds 40 bytes, padded."""
    import struct

    from moto.kms import utils

    header_format = f">{MRK_KEY_ID_BYTES}s{utils.IV_LEN}s{utils.TAG_LEN}s"
    header_bytes = struct.calcsize(header_format)

    def serialize(ciphertext: Any) -> bytes:
        header = struct.pack(header_format, ciphertext.key_id.encode("utf-8"), ciphertext.iv, ciphertext.tag)
        return header + ciphertext.ciphertext  # type: ignore[no-any-return]

    def deserialize(ciphertext_blob: bytes) -> Any:
        key_id, iv, tag = struct.unpack(header_format, ciphertext_blob[:header_bytes])
        return utils.Ciphertext(key_id=key_id.rstrip(b"\0").decode("utf-8"), iv=iv, tag=tag,
                                ciphertext=ciphertext_blob[header_bytes:])

    utils._serialize_ciphertext_blob = serialize
    utils._deserialize_ciphertext_blob = deserialize


def secretsmanager_replica_kms_key() -> None:
    """A secret's replica reports the KMS key it was replicated with: DescribeSecret's
    ReplicationStatus[].KmsKeyId is the key given in AddReplicaRegions/ReplicaRegionType
    (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html,
    API_ReplicationStatusType.html, API_ReplicaRegionType.html). moto's `ReplicaSecret.config`
    always reports `alias/aws/secretsmanager`."""
    from moto.secretsmanager.models import FakeSecret

    create_replicas = FakeSecret.create_replicas

    def create_replicas_with_their_keys(self: Any, replica_regions: list[dict[str, str]],
                                        force_overwrite: bool) -> Any:
        replicas = create_replicas(self, replica_regions, force_overwrite=force_overwrite)
        for replica, wanted in zip(replicas, replica_regions or []):
            if wanted.get("KmsKeyId"):
                replica.config["KmsKeyId"] = wanted["KmsKeyId"]
        return replicas

    FakeSecret.create_replicas = create_replicas_with_their_keys


# --- EC2, Lambda, Auto Scaling --------------------------------------------------------------


def ec2_referenced_group_rule_description() -> None:
    """A rule that references a security group (or a prefix list) keeps its description: moto's
    `SecurityGroupRule.description` reads only the IP range, which such a rule lacks. AWS
    returns every rule's description
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SecurityGroupRule.html,
    API_UserIdGroupPair.html Description)."""
    from moto.ec2.models.security_groups import SecurityGroupRule

    def description(self: Any) -> str | None:
        return self.ip_range.get("Description") or self.source_group.get("Description")

    SecurityGroupRule.description = property(description)


def lambda_logging_config() -> None:
    """CreateFunction and UpdateFunctionConfiguration keep the LoggingConfig, and the function's
    configuration returns it, its log group defaulting to /aws/lambda/<name> and its format
    to Text (https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html,
    API_FunctionConfiguration.html LoggingConfig). moto drops it."""
    from moto.awslambda.models import LambdaFunction

    init, configuration, update = (LambdaFunction.__init__, LambdaFunction.get_configuration,
                                   LambdaFunction.update_configuration)

    def with_logging_config(self: Any, account_id: str, spec: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        init(self, account_id, spec, *args, **kwargs)
        self.logging_config = dict(spec.get("LoggingConfig") or {})

    def get_configuration(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        answer = configuration(self, *args, **kwargs)
        given = getattr(self, "logging_config", {})
        answer["LoggingConfig"] = {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{self.function_name}", **given}
        return answer  # type: ignore[no-any-return]

    def update_configuration(self: Any, config_updates: dict[str, Any]) -> dict[str, Any]:
        if config_updates.get("LoggingConfig") is not None:
            self.logging_config = dict(config_updates["LoggingConfig"])
        return update(self, config_updates)  # type: ignore[no-any-return]

    LambdaFunction.__init__ = with_logging_config
    LambdaFunction.get_configuration = get_configuration
    LambdaFunction.update_configuration = update_configuration


def autoscaling_policy_enabled() -> None:
    """PutScalingPolicy keeps Enabled (true unless the request says false) and DescribePolicies
    returns it, with a PredictiveScalingConfiguration only for a policy given one
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutScalingPolicy.html,
    API_ScalingPolicy.html). moto's FakeScalingPolicy has no Enabled, which reads false, and
    stores an absent predictive configuration as `{}`, which reads back as an empty block."""
    from moto.autoscaling.responses import AutoScalingResponse

    put = AutoScalingResponse.put_scaling_policy

    def put_scaling_policy(self: Any) -> Any:
        answer = put(self)
        enabled = self._get_param("Enabled")
        with _LOCK:
            policy = self.autoscaling_backend.policies[self._get_param("PolicyName")]
            policy.enabled = enabled not in (False, "false")
            policy.predictive_scaling_configuration = policy.predictive_scaling_configuration or None
        return answer

    AutoScalingResponse.put_scaling_policy = put_scaling_policy


def autoscaling_group_settings() -> None:
    """CreateAutoScalingGroup and UpdateAutoScalingGroup keep DefaultInstanceWarmup and
    InstanceMaintenancePolicy and DescribeAutoScalingGroups returns them
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_CreateAutoScalingGroup.html,
    API_AutoScalingGroup.html). moto reads neither."""
    from moto.autoscaling.responses import AutoScalingResponse

    create, update = AutoScalingResponse.create_auto_scaling_group, AutoScalingResponse.update_auto_scaling_group

    def keep_settings(self: Any) -> None:
        warmup, policy = self._get_int_param("DefaultInstanceWarmup"), self._get_params().get("InstanceMaintenancePolicy")
        with _LOCK:
            group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
            if warmup is not None:
                group.default_instance_warmup = warmup
            if policy is not None:
                group.instance_maintenance_policy = {k: int(v) for k, v in policy.items()}

    def create_auto_scaling_group(self: Any) -> Any:
        answer = create(self)
        keep_settings(self)
        return answer

    def update_auto_scaling_group(self: Any) -> Any:
        answer = update(self)
        keep_settings(self)
        return answer

    AutoScalingResponse.create_auto_scaling_group = create_auto_scaling_group
    AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group


def autoscaling_update_keeps_mixed_instances_policy() -> None:
    """UpdateAutoScalingGroup changes only what it names: without a MixedInstancesPolicy the
    group keeps its own (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html).
    moto's `FakeAutoScalingGroup.update` assigns the absent policy, clearing it."""
    from moto.autoscaling.models import FakeAutoScalingGroup

    update = FakeAutoScalingGroup.update

    def update_keeping_policy(self: Any, **kwargs: Any) -> None:
        # the backend passes every argument by name; a launch configuration or template replaces the policy
        kept = self.mixed_instances_policy
        update(self, **kwargs)
        if not any(kwargs.get(k) for k in ("mixed_instances_policy", "launch_config_name", "launch_template")):
            self.mixed_instances_policy = kept

    FakeAutoScalingGroup.update = update_keeping_policy


def route53_zone_with_vpc_is_private() -> None:
    """A hosted zone created with a VPC is private and associated with it
    (https://docs.aws.amazon.com/Route53/latest/APIReference/API_CreateHostedZone.html, VPC:
    "(Private hosted zones only) ... you can't convert a public hosted zone into a private hosted
    zone"); moto keeps the VPC only when HostedZoneConfig.PrivateZone is true, which the
    provider does not send."""
    from moto.route53.responses import Route53

    create = Route53.create_hosted_zone

    def create_hosted_zone(self: Any) -> Any:
        if self._get_param("VPC.VPCId"):
            read = self._get_bool_param
            self._get_bool_param = lambda name, default=None: True if name == "HostedZoneConfig.PrivateZone" \
                else read(name, default)
        return create(self)

    Route53.create_hosted_zone = create_hosted_zone


def kms_replicate_key_request() -> None:
    """ReplicateKey gives the replica the request's Description, Policy and Tags
    (https://docs.aws.amazon.com/kms/latest/APIReference/API_ReplicateKey.html: none of them is
    shared with the primary); moto reads only KeyId and ReplicaRegion and copies the primary's
    description and policy, without tags."""
    from moto.kms.models import kms_backends
    from moto.kms.responses import KmsResponse

    replicate = KmsResponse.replicate_key

    def replicate_key(self: Any) -> str:
        answer = json.loads(replicate(self))
        metadata = answer["ReplicaKeyMetadata"]
        backend = kms_backends[self.current_account][self._get_param("ReplicaRegion")]
        with _LOCK:
            replica = backend.keys[metadata["KeyId"]]
            for param, attribute in (("Description", "description"), ("Policy", "policy")):
                if self._get_param(param) is not None:
                    setattr(replica, attribute, self._get_param(param))
            if self._get_param("Tags"):
                backend.tagger.tag_resource(replica.id, self._get_param("Tags"))
        metadata["Description"] = replica.description
        answer["ReplicaPolicy"] = replica.policy
        return json.dumps(answer)

    KmsResponse.replicate_key = replicate_key


def ec2_launch_template_own_tags() -> None:
    """CreateLaunchTemplate's TagSpecifications tag the template itself (resource type
    `launch-template`) and stay out of the version's LaunchTemplateData, whose tag
    specifications name only the resources an instance launch creates
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplate.html,
    API_LaunchTemplateTagSpecificationRequest.html). moto appends them to the data."""
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    create = LaunchTemplateBackend.create_launch_template

    def create_launch_template(self: Any, name: str, description: str, template_data: dict[str, Any],
                               tag_spec: dict[str, Any]) -> Any:
        specs = [t for t in template_data.get("TagSpecifications", []) if t.get("ResourceType") != "launch-template"]
        data = {k: v for k, v in template_data.items() if k != "TagSpecifications"}
        return create(self, name, description, {**data, **({"TagSpecifications": specs} if specs else {})}, tag_spec)

    LaunchTemplateBackend.create_launch_template = create_launch_template


def ec2_requests_one_at_a_time() -> None:
    """moto's server answers each request on its own thread (werkzeug `threaded=True`,
    moto/server.py), and the EC2 backend's models are plain dicts and lists changed without a
    lock: `create_network_acl_entry` checks for an existing rule number, then appends
    (moto/ec2/models/network_acls.py), while other threads iterate and change the same
    structures. AWS applies each request atomically. EC2 requests here run one at a time; the
    other services keep their threads (nothing in them waits on another request)."""
    import threading

    from moto.core.responses import BaseResponse
    from moto.ec2.responses import EC2Response

    dispatch = BaseResponse._dispatch
    one_at_a_time = threading.Lock()

    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(self, EC2Response):
            return dispatch(self, *args, **kwargs)
        with one_at_a_time:
            return dispatch(self, *args, **kwargs)

    BaseResponse._dispatch = serialized


CORRECTIONS: dict[str, Callable[[], None]] = {
    "kms-replica-shares-primary-configuration": kms_replica_owns_its_configuration,
    "backup-list-tags-path": backup_list_tags_reads_the_arn_without_a_trailing_slash,
    "sfn-validate-definition": sfn_validate_state_machine_definition,
    "sfn-list-state-machine-versions": sfn_list_state_machine_versions,
    "appautoscaling-tags": appautoscaling_tags,
    "cloudwatch-composite-alarm": cloudwatch_composite_alarms,
    "apigatewayv2-domain-status": apigatewayv2_domain_status,
    "elasticache-member-clusters": elasticache_replication_group_members,
    "elasticache-replication-group-delete": elasticache_replication_group_deletion,
    "elasticache-subnet-group-delete": elasticache_subnet_group_deletion,
    "cognito-resource-server-delete": cognito_resource_server_deletion,
    "logs-query-definition": logs_query_definitions,
    "backup-selection": backup_selections,
    "ecr-pull-through-cache-rule": ecr_pull_through_cache_rules,
    "ecs-service-settings": ecs_service_settings,
    "ecs-fargate-container-memory": ecs_fargate_container_memory,
    "ec2-requests-not-atomic": ec2_requests_one_at_a_time,
    "kms-multi-region-ciphertext": kms_multi_region_ciphertext,
    "secretsmanager-replica-kms-key": secretsmanager_replica_kms_key,
    "sg-rule-referenced-group-description": ec2_referenced_group_rule_description,
    "lambda-logging-config": lambda_logging_config,
    "autoscaling-policy-enabled": autoscaling_policy_enabled,
    "autoscaling-group-settings": autoscaling_group_settings,
    "autoscaling-update-clears-mixed-instances-policy": autoscaling_update_keeps_mixed_instances_policy,
    "route53-private-zone-vpc": route53_zone_with_vpc_is_private,
    "kms-replicate-key-request": kms_replicate_key_request,
    "launch-template-own-tags": ec2_launch_template_own_tags,
}


def main(argv: list[str]) -> None:
    for correct in CORRECTIONS.values():
        correct()
    from moto.moto_api import state_manager

    # moto runs no container: a one-off task (the schema migration `pipeline apply` runs) reads
    # as STOPPED at once, not one state further per DescribeTasks (four of the waiter's 15 s polls).
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "immediate"})
    from moto.server import main as serve
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
