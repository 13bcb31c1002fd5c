"""The one-off migration: snapshot first, then the task, and the deploy stops unless it exited 0."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from modules.config import load_environment
from modules.tools import migrate

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
    assert migrate.main(["prod", "--skip-register"]) == expected
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    assert order.index("DescribeDBSnapshots") < order.index("RunTask")  # the snapshot is available first


def test_names_match_the_stacks() -> None:
    names = migrate.names(load_environment("prod"))
    assert names["family"] == "llmlite-prod-proxy-migrate" and names["db"] == "llmlite-prod-postgres"
    assert names["security_group"] == "llmlite-prod-gateway-sg"
