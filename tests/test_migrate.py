"""The one-off migration: snapshot first, then the task, and the deploy stops unless it exited 0."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

from modules.config import load_environment
from modules.tools import migrate, pipeline

PROD = load_environment("prod")

TASK = "arn:aws:ecs:eu-west-2:111122223333:task/llmlite-prod-cluster/abc"


def clients():
    made = {name: boto3.client(name, region_name="eu-west-2", aws_access_key_id="x", aws_secret_access_key="x")
            for name in ("rds", "ecs", "ec2")}
    return made, {name: Stubber(client) for name, client in made.items()}


def _stub_snapshot(rds: Stubber) -> None:
    rds.add_response("create_db_snapshot", {"DBSnapshot": {"DBSnapshotIdentifier": "s"}},
                     {"DBInstanceIdentifier": "llmlite-prod-postgres", "DBSnapshotIdentifier": ANY, "Tags": ANY})
    rds.add_response("describe_db_snapshots", {"DBSnapshots": [{"Status": "available"}]},
                     {"DBSnapshotIdentifier": ANY})


def _stub_task(ecs: Stubber, exit_code: int) -> None:
    ecs.add_response("run_task", {"tasks": [{"taskArn": TASK}], "failures": []}, {
        "cluster": "llmlite-prod-cluster", "taskDefinition": "llmlite-prod-proxy-migrate", "launchType": "FARGATE",
        "count": 1, "startedBy": "migrate", "networkConfiguration": ANY})
    stopped = {"tasks": [{"taskArn": TASK, "lastStatus": "STOPPED", "stoppedReason": "Essential container exited",
                          "containers": [{"name": "litellm", "exitCode": exit_code}]}]}
    ecs.add_response("describe_tasks", stopped, {"cluster": "llmlite-prod-cluster", "tasks": [TASK]})  # waiter
    ecs.add_response("describe_tasks", stopped, {"cluster": "llmlite-prod-cluster", "tasks": [TASK]})


@pytest.mark.parametrize(("exit_code", "expected"), [(0, 0), (1, 1)])
def test_migration_runs_after_a_snapshot_and_reports_the_exit_code(monkeypatch, exit_code: int, expected: int) -> None:
    made, stubs = clients()
    order: list[str] = []
    _stub_snapshot(stubs["rds"])
    stubs["ec2"].add_response("describe_subnets", {"Subnets": [{"SubnetId": "subnet-b"}, {"SubnetId": "subnet-a"}]},
                              {"Filters": [{"Name": "tag:Name", "Values": [
                                  f"llmlite-prod-private-{zone}" for zone in PROD.network.availability_zones]}]})
    stubs["ec2"].add_response("describe_security_groups", {"SecurityGroups": [{"GroupId": "sg-1"}]},
                              {"Filters": [{"Name": "group-name", "Values": ["llmlite-prod-gateway-sg"]}]})
    _stub_task(stubs["ecs"], exit_code)
    for name, stub in stubs.items():
        stub.activate()
        made[name].meta.events.register("before-parameter-build", lambda model, **_: order.append(model.name))

    class Session:
        def __init__(self, region_name: str) -> None:
            assert region_name == "eu-west-2"

        def client(self, name: str):
            return made[name]

    monkeypatch.setattr(migrate.boto3, "Session", Session)
    assert migrate.main(["prod"]) == expected
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    assert order.index("DescribeDBSnapshots") < order.index("RunTask")  # the snapshot is available first


def test_names_match_the_stacks() -> None:
    names = migrate.names(load_environment("prod"))
    assert names["family"] == "llmlite-prod-proxy-migrate" and names["db"] == "llmlite-prod-postgres"
    assert names["security_group"] == "llmlite-prod-gateway-sg"


CONTAINER = [{"name": "litellm", "image": "111122223333.dkr.ecr.eu-west-2.amazonaws.com/ghcr/berriai/litellm:v1"}]
ROLE = "arn:aws:iam::111122223333:role/llmlite-prod-proxy-execution"


def plan_changing_the_migration(unknown: dict | None = None) -> dict:
    """The shape of `terraform show -json` for a plan that replaces the migration task definition."""
    after = {"family": "llmlite-prod-proxy-migrate", "network_mode": "awsvpc", "requires_compatibilities": ["FARGATE"],
             "cpu": "1024", "memory": "2048", "execution_role_arn": ROLE, "task_role_arn": None,
             "container_definitions": json.dumps(CONTAINER),
             "runtime_platform": [{"operating_system_family": "LINUX", "cpu_architecture": "X86_64"}]}
    serving = {"address": "aws_ecs_task_definition.gateway_task_ABC", "type": "aws_ecs_task_definition",
               "change": {"actions": ["delete", "create"], "after": {**after, "family": "llmlite-prod-proxy"}}}
    migration = {"address": "aws_ecs_task_definition.gateway_migration_task_1F2E", "type": "aws_ecs_task_definition",
                 "change": {"actions": ["delete", "create"], "after": after, "after_unknown": unknown or {}}}
    return {"resource_changes": [serving, migration]}


def test_the_reviewed_definition_is_registered_exactly_as_planned() -> None:
    change = migrate.planned_definition(plan_changing_the_migration())
    assert change["after"]["family"] == "llmlite-prod-proxy-migrate"
    assert migrate.planned_definition({"resource_changes": [
        {**plan_changing_the_migration()["resource_changes"][1], "change": {"actions": ["no-op"]}}]}) is None
    ecs = boto3.client("ecs", region_name="eu-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(ecs) as stub:
        stub.add_response("register_task_definition", {}, {
            "family": "llmlite-prod-proxy-migrate", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "1024", "memory": "2048", "executionRoleArn": ROLE, "containerDefinitions": CONTAINER,
            "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"}})
        assert migrate.register_reviewed(ecs, change) is True
        stub.assert_no_pending_responses()
    # a first deploy: the role is created by the same plan, so the definition is not known yet
    first = migrate.planned_definition(plan_changing_the_migration({"execution_role_arn": True}))
    assert migrate.register_reviewed(ecs, first) is False


def saved_plans(tmp_path: Path, plan: dict) -> Path:
    """A `pipeline plan --out` directory holding one reviewed, changing plan of prod-gateway."""
    plans = tmp_path / "plans"
    (plans / "synth" / "stacks" / "prod-gateway").mkdir(parents=True)
    (plans / "synth" / "manifest.json").write_text(json.dumps({"stacks": {"prod-gateway": {}}}))
    (plans / "prod-gateway.tfplan").write_bytes(b"reviewed")
    (plans / "prod-gateway.json").write_text(json.dumps(plan))
    (plans / pipeline.MANIFEST).write_text(json.dumps({"stacks": [{
        "stack": "prod-gateway", "status": pipeline.CHANGED, "outputs_change": False,
        "plan_sha256": hashlib.sha256(b"reviewed").hexdigest()}]}))
    return plans


@pytest.mark.parametrize(("unknown", "outcome", "expected"), [
    (None, 0, ["migrate reviewed", "terraform init", "terraform apply"]),
    (None, 1, ["migrate reviewed"]),  # a failed migration: the service keeps its image
    ({"execution_role_arn": True}, 0, ["migrate reviewed", "terraform init", "terraform apply", "migrate latest"]),
])
def test_apply_migrates_before_the_gateway_moves_to_a_new_image(tmp_path, monkeypatch, unknown, outcome,
                                                                 expected) -> None:
    calls: list[str] = []

    def fake_migrate(env, reviewed=None):
        assert env.name == "prod"
        calls.append(f"migrate {'reviewed' if reviewed else 'latest'}")
        known = reviewed is None or not reviewed.get("after_unknown")
        return outcome if known else 2

    def fake_terraform(stack_dir, *args):
        calls.append(f"terraform {args[0]}")
        return 0

    monkeypatch.setattr(migrate, "migrate", fake_migrate)
    monkeypatch.setattr(pipeline, "_terraform_shown", fake_terraform)
    code = pipeline.apply(saved_plans(tmp_path, plan_changing_the_migration(unknown)))
    assert calls == expected and code == (1 if outcome else 0)


def test_a_plan_that_leaves_the_migration_alone_applies_without_one(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(migrate, "migrate", lambda *a, **k: pytest.fail("no migration was planned"))
    monkeypatch.setattr(pipeline, "_terraform_shown", lambda stack_dir, *args: 0)
    assert pipeline.apply(saved_plans(tmp_path, {"resource_changes": []})) == 0


def test_an_aws_refusal_stops_the_migration_in_one_line(monkeypatch, capsys) -> None:
    """A refused call (here the snapshot) fails the deploy with the reason, not a traceback."""
    made, stubs = clients()
    stubs["rds"].add_client_error("create_db_snapshot", "InvalidDBInstanceState", "instance is not available")
    stubs["rds"].activate()

    class Session:
        def __init__(self, region_name: str) -> None:
            pass

        def client(self, name: str):
            return made[name]

    monkeypatch.setattr(migrate.boto3, "Session", Session)
    assert migrate.main(["prod"]) == 1
    assert "::error::migration of prod stopped: An error occurred (InvalidDBInstanceState)" in capsys.readouterr().err
