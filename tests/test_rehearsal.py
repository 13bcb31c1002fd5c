"""The offline rehearsal's copies, safety checks, emulator differences and reports (no Terraform run).

The full apply against moto is the command itself (`python -m modules.rehearsal dev`), not run here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import ROOT
from modules.rehearsal import differences, terraform as tf
from modules.rehearsal.differences import Seeded, apply_rewrites, explain_drift, markdown_table
from modules.rehearsal.plan import dependency_order, load_stacks
from modules.rehearsal.report import EnvironmentResult, StackResult, write_junit
from modules.rehearsal.rewrite import (PROVIDER_GAP, Target, UnsafeCopy, account_of, certificate_arns,
                                       check_loopback, rehearsal_copy)

KEYS = ("acm", "ec2", "iam", "s3", "sts")


def target(tmp_path: Path, endpoint: str = "http://127.0.0.1:4566", account: str = "111122223333") -> Target:
    return Target(endpoint=endpoint, endpoint_keys=KEYS, account_id=account, state_dir=tmp_path / "state",
                  provider_version="5.100.0")


def test_copy_runs_on_loopback_with_fake_credentials_local_state_and_the_mirrors_provider(stacks, tmp_path) -> None:
    doc, notes = rehearsal_copy(stacks["prod-network"].doc, "prod-network", target(tmp_path))
    assert doc["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"
    assert doc["terraform"]["backend"] == {"local": {"path": str(tmp_path / "state" / "prod-network.tfstate")}}
    assert doc["data"]["terraform_remote_state"]["cross-stack-reference-input-prod-foundation"] == {
        "backend": "local", "config": {"path": str(tmp_path / "state" / "prod-foundation.tfstate")}}
    (provider,) = doc["provider"]["aws"]
    assert provider["endpoints"] == [{k: "http://127.0.0.1:4566" for k in KEYS}]
    assert (provider["access_key"], provider["secret_key"]) == ("test", "test")
    assert provider["allowed_account_ids"] == ["111122223333"]
    version = stacks["prod-network"].doc["terraform"]["required_providers"]["aws"]["version"]
    assert any(version in n and "5.100.0" in n for n in notes) and any("backend s3 -> local" in n for n in notes)
    # the synthesized stack itself is untouched
    assert stacks["prod-network"].doc["terraform"]["backend"].keys() == {"s3"}


@pytest.mark.parametrize("change, message", [
    (lambda d: d["provider"]["aws"][0]["endpoints"][0].update(ec2="https://ec2.eu-west-2.amazonaws.com"),
     "endpoints not on loopback: ec2"),
    (lambda d: d["provider"]["aws"][0]["endpoints"][0].pop("sts"), "no emulator endpoint for sts"),
    (lambda d: d["provider"]["aws"][0].update(profile="prod-admin"), "profile would use a real identity"),
    (lambda d: d["provider"]["aws"][0].update(secret_key="AKIA-real"), "credentials are not the rehearsal's"),
    (lambda d: d["provider"]["aws"][0].update(allowed_account_ids=["999999999999"]), "exclude the emulator's"),
    (lambda d: d["terraform"].update(backend={"s3": {"bucket": "x"}}), "backend s3 is not local"),
    (lambda d: d["terraform"]["required_providers"].update(http={"source": "hashicorp/http"}),
     "providers other than aws (http)"),
])
def test_a_copy_that_could_leave_loopback_is_refused(stacks, tmp_path, change, message) -> None:
    dev = target(tmp_path, account="444455556666")  # dev's own account
    doc, _ = rehearsal_copy(stacks["dev-edge"].doc, "dev-edge", dev)
    change(doc)
    with pytest.raises(UnsafeCopy, match=re.escape(message)):
        check_loopback(doc, dev)


def test_an_emulator_outside_loopback_is_refused(stacks, tmp_path) -> None:
    with pytest.raises(UnsafeCopy, match="not a loopback address"):
        rehearsal_copy(stacks["dev-edge"].doc, "dev-edge", target(tmp_path, endpoint="http://10.0.0.5:4566"))


def test_every_provider_block_of_a_stack_is_redirected_including_replica_regions(stacks, tmp_path) -> None:
    doc, _ = rehearsal_copy(stacks["prod-us-foundation"].doc, "prod-us-foundation", target(tmp_path))
    blocks = doc["provider"]["aws"]
    assert {b.get("alias") for b in blocks} == {None, "us_east_1"}
    assert all(b["endpoints"] == [{k: "http://127.0.0.1:4566" for k in KEYS}] for b in blocks)


def test_provider_gap_strips_6x_only_arguments_and_says_why(stacks, tmp_path) -> None:
    (gap,) = [g for g in PROVIDER_GAP if g.resource_type == "aws_dynamodb_table"]
    doc, notes = rehearsal_copy(stacks["prod-us-data"].doc, "prod-us-data", target(tmp_path))
    replicas = [r for t in doc["resource"]["aws_dynamodb_table"].values() for r in t.get("replica", [])]
    assert replicas and all("deletion_protection_enabled" not in r for r in replicas)
    assert any(gap.path in n and "6.x" in n for n in notes)


def test_provider_gap_drops_the_write_only_auth_token_and_keeps_the_secret_its_consumers_read(stacks,
                                                                                              tmp_path) -> None:
    doc, notes = rehearsal_copy(stacks["prod-data"].doc, "prod-data", target(tmp_path))
    (redis,) = doc["resource"]["aws_elasticache_replication_group"].values()
    assert not {"auth_token", "auth_token_wo", "auth_token_wo_version"} & set(redis)
    assert sum("auth_token_wo" in n and "6.x" in n for n in notes) == 2
    # the secret is still generated and written, and published for LiteLLM and the functions
    (version,) = doc["resource"]["aws_secretsmanager_secret_version"].values()
    assert version["secret_string_wo"].startswith("${ephemeral.aws_secretsmanager_random_password.")
    assert "redis_auth_secret_arn" in doc["output"]


def test_the_emulator_answers_as_the_account_the_provider_allows(stacks) -> None:
    docs = [s.doc for name, s in stacks.items() if name.startswith("dev-")]
    pinned = {a for d in docs for b in d["provider"]["aws"] for a in b.get("allowed_account_ids", [])}
    assert account_of(docs, "123456789012") == (pinned.pop() if pinned else "123456789012")
    two = [{"provider": {"aws": [{"allowed_account_ids": ["111122223333"]}]}},
           {"provider": {"aws": [{"allowed_account_ids": ["444455556666"]}]}}]
    with pytest.raises(UnsafeCopy, match="different accounts"):
        account_of(two, "123456789012")


def test_stacks_are_rehearsed_in_dependency_order(synth_outdir) -> None:
    order = dependency_order(load_stacks(synth_outdir, "prod"))
    assert order.index("prod-foundation") < order.index("prod-network") < order.index("prod-data") \
        < order.index("prod-gateway") < order.index("prod-observability")
    assert order[-1] == "prod-observability" and set(order) >= {"prod-state", "prod-realtime"}


def test_emulator_rewrites_certificate_arns_log_delivery_policy_and_public_ami_parameter(stacks, tmp_path) -> None:
    configured = sorted(certificate_arns(stacks["dev-edge"].doc))[0]
    seeded = Seeded(certificate_arns={configured: "arn:aws:acm:eu-west-2:123456789012:certificate/emulated"})
    edge = json.loads(json.dumps(stacks["dev-edge"].doc))
    assert "emulator difference acm-certificate-arn: 1 place(s) rewritten" in apply_rewrites(edge, seeded)
    assert configured not in json.dumps(edge)

    foundation = json.loads(json.dumps(stacks["dev-foundation"].doc))
    apply_rewrites(foundation, seeded)
    policies = [json.loads(p["policy"]) for p in foundation["resource"]["aws_s3_bucket_policy"].values()]
    delivery = [s for p in policies for s in p["Statement"] if s.get("Sid") == "S3ServerAccessLogDelivery"]
    assert delivery and all(isinstance(s["Resource"], str) for s in delivery)

    llm = json.loads(json.dumps(stacks["dev-llm"].doc))
    apply_rewrites(llm, seeded)
    (parameter,) = llm["data"]["aws_ssm_parameter"].values()
    assert parameter["name"] == differences.EMULATED_AMI_PARAMETER


def test_only_the_public_parameters_the_project_reads_are_read_as_the_emulated_one(stacks) -> None:
    """The row maps exact names: a misspelt Deep Learning AMI path stays misspelt and fails the apply."""
    from modules.layers.llm import AMI_PARAMETER

    assert differences.PUBLIC_PARAMETERS_NOT_EMULATED == {AMI_PARAMETER}
    misspelt = AMI_PARAMETER.replace("amazon-linux-2023", "amazon-linux-2O23")
    llm = json.loads(json.dumps(stacks["dev-llm"].doc))
    (parameter,) = llm["data"]["aws_ssm_parameter"].values()
    parameter["name"] = misspelt
    assert apply_rewrites(llm, Seeded()) == [] and parameter["name"] == misspelt


def test_no_row_leaves_a_resource_out_of_the_copy(stacks) -> None:
    """Every resource of every environment is created and destroyed by Terraform: the rewrites
    change arguments, never the set of resources (nor a reference to one)."""
    seeded = Seeded(certificate_arns={arn: "arn:aws:acm:eu-west-2:123456789012:certificate/emulated"
                                      for stack in stacks.values() for arn in certificate_arns(stack.doc)})
    for name, stack in stacks.items():
        copy = json.loads(json.dumps(stack.doc))
        apply_rewrites(copy, seeded)
        assert {(t, a) for t, blocks in copy.get("resource", {}).items() for a in blocks} == {
            (t, a) for t, blocks in stack.doc.get("resource", {}).items() for a in blocks}, name
    assert not any(getattr(row, "teardown", None) or getattr(row, "seed", None) for row in differences.DIFFERENCES)



def test_the_rehearsal_swallows_no_error_and_drops_nothing_from_state() -> None:
    """No broad `except` that could hide a failed call (one that catches everything must name the
    error and use it: the crash-safe paths record it in the report), and no `terraform state rm`:
    what Terraform created, Terraform destroys (or the stack fails)."""
    import ast

    def swallows(handler: ast.ExceptHandler) -> bool:
        broad = handler.type is None or (isinstance(handler.type, ast.Name) and handler.type.id in (
            "Exception", "BaseException"))
        used = handler.name is not None and any(isinstance(n, ast.Name) and n.id == handler.name
                                                for statement in handler.body for n in ast.walk(statement))
        return broad and not used

    for path in sorted((ROOT / "modules" / "rehearsal").rglob("*.py")):
        tree = ast.parse(path.read_text())
        broad = [node.lineno for node in ast.walk(tree) if isinstance(node, ast.ExceptHandler) and swallows(node)]
        assert broad == [], f"{path.name}: an except swallowing every error at line(s) {broad}"
        commands = [[e.value for e in node.elts if isinstance(e, ast.Constant)] for node in ast.walk(tree)
                    if isinstance(node, ast.List)]
        assert not [c for c in commands if c[:2] == ["state", "rm"]], f"{path.name}: terraform state rm"

def test_replica_keys_are_rehearsed_with_their_own_policy_and_tags(stacks) -> None:
    foundation = json.loads(json.dumps(stacks["prod-us-foundation"].doc))
    before = json.loads(json.dumps(foundation))
    apply_rewrites(foundation, Seeded())
    assert foundation["resource"]["aws_kms_replica_key"] == before["resource"]["aws_kms_replica_key"]
    assert foundation["provider"] == before["provider"]  # the replicas' region keeps its default tags


def test_global_tables_are_rehearsed_without_their_replicas(stacks) -> None:
    data = json.loads(json.dumps(stacks["prod-us-data"].doc))
    tables = data["resource"]["aws_dynamodb_table"]
    assert any("replica" in table for table in tables.values())  # prod-us replicates to us-east-1
    notes = apply_rewrites(data, Seeded())
    assert any(note.startswith("emulator difference dynamodb-global-table-replicas") for note in notes)
    assert all("replica" not in table and "server_side_encryption" in table for table in tables.values())


def _explained(type_: str, before: dict, after: dict) -> str | None:
    rows = explain_drift(type_, differences.changes(before, after, {}), before)
    return ", ".join(row.name for row in rows) or None


def test_a_change_known_only_after_apply_is_a_consequence_not_a_drift() -> None:
    """A group pinned to its template's latest version: when the template changes, the
    version inside the mixed instances policy is unknown until apply. That follows from the
    template's change; a changed instance type next to it is a drift of its own."""
    def policy(version: str | None, instance_type: str = "g5.xlarge") -> dict:
        return {"mixed_instances_policy": [{"launch_template": [{
            "launch_template_specification": [{"launch_template_id": "lt-1", "version": version}],
            "override": [{"instance_type": instance_type}]}]}]}
    unknown = {"mixed_instances_policy": [{"launch_template": [{
        "launch_template_specification": [{"version": True}], "override": [{}]}]}]}
    assert differences.changes(policy("1"), policy(None), unknown) == {}
    assert set(differences.changes(policy("1"), policy(None, "g6.xlarge"), unknown)) == {"mixed_instances_policy"}
    assert set(differences.changes(policy("1"), policy("2"), {})) == {"mixed_instances_policy"}


