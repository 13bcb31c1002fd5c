"""The rehearsal's corrected moto server: each call moto lacks (or gets wrong) fails on plain moto
and answers as AWS documents once its correction is applied. Run on moto's in-process mock,
which dispatches to the same response classes as its server; every class a correction
changes is restored after the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from modules.rehearsal import differences, moto_corrected

REGION = "eu-west-2"
ROLE = "arn:aws:iam::123456789012:role/r"


def _touched_classes() -> list[type]:
    from moto.apigatewayv2.models import DomainName
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
    from moto.backup.responses import BackupResponse
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.cognitoidp.responses import CognitoIdpResponse
    from moto.ecr.responses import ECRResponse
    from moto.ecs.models import EC2ContainerServiceBackend
    from moto.ecs.responses import EC2ContainerServiceResponse
    from moto.elasticache.models import ElastiCacheBackend
    from moto.elasticache.responses import ElastiCacheResponse
    from moto.logs.responses import LogsResponse
    from moto.stepfunctions.responses import StepFunctionResponse
    from moto.autoscaling.responses import AutoScalingResponse
    from moto.awslambda.models import LambdaFunction
    from moto.ec2.models.security_groups import SecurityGroupRule
    from moto.kms import utils as kms_utils
    from moto.secretsmanager.models import FakeSecret
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.kms.responses import KmsResponse
    from moto.route53.responses import Route53
    from moto.ec2.models.launch_templates import LaunchTemplateBackend

    return [DomainName, ApplicationAutoScalingResponse, BackupResponse, CloudWatchResponse, CognitoIdpResponse,
            ECRResponse, EC2ContainerServiceBackend, EC2ContainerServiceResponse, ElastiCacheBackend, ElastiCacheResponse, LogsResponse,
            StepFunctionResponse, AutoScalingResponse, LambdaFunction, SecurityGroupRule, kms_utils,
            FakeSecret, FakeAutoScalingGroup, KmsResponse, Route53,
            LaunchTemplateBackend]  # type: ignore[list-item]  # a module's functions are restored like a class's


@pytest.fixture
def correct() -> Iterator[Any]:
    """`correct(name)` applies one correction; the classes are as moto ships them afterwards."""
    saved = {cls: dict(vars(cls)) for cls in _touched_classes()}
    yield lambda name: moto_corrected.CORRECTIONS[name]()
    for cls, attributes in saved.items():
        for key in set(vars(cls)) - set(attributes):
            delattr(cls, key)
        for key, value in attributes.items():
            if vars(cls).get(key) is not value:
                setattr(cls, key, value)


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")


def error_code(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return str(raised.value.response["Error"]["Code"])


def test_every_correction_has_its_row() -> None:
    assert {row.name for row in differences.DIFFERENCES if row.corrected} == set(moto_corrected.CORRECTIONS)


@mock_aws
def test_state_machine_definitions_are_validated_as_aws_does(correct) -> None:
    sfn = client("stepfunctions")
    good = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Succeed"}}})
    with pytest.raises(NotImplementedError):
        sfn.validate_state_machine_definition(definition=good)
    correct("sfn-validate-definition")
    assert sfn.validate_state_machine_definition(definition=good)["result"] == "OK"
    dangling = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Missing"}}})
    answer = sfn.validate_state_machine_definition(definition=dangling)
    assert answer["result"] == "FAIL"
    assert {d["code"] for d in answer["diagnostics"]} == {"MISSING_TRANSITION_TARGET", "MISSING_END_STATE"}
    assert [d["code"] for d in sfn.validate_state_machine_definition(definition="{")["diagnostics"]] == [
        "INVALID_JSON_DESCRIPTION"]
    unknown_type = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Sleep", "End": True}}})
    assert sfn.validate_state_machine_definition(definition=unknown_type)["result"] == "FAIL"


@mock_aws
def test_state_machine_versions_are_listed(correct) -> None:
    sfn = client("stepfunctions")
    definition = json.dumps({"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}})
    arn = sfn.create_state_machine(name="m", definition=definition, roleArn=ROLE, publish=True)["stateMachineArn"]
    with pytest.raises(NotImplementedError):
        sfn.list_state_machine_versions(stateMachineArn=arn)
    correct("sfn-list-state-machine-versions")
    assert [v["stateMachineVersionArn"] for v in sfn.list_state_machine_versions(stateMachineArn=arn)[
        "stateMachineVersions"]] == [f"{arn}:1"]
    assert error_code(sfn.list_state_machine_versions, stateMachineArn=arn + "x") == "StateMachineDoesNotExist"


@mock_aws
def test_scalable_targets_keep_their_tags(correct) -> None:
    ecs, scaling = client("ecs"), client("application-autoscaling")
    ecs.create_cluster(clusterName="c")
    ecs.create_service(cluster="c", serviceName="s", desiredCount=1)
    target = {"ServiceNamespace": "ecs", "ResourceId": "service/c/s", "ScalableDimension": "ecs:service:DesiredCount"}
    arn = scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2)["ScalableTargetARN"]
    with pytest.raises(NotImplementedError):
        scaling.list_tags_for_resource(ResourceARN=arn)
    correct("appautoscaling-tags")
    arn = scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=2, Tags={"team": "a"})[
        "ScalableTargetARN"]
    scaling.tag_resource(ResourceARN=arn, Tags={"cost": "b"})
    scaling.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert scaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"cost": "b"}
    assert error_code(scaling.list_tags_for_resource, ResourceARN=arn + "x") == "ResourceNotFoundException"
    assert error_code(scaling.tag_resource, ResourceARN=arn, Tags={f"k{i}": "v" for i in range(50)}) \
        == "TooManyTagsException"
    scaling.deregister_scalable_target(**target)
    assert error_code(scaling.list_tags_for_resource, ResourceARN=arn) == "ResourceNotFoundException"


@mock_aws
def test_composite_alarms_are_created_described_by_type_and_deleted(correct) -> None:
    cloudwatch = client("cloudwatch")
    cloudwatch.put_metric_alarm(AlarmName="cpu", MetricName="CPU", Namespace="AWS/EC2", Statistic="Average",
                                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
    composite = {"AlarmName": "degraded", "AlarmRule": 'ALARM("cpu")'}
    with pytest.raises(NotImplementedError):
        cloudwatch.put_composite_alarm(**composite)
    assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 1
    correct("cloudwatch-composite-alarm")
    cloudwatch.put_composite_alarm(**composite, AlarmActions=["arn:aws:sns:eu-west-2:123456789012:t"])
    assert error_code(cloudwatch.put_composite_alarm, AlarmName="x", AlarmRule='ALARM("missing")') \
        == "ValidationError"
    described = cloudwatch.describe_alarms(AlarmNames=["degraded"], AlarmTypes=["CompositeAlarm"])
    assert [a["AlarmRule"] for a in described["CompositeAlarms"]] == ['ALARM("cpu")']
    assert described["MetricAlarms"] == []
    plain = cloudwatch.describe_alarms()  # AWS: metric alarms only unless AlarmTypes asks otherwise
    assert [a["AlarmName"] for a in plain["MetricAlarms"]] == ["cpu"] and plain["CompositeAlarms"] == []
    cloudwatch.delete_alarms(AlarmNames=["degraded"])
    assert cloudwatch.describe_alarms(AlarmTypes=["CompositeAlarm"])["CompositeAlarms"] == []


@mock_aws
def test_custom_domains_are_available_and_without_an_empty_mutual_tls(correct) -> None:
    gateway = client("apigatewayv2")
    configuration = {"CertificateArn": "arn:aws:acm:eu-west-2:123456789012:certificate/c", "EndpointType": "REGIONAL",
                     "SecurityPolicy": "TLS_1_2"}
    gateway.create_domain_name(DomainName="ws.example.com", DomainNameConfigurations=[configuration])
    read = gateway.get_domain_name(DomainName="ws.example.com")
    assert "DomainNameStatus" not in read["DomainNameConfigurations"][0] and read["MutualTlsAuthentication"] == {}
    correct("apigatewayv2-domain-status")
    read = gateway.get_domain_name(DomainName="ws.example.com")
    (config,) = read["DomainNameConfigurations"]
    assert config["DomainNameStatus"] == "AVAILABLE" and config["HostedZoneId"] == "ZJ5UAJN8Y3Z2Q"
    assert config["ApiGatewayDomainName"].endswith(".execute-api.eu-west-2.amazonaws.com")
    assert "MutualTlsAuthentication" not in read


def _network() -> tuple[str, str]:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="redis", Description="redis", VpcId=vpc)["GroupId"]
    client("elasticache").create_cache_subnet_group(CacheSubnetGroupName="redis", CacheSubnetGroupDescription="r",
                                                    SubnetIds=[subnet])
    return subnet, group


REDIS = {"ReplicationGroupDescription": "cache", "NumCacheClusters": 2, "CacheNodeType": "cache.t4g.micro",
         "Engine": "redis", "CacheSubnetGroupName": "redis", "AtRestEncryptionEnabled": True,
         "TransitEncryptionEnabled": True, "PreferredCacheClusterAZs": ["eu-west-2a", "eu-west-2b"]}


@mock_aws
def test_a_replication_group_has_its_members_with_the_groups_settings(correct) -> None:
    cache = client("elasticache")
    _, group = _network()
    cache.create_replication_group(ReplicationGroupId="before", SecurityGroupIds=[group], **REDIS)
    assert cache.describe_replication_groups(ReplicationGroupId="before")["ReplicationGroups"][0][
        "MemberClusters"] == ["before-001"]  # one member where two were asked for, and not created
    assert error_code(cache.describe_cache_clusters, CacheClusterId="before-001") == "CacheClusterNotFound"
    correct("elasticache-member-clusters")
    cache.create_replication_group(ReplicationGroupId="after", SecurityGroupIds=[group], **REDIS)
    assert cache.describe_replication_groups(ReplicationGroupId="after")["ReplicationGroups"][0][
        "MemberClusters"] == ["after-001", "after-002"]
    first = cache.describe_cache_clusters(CacheClusterId="after-001")["CacheClusters"][0]
    assert first["AtRestEncryptionEnabled"] is True and first["CacheSubnetGroupName"] == "redis"
    assert [g["SecurityGroupId"] for g in first["SecurityGroups"]] == [group]
    assert first["ReplicationGroupId"] == "after" and first["PreferredAvailabilityZone"] == "eu-west-2a"


@mock_aws
def test_a_deleted_replication_group_is_gone_and_then_its_subnet_group_can_go(correct) -> None:
    cache = client("elasticache")
    _network()
    correct("elasticache-member-clusters")
    cache.create_replication_group(ReplicationGroupId="before", **REDIS)
    cache.delete_replication_group(ReplicationGroupId="before")
    assert cache.describe_replication_groups(ReplicationGroupId="before")["ReplicationGroups"][0]["Status"] \
        == "deleting"  # for ever on moto
    with pytest.raises(NotImplementedError):
        cache.delete_cache_subnet_group(CacheSubnetGroupName="redis")
    correct("elasticache-replication-group-delete")
    correct("elasticache-subnet-group-delete")
    cache.create_replication_group(ReplicationGroupId="after", **REDIS)
    assert error_code(cache.delete_cache_subnet_group, CacheSubnetGroupName="redis") == "CacheSubnetGroupInUse"
    assert cache.delete_replication_group(ReplicationGroupId="after")["ReplicationGroup"]["Status"] == "deleting"
    assert error_code(cache.describe_replication_groups, ReplicationGroupId="after") == "ReplicationGroupNotFoundFault"
    assert not [c for c in cache.describe_cache_clusters()["CacheClusters"] if c["CacheClusterId"].startswith("after")]
    cache.delete_replication_group(ReplicationGroupId="before")
    cache.delete_cache_subnet_group(CacheSubnetGroupName="redis")
    assert cache.describe_cache_subnet_groups()["CacheSubnetGroups"] == []
    assert error_code(cache.delete_cache_subnet_group, CacheSubnetGroupName="redis") == "CacheSubnetGroupNotFoundFault"


@mock_aws
def test_resource_servers_can_be_deleted(correct) -> None:
    cognito = client("cognito-idp")
    pool = cognito.create_user_pool(PoolName="p")["UserPool"]["Id"]
    cognito.create_resource_server(UserPoolId=pool, Identifier="chat", Name="chat")
    with pytest.raises(NotImplementedError):
        cognito.delete_resource_server(UserPoolId=pool, Identifier="chat")
    correct("cognito-resource-server-delete")
    cognito.delete_resource_server(UserPoolId=pool, Identifier="chat")
    assert error_code(cognito.describe_resource_server, UserPoolId=pool, Identifier="chat") \
        == "ResourceNotFoundException"
    assert error_code(cognito.delete_resource_server, UserPoolId=pool, Identifier="chat") \
        == "ResourceNotFoundException"


@mock_aws
def test_saved_queries_are_put_described_and_deleted(correct) -> None:
    logs = client("logs")
    query = {"name": "llm/errors", "queryString": "fields @message | limit 5", "logGroupNames": ["/app"]}
    with pytest.raises(NotImplementedError):
        logs.put_query_definition(**query)
    correct("logs-query-definition")
    ident = logs.put_query_definition(**query)["queryDefinitionId"]
    logs.put_query_definition(**{**query, "queryString": "fields @timestamp"}, queryDefinitionId=ident)
    (found,) = logs.describe_query_definitions(queryDefinitionNamePrefix="llm/")["queryDefinitions"]
    assert (found["queryDefinitionId"], found["queryString"], found["logGroupNames"]) == (
        ident, "fields @timestamp", ["/app"])
    assert logs.describe_query_definitions(queryDefinitionNamePrefix="other/")["queryDefinitions"] == []
    assert logs.delete_query_definition(queryDefinitionId=ident)["success"] is True
    assert error_code(logs.delete_query_definition, queryDefinitionId=ident) == "ResourceNotFoundException"
    assert error_code(logs.put_query_definition, **query, queryDefinitionId=ident) == "ResourceNotFoundException"


@mock_aws
def test_backup_selections_belong_to_their_plan(correct) -> None:
    backup = client("backup")
    plan = backup.create_backup_plan(BackupPlan={"BackupPlanName": "p", "Rules": [
        {"RuleName": "r", "TargetBackupVaultName": "v"}]})["BackupPlanId"]
    selection = {"SelectionName": "data", "IamRoleArn": ROLE, "Resources": ["arn:aws:dynamodb:eu-west-2:1:table/t"]}
    with pytest.raises(NotImplementedError):
        backup.create_backup_selection(BackupPlanId=plan, BackupSelection=selection)
    correct("backup-selection")
    ident = backup.create_backup_selection(BackupPlanId=plan, BackupSelection=selection)["SelectionId"]
    assert backup.get_backup_selection(BackupPlanId=plan, SelectionId=ident)["BackupSelection"] == selection
    assert [s["SelectionId"] for s in backup.list_backup_selections(BackupPlanId=plan)["BackupSelectionsList"]] \
        == [ident]
    assert error_code(backup.delete_backup_plan, BackupPlanId=plan) == "InvalidRequestException"
    assert error_code(backup.create_backup_selection, BackupPlanId=plan,
                      BackupSelection={**selection, "SelectionName": "no spaces allowed"}) \
        == "InvalidParameterValueException"
    assert error_code(backup.create_backup_selection, BackupPlanId="unknown", BackupSelection=selection) \
        == "ResourceNotFoundException"
    backup.delete_backup_selection(BackupPlanId=plan, SelectionId=ident)
    assert error_code(backup.get_backup_selection, BackupPlanId=plan, SelectionId=ident) == "ResourceNotFoundException"
    backup.delete_backup_plan(BackupPlanId=plan)


@mock_aws
def test_pull_through_cache_rules_are_kept_per_prefix(correct) -> None:
    ecr = client("ecr")
    secret = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:ecr-pullthroughcache/docker-hub-AbCdEf"
    rule = {"ecrRepositoryPrefix": "docker-hub", "upstreamRegistryUrl": "registry-1.docker.io",
            "credentialArn": secret}
    with pytest.raises(NotImplementedError):
        ecr.create_pull_through_cache_rule(**rule)
    correct("ecr-pull-through-cache-rule")
    assert ecr.create_pull_through_cache_rule(**rule)["upstreamRegistry"] == "docker-hub"
    assert error_code(ecr.create_pull_through_cache_rule, **rule) == "PullThroughCacheRuleAlreadyExistsException"
    assert error_code(ecr.create_pull_through_cache_rule, **{**rule, "ecrRepositoryPrefix": "ghcr",
                      "upstreamRegistryUrl": "ghcr.io", "credentialArn": secret.replace("ecr-pullthroughcache/", "")}) \
        == "InvalidParameterException"
    (found,) = ecr.describe_pull_through_cache_rules(ecrRepositoryPrefixes=["docker-hub"])["pullThroughCacheRules"]
    assert (found["upstreamRegistryUrl"], found["credentialArn"]) == ("registry-1.docker.io", secret)
    ecr.delete_pull_through_cache_rule(ecrRepositoryPrefix="docker-hub")
    assert error_code(ecr.describe_pull_through_cache_rules, ecrRepositoryPrefixes=["docker-hub"]) \
        == "PullThroughCacheRuleNotFoundException"


@mock_aws
def test_ecs_services_keep_their_settings(correct) -> None:
    ecs = client("ecs")
    ecs.create_cluster(clusterName="c")
    settings = {"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}],
                "enableExecuteCommand": True, "enableECSManagedTags": True, "healthCheckGracePeriodSeconds": 60}

    def created(name: str) -> dict[str, Any]:
        ecs.create_service(cluster="c", serviceName=name, desiredCount=1, **settings)
        return dict(ecs.describe_services(cluster="c", services=[name])["services"][0])

    assert "capacityProviderStrategy" not in created("before")
    correct("ecs-service-settings")
    after = created("after")
    assert {key: after.get(key) for key in settings} == settings and "launchType" not in after
    assert error_code(ecs.create_service, cluster="c", serviceName="both", launchType="FARGATE", **settings) \
        == "InvalidParameterException"


@mock_aws
def test_a_fargate_task_without_container_memory_runs(correct) -> None:
    """The proxy's migration task sets memory on the task only, as Fargate allows."""
    ecs, ec2 = client("ecs"), client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # as the network layer's VPC
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    ecs.create_cluster(clusterName="c")
    ecs.register_task_definition(family="migrate", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                 cpu="256", memory="512", containerDefinitions=[{"name": "litellm", "image": "x"}])

    def run() -> Any:
        return ecs.run_task(cluster="c", taskDefinition="migrate", launchType="FARGATE", count=1,
                            networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": []}})

    with pytest.raises(TypeError):  # moto's own: a 500 from its server
        run()
    correct("ecs-fargate-container-memory")
    assert run()["tasks"][0]["containers"][0]["name"] == "litellm"


def test_the_servers_one_off_task_has_stopped_when_first_described(tmp_path) -> None:
    """`pipeline apply` waits for the migration task to stop; moto runs no container, so the
    rehearsal's server reports it stopped (exit 0) at the first DescribeTasks."""
    from modules.rehearsal.emulator import MotoServer

    with MotoServer("123456789012", tmp_path / "moto.log") as server:
        ecs, ec2 = server.client("ecs", REGION), server.client("ec2", REGION)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        ecs.create_cluster(clusterName="c")
        ecs.register_task_definition(family="migrate", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                                     cpu="256", memory="512", containerDefinitions=[{"name": "litellm", "image": "x"}])
        task = ecs.run_task(cluster="c", taskDefinition="migrate", launchType="FARGATE", count=1, networkConfiguration={
            "awsvpcConfiguration": {"subnets": [subnet], "securityGroups": []}})["tasks"][0]["taskArn"]
        described = ecs.describe_tasks(cluster="c", tasks=[task])["tasks"][0]
    assert described["lastStatus"] == "STOPPED" and described["containers"][0]["exitCode"] == 0


def regional(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, aws_access_key_id="test", aws_secret_access_key="test")


@mock_aws
def test_multi_region_keys_decrypt_what_they_encrypted_in_either_region(correct) -> None:
    primary = regional("kms", "us-west-2").create_key(MultiRegion=True)["KeyMetadata"]
    regional("kms", "us-west-2").replicate_key(KeyId=primary["KeyId"], ReplicaRegion="us-east-1")

    def data_key() -> bytes:
        return bytes(regional("kms", "us-west-2").generate_data_key(
            KeyId=primary["Arn"], KeySpec="AES_256", EncryptionContext={"userSession": "u#s"})["CiphertextBlob"])

    assert error_code(regional("kms", "us-west-2").decrypt, CiphertextBlob=data_key(),
                      EncryptionContext={"userSession": "u#s"}) == "AccessDeniedException"
    correct("kms-multi-region-ciphertext")
    blob = data_key()
    for region in ("us-west-2", "us-east-1"):
        answer = regional("kms", region).decrypt(CiphertextBlob=blob, EncryptionContext={"userSession": "u#s"})
        assert answer["KeyId"] == primary["Arn"].replace("us-west-2", region)
    assert error_code(regional("kms", "us-west-2").decrypt, CiphertextBlob=blob,
                      EncryptionContext={"userSession": "other"}) == "InvalidCiphertextException"
    single = regional("kms", "us-west-2").create_key()["KeyMetadata"]["Arn"]
    sealed = regional("kms", "us-west-2").encrypt(KeyId=single, Plaintext=b"x")["CiphertextBlob"]
    assert regional("kms", "us-west-2").decrypt(CiphertextBlob=sealed)["Plaintext"] == b"x"


@mock_aws
def test_a_secrets_replica_reports_its_own_key(correct) -> None:
    key = regional("kms", "us-east-1").create_key()["KeyMetadata"]["Arn"]
    secrets = regional("secretsmanager", "us-west-2")

    def replica_key(name: str) -> str:
        secrets.create_secret(Name=name, SecretString="s", AddReplicaRegions=[{"Region": "us-east-1", "KmsKeyId": key}])
        return str(secrets.describe_secret(SecretId=name)["ReplicationStatus"][0]["KmsKeyId"])

    assert replica_key("before") == "alias/aws/secretsmanager"
    correct("secretsmanager-replica-kms-key")
    assert replica_key("after") == key
    secrets.create_secret(Name="default", SecretString="s", AddReplicaRegions=[{"Region": "us-east-1"}])
    assert secrets.describe_secret(SecretId="default")["ReplicationStatus"][0]["KmsKeyId"] == "alias/aws/secretsmanager"


@mock_aws
def test_a_rule_referencing_a_group_keeps_its_description(correct) -> None:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    app, db = (ec2.create_security_group(GroupName=n, Description=n, VpcId=vpc)["GroupId"] for n in ("app", "db"))

    def described(port: int) -> Any:
        rule = ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
            "UserIdGroupPairs": [{"GroupId": app, "Description": "from app"}]}])["SecurityGroupRules"][0]
        found = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
        return found["SecurityGroupRules"][0].get("Description")

    assert described(5432) is None
    correct("sg-rule-referenced-group-description")
    assert described(6379) == "from app"