def test_a_destroy_is_retried_only_when_every_error_is_a_known_emulator_race() -> None:
    race = ("Error: deleting VPC Security Group Rule (sgr-1)\n\napi error InvalidPermission.NotFound: "
            "The specified rule does not exist in this security group.")
    assert differences.destroy_retry(tf.errors(race), race).name == "ec2-rule-revoke-not-found"
    other = race + "\nError: deleting RDS DB Instance (db): InvalidDBInstanceState"
    assert differences.destroy_retry(tf.errors(other), other) is None
    denied = "Error: deleting VPC Security Group Rule (sgr-1)\n\napi error UnauthorizedOperation"
    assert differences.destroy_retry(tf.errors(denied), denied) is None
    assert differences.destroy_retry([], "") is None


def test_only_the_known_false_drift_is_explained() -> None:
    # a rule that reads back without its description is a real change (corrected in the emulator), as is a
    # changed port or a rule on a CIDR
    rule = {"referenced_security_group_id": "sg-1", "from_port": 443, "description": None}
    assert _explained("aws_vpc_security_group_ingress_rule", rule, {**rule, "description": "gateway to Redis"}) \
        is None
    assert _explained("aws_vpc_security_group_ingress_rule", rule, {**rule, "description": "x", "from_port": 80}) \
        is None
    cidr = {"cidr_ipv4": "10.0.0.0/16", "description": None}
    assert _explained("aws_vpc_security_group_egress_rule", cidr, {**cidr, "description": "x"}) is None
    # groups, replica keys and zones read back as created (corrected in the emulator): each change is real
    replica = {"description": "primary's", "enabled": True}
    assert _explained("aws_kms_replica_key", replica, {**replica, "description": "replica's"}) is None
    assert _explained("aws_kms_replica_key", replica, {"description": "replica's", "enabled": False}) is None
    assert _explained("aws_kms_key", replica, {**replica, "description": "replica's"}) is None
    group = {"default_instance_warmup": 0, "max_size": 1, "capacity_reservation_specification": [
        {"capacity_reservation_preference": None}]}
    assert _explained("aws_autoscaling_group", group, {**group, "default_instance_warmup": 300,
                      "capacity_reservation_specification": [{"capacity_reservation_preference": ""}]}) is None
    assert _explained("aws_autoscaling_group", group, {**group, "default_instance_warmup": 300, "max_size": 2}) is None
    hooked = {**group, "initial_lifecycle_hook": [{"name": "model-ready"}], "mixed_instances_policy": []}
    mixed = [{"launch_template": [{"override": [{"instance_type": "g5.xlarge"}]}]}]
    assert _explained("aws_autoscaling_group", hooked, {**hooked, "default_instance_warmup": 300,
                      "mixed_instances_policy": mixed}) is None
    assert _explained("aws_autoscaling_group", {**hooked, "initial_lifecycle_hook": []},
                      {**hooked, "initial_lifecycle_hook": [], "mixed_instances_policy": mixed}) is None
    assert _explained("aws_autoscaling_group", {**hooked, "mixed_instances_policy": mixed},
                      {**hooked, "mixed_instances_policy": [{"launch_template": []}]}) is None
    policy = {"enabled": False, "predictive_scaling_configuration": [{"mode": "", "metric_specification": []}]}
    assert _explained("aws_autoscaling_policy", policy, {"enabled": True, "predictive_scaling_configuration": []}) \
        is None
    tags = [{"resource_type": "instance", "tags": {"Name": "gpu"}}]
    template = {"tag_specifications": [*tags, {"resource_type": "launch-template", "tags": {"Project": "x"}}]}
    assert _explained("aws_launch_template", template, {"tag_specifications": tags}) is None
    assert _explained("aws_launch_template", template, {"tag_specifications": []}) is None
    assert _explained("aws_route53_zone", {"vpc": []}, {"vpc": [{"vpc_id": "vpc-1"}]}) is None
    assert _explained("aws_route53_zone", {"vpc": [{"vpc_id": "vpc-1"}]}, {"vpc": [{"vpc_id": "vpc-2"}]}) is None
    insights = {"performance_insights_enabled": False, "performance_insights_retention_period": 0}
    assert _explained("aws_db_instance", insights, {"performance_insights_enabled": True,
                                                    "performance_insights_retention_period": 7}) \
        == "rds-performance-insights"
    assert _explained("aws_db_instance", {**insights, "multi_az": True}, {**insights, "multi_az": False}) is None
    assert _explained("aws_db_parameter_group", {"parameter": []}, {"parameter": [{"name": "rds.force_ssl"}]}) \
        == "rds-parameter-source"
    # the Redis group and the ECS service read back as created (corrected in the emulator): no change of theirs
    redis = {"at_rest_encryption_enabled": "false", "num_cache_clusters": 1, "node_type": "cache.t4g.micro"}
    assert _explained("aws_elasticache_replication_group", redis, {
        **redis, "at_rest_encryption_enabled": "true"}) is None
    assert _explained("aws_elasticache_replication_group", redis, {**redis, "num_cache_clusters": 2}) is None
    assert _explained("aws_lambda_function", {"logging_config": []}, {"logging_config": [{"log_format": "JSON"}]}) \
        is None
    service = {"enable_execute_command": False, "capacity_provider_strategy": [], "deployment_controller": []}
    assert _explained("aws_ecs_service", service, {**service, "enable_execute_command": True}) is None
    assert _explained("aws_ecs_service", service, {**service, "deployment_controller": [{"type": "ECS"}]}) is None
    queue = {"redrive_policy": '{"deadLetterTargetArn": "arn:q", "maxReceiveCount": 3}'}
    assert _explained("aws_sqs_queue", queue, {"redrive_policy": '{"deadLetterTargetArn":"arn:q","maxReceiveCount":3}'}) \
        == "sqs-redrive-policy-format"
    assert _explained("aws_sqs_queue", queue, {"redrive_policy": '{"deadLetterTargetArn":"arn:q","maxReceiveCount":5}'}) \
        is None