def _zip() -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    return buffer.getvalue()


@mock_aws
def test_functions_keep_their_logging_config(correct) -> None:
    role = client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    functions = client("lambda")
    logging = {"LogFormat": "JSON", "LogGroup": "/llmlite/dev/worker"}

    def created(name: str, **extra: Any) -> Any:
        functions.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="index.handler",
                                  Code={"ZipFile": _zip()}, **extra)
        return functions.get_function_configuration(FunctionName=name).get("LoggingConfig")

    assert created("before", LoggingConfig=logging) is None
    correct("lambda-logging-config")
    assert created("after", LoggingConfig=logging) == logging
    assert created("default") == {"LogFormat": "Text", "LogGroup": "/aws/lambda/default"}
    functions.update_function_configuration(FunctionName="default", LoggingConfig=logging)
    assert functions.get_function_configuration(FunctionName="default")["LoggingConfig"] == logging


def _group_with(autoscaling: Any, name: str, **settings: Any) -> None:
    autoscaling.create_launch_configuration(LaunchConfigurationName=name, ImageId="ami-12c6146b",
                                            InstanceType="t3.micro")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, LaunchConfigurationName=name, MinSize=0,
                                          MaxSize=1, AvailabilityZones=[f"{REGION}a"], **settings)


@mock_aws
def test_scaling_policies_keep_enabled(correct) -> None:
    autoscaling = client("autoscaling")
    _group_with(autoscaling, "g")

    def enabled(name: str, **extra: Any) -> Any:
        autoscaling.put_scaling_policy(AutoScalingGroupName="g", PolicyName=name, PolicyType="SimpleScaling",
                                       AdjustmentType="ChangeInCapacity", ScalingAdjustment=1, **extra)
        policy = autoscaling.describe_policies(PolicyNames=[name])["ScalingPolicies"][0]
        return policy.get("Enabled"), policy.get("PredictiveScalingConfiguration")

    assert enabled("before") == (None, {})
    correct("autoscaling-policy-enabled")
    assert enabled("after") == (True, None)
    assert enabled("off", Enabled=False) == (False, None)