def test_readme_shows_the_emulator_difference_table_and_the_provider_gap() -> None:
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme
    for gap in PROVIDER_GAP:
        assert f"`{gap.resource_type}.{gap.path}`" in readme


def test_junit_report_names_each_stack_and_its_unexplained_failure(tmp_path) -> None:
    ok = StackResult("dev-network", created=93, drift="16 explained", destroy="destroyed", seconds=12)
    bad = StackResult("dev-edge", created=20, drift="1 UNEXPLAINED", destroy="destroyed",
                      failures=["drift: aws_lb.x would update (idle_timeout)"])
    write_junit([EnvironmentResult("dev", [ok, bad])], tmp_path / "junit.xml")
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["dev-network"].find("failure") is None
    assert "idle_timeout" in cases["dev-edge"].find("failure").get("message")


def test_missing_terraform_or_mirror_is_one_clear_line(tmp_path, monkeypatch) -> None:
    with pytest.raises(tf.ToolError, match="no AWS provider in the local mirror"):
        tf.find_toolchain(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(tf.ToolError, match="terraform is not on PATH"):
        tf.find_toolchain()
    done = subprocess.run([sys.executable, "-m", "modules.rehearsal", "dev", "--work-dir", str(tmp_path / "w")],
                          cwd=ROOT, capture_output=True, text=True, env={"PATH": str(tmp_path)})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "rehearsal: terraform is not on PATH: install Terraform >= 1.11 (this project uses 1.11.4)."]