@mock_aws
def test_groups_keep_their_warmup_and_maintenance_policy(correct) -> None:
    autoscaling = client("autoscaling")
    settings = {"DefaultInstanceWarmup": 300, "InstanceMaintenancePolicy": {"MinHealthyPercentage": 90,
                                                                             "MaxHealthyPercentage": 120}}

    def described(name: str) -> Any:
        _group_with(autoscaling, name, **settings)
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return {key: group.get(key) for key in settings}

    assert described("before") == {"DefaultInstanceWarmup": None, "InstanceMaintenancePolicy": None}
    correct("autoscaling-group-settings")
    assert described("after") == settings
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="after", DefaultInstanceWarmup=60)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["after"])["AutoScalingGroups"][0]
    assert (group["DefaultInstanceWarmup"], group["InstanceMaintenancePolicy"]) == (
        60, settings["InstanceMaintenancePolicy"])


@mock_aws
def test_an_update_that_names_no_policy_keeps_the_mixed_instances_policy(correct) -> None:
    ec2, autoscaling = client("ec2"), client("autoscaling")
    template = ec2.create_launch_template(LaunchTemplateName="gpu", LaunchTemplateData={
        "ImageId": "ami-12c6146b"})["LaunchTemplate"]["LaunchTemplateId"]
    policy = {"LaunchTemplate": {"LaunchTemplateSpecification": {"LaunchTemplateId": template, "Version": "1"},
                                 "Overrides": [{"InstanceType": "g5.xlarge"}, {"InstanceType": "g6.xlarge"}]}}

    def after_update(name: str) -> Any:
        autoscaling.create_auto_scaling_group(AutoScalingGroupName=name, MixedInstancesPolicy=policy, MinSize=0,
                                              MaxSize=1, AvailabilityZones=[f"{REGION}a"])
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, DesiredCapacity=1)
        return autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0].get(
            "MixedInstancesPolicy")

    assert not after_update("before")
    correct("autoscaling-update-clears-mixed-instances-policy")
    kept = after_update("after")
    assert [o["InstanceType"] for o in kept["LaunchTemplate"]["Overrides"]] == ["g5.xlarge", "g6.xlarge"]