def test_terraform_and_its_provider_run_with_the_laxer_garbage_collector_unless_the_caller_chose(tmp_path,
                                                                                                  monkeypatch) -> None:
    toolchain = tf.Toolchain("terraform", tmp_path, "5.100.0")
    monkeypatch.delenv("GOGC", raising=False)
    monkeypatch.setenv("AWS_PROFILE", "someone")
    env = toolchain.env(tmp_path / "terraform.rc")
    assert env["GOGC"] == tf.PROVIDER_GOGC == "400" and "AWS_PROFILE" not in env
    monkeypatch.setenv("GOGC", "150")
    assert toolchain.env(tmp_path / "terraform.rc")["GOGC"] == "150"


def test_the_emulator_keeps_a_replicated_primary_key_primary(monkeypatch) -> None:
    """moto's bug the row names exists, and the rehearsal's server corrects it."""
    import boto3
    from moto import mock_aws
    from moto.kms.models import KmsBackend

    from modules.rehearsal import moto_corrected

    def primary_key_type_after_reading_its_replica() -> str:
        with mock_aws():
            def kms(region: str):  # type: ignore[no-untyped-def]
                return boto3.client("kms", region_name=region, aws_access_key_id="test",
                                    aws_secret_access_key="test")
            key = kms("us-west-2").create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
            replica = kms("us-west-2").replicate_key(KeyId=key, ReplicaRegion="us-east-1")["ReplicaKeyMetadata"]
            kms("us-east-1").describe_key(KeyId=replica["KeyId"])
            return kms("us-west-2").describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"][
                "MultiRegionKeyType"]

    assert primary_key_type_after_reading_its_replica() == "REPLICA"
    monkeypatch.setattr(KmsBackend, "replicate_key", KmsBackend.replicate_key)  # restored after the test
    moto_corrected.CORRECTIONS["kms-replica-shares-primary-configuration"]()
    assert primary_key_type_after_reading_its_replica() == "PRIMARY"
    assert {row.name for row in differences.DIFFERENCES if row.corrected} == set(moto_corrected.CORRECTIONS)


def test_the_corrected_server_reads_backup_tags_the_way_the_provider_asks(monkeypatch) -> None:
    """The provider's SDK asks `GET /tags/<arn>` (no trailing slash): moto answers {} until corrected."""
    from moto import mock_aws
    from moto.backup.responses import BackupResponse

    from modules.rehearsal import moto_corrected

    def tags_read_without_a_trailing_slash() -> dict:
        with mock_aws():
            response = BackupResponse()
            response.current_account, response.region = "123456789012", "eu-west-2"
            vault = response.backup_backend.create_backup_vault("v", {"Team": "platform"}, None, None)
            response.path = f"/tags/{vault.backup_vault_arn}"
            return json.loads(response.list_tags())["Tags"]

    assert tags_read_without_a_trailing_slash() == {}
    monkeypatch.setattr(BackupResponse, "list_tags", BackupResponse.list_tags)  # restored after the test
    moto_corrected.CORRECTIONS["backup-list-tags-path"]()
    assert tags_read_without_a_trailing_slash() == {"Team": "platform"}