@mock_aws
def test_a_zone_created_with_a_vpc_is_private(correct) -> None:
    vpc = client("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    route53 = client("route53")

    def zone(name: str) -> Any:
        created = route53.create_hosted_zone(Name=name, CallerReference=name, VPC={"VPCRegion": REGION, "VPCId": vpc})
        return route53.get_hosted_zone(Id=created["HostedZone"]["Id"])

    assert zone("before.internal.").get("VPCs") is None
    correct("route53-private-zone-vpc")
    after = zone("after.internal.")
    assert after["HostedZone"]["Config"]["PrivateZone"] is True
    assert [v["VPCId"] for v in after["VPCs"]] == [vpc]
    public = route53.create_hosted_zone(Name="example.com.", CallerReference="public")["HostedZone"]
    assert public["Config"]["PrivateZone"] is False


@mock_aws
def test_a_replica_key_gets_the_requests_description_policy_and_tags(correct) -> None:
    kms = regional("kms", "us-west-2")
    primary = kms.create_key(MultiRegion=True, Description="primary")["KeyMetadata"]["KeyId"]
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Sid": "replica", "Effect": "Allow", "Principal": {
        "AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}]})
    request = {"Description": "replica", "Policy": policy, "Tags": [{"TagKey": "Project", "TagValue": "x"}]}

    def replica(region: str) -> Any:
        answer = kms.replicate_key(KeyId=primary, ReplicaRegion=region, **request)
        there = regional("kms", region)
        return (answer["ReplicaKeyMetadata"]["Description"], there.describe_key(KeyId=primary)["KeyMetadata"][
            "Description"], there.get_key_policy(KeyId=primary, PolicyName="default")["Policy"], there.list_resource_tags(KeyId=primary)["Tags"])

    assert replica("us-east-1")[1:] != ("replica", policy, request["Tags"])
    correct("kms-replicate-key-request")
    assert replica("us-east-2") == ("replica", "replica", policy, request["Tags"])
    assert kms.describe_key(KeyId=primary)["KeyMetadata"]["Description"] == "primary"


@mock_aws
def test_a_launch_templates_own_tags_stay_out_of_its_data(correct) -> None:
    ec2 = client("ec2")
    data = {"ImageId": "ami-12c6146b", "TagSpecifications": [{"ResourceType": "instance", "Tags": [
        {"Key": "Name", "Value": "gpu"}]}]}
    own = [{"ResourceType": "launch-template", "Tags": [{"Key": "Project", "Value": "x"}]}]

    def created(name: str) -> tuple[list[str], list[dict[str, str]]]:
        ident = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data,
                                           TagSpecifications=own)["LaunchTemplate"]["LaunchTemplateId"]
        version = ec2.describe_launch_template_versions(LaunchTemplateId=ident)["LaunchTemplateVersions"][0]
        template = ec2.describe_launch_templates(LaunchTemplateIds=[ident])["LaunchTemplates"][0]
        return [t["ResourceType"] for t in version["LaunchTemplateData"]["TagSpecifications"]], template["Tags"]

    assert created("before")[0] == ["instance", "launch-template"]
    correct("launch-template-own-tags")
    assert created("after") == (["instance"], [{"Key": "Project", "Value": "x"}])
