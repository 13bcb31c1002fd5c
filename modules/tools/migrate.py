"""Run LiteLLM's schema migrations once, before the proxy service moves to a new image.

    python -m modules.tools.migrate ENV     # by hand: the family's latest revision

Serving tasks start with DISABLE_SCHEMA_UPDATE=true. `pipeline apply` runs the migration when
a reviewed plan changes the migration task definition: it registers that definition, exactly as
the plan shows it, as a revision of its family ahead of Terraform (whose apply then adds its
own; the saved plan stays valid), snapshots the database, runs the one-off task in the proxy's
subnets with its security group, and stops the deploy unless the task's container exited 0 —
before the gateway stack, so the service never meets an unmigrated schema. Where the plan
cannot know the definition yet (a first deploy: its roles are created by the same plan) the
migration runs right after the gateway stack is applied (README, "Database migrations").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from modules.config import load_environment
from modules.config.settings import Identity

MIGRATION_TASK_ID = "_migration_task_"  # its construct id (modules/layers/gateway.py) in the address
CONTAINER = "litellm"


def names(env: Any) -> dict[str, str]:
    """The AWS names the stacks give what the migration touches (modules/layers)."""
    identity = Identity.of(env)
    return {"cluster": identity.resource_name("cluster"), "service": identity.resource_name("proxy"),
            "family": identity.resource_name("proxy-migrate"), "db": identity.resource_name("postgres"),
            "security_group": identity.resource_name("gateway-sg"),
            "subnets": [identity.resource_name(f"private-{az}") for az in env.network.availability_zones]}


# What a reviewed plan says of the migration task definition, and RegisterTaskDefinition's name for it.
PLANNED_FIELDS = {"family": "family", "network_mode": "networkMode", "requires_compatibilities":
                  "requiresCompatibilities", "cpu": "cpu", "memory": "memory",
                  "execution_role_arn": "executionRoleArn", "task_role_arn": "taskRoleArn"}


def planned_definition(plan: dict[str, Any]) -> dict[str, Any] | None:
    """The change a plan (`terraform show -json`) makes to the migration task definition, if any."""
    for change in plan.get("resource_changes", []):
        if (change["type"] == "aws_ecs_task_definition" and MIGRATION_TASK_ID in change["address"]
                and "create" in change["change"]["actions"]):  # a new revision: created or replaced
            return change["change"]
    return None


def register_reviewed(ecs: Any, change: dict[str, Any]) -> bool:
    """Register the plan's definition as a revision of its family; False when the plan does not
    know it yet (a value computed at apply, e.g. a role the same plan creates)."""
    after, unknown = change["after"], change.get("after_unknown") or {}
    if any(unknown.get(field) for field in (*PLANNED_FIELDS, "container_definitions", "runtime_platform")):
        return False
    platform = (after.get("runtime_platform") or [{}])[0]
    ecs.register_task_definition(
        **{api: after[field] for field, api in PLANNED_FIELDS.items() if after.get(field)},
        containerDefinitions=json.loads(after["container_definitions"]),
        runtimePlatform={"operatingSystemFamily": platform.get("operating_system_family", "LINUX"),
                         "cpuArchitecture": platform.get("cpu_architecture", "X86_64")})
    return True


def snapshot(rds: Any, db: str) -> str:
    snapshot_id = f"{db}-pre-migrate-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    rds.create_db_snapshot(DBInstanceIdentifier=db, DBSnapshotIdentifier=snapshot_id,
                           Tags=[{"Key": "Purpose", "Value": "before LiteLLM schema migration"}])
    rds.get_waiter("db_snapshot_available").wait(DBSnapshotIdentifier=snapshot_id,
                                                 WaiterConfig={"Delay": 30, "MaxAttempts": 120})
    return snapshot_id


def network(ec2: Any, n: dict[str, Any]) -> dict[str, Any]:
    subnets = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": n["subnets"]}])["Subnets"]
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [n["security_group"]]}])
    return {"awsvpcConfiguration": {"subnets": sorted(s["SubnetId"] for s in subnets),
                                    "securityGroups": [g["GroupId"] for g in groups["SecurityGroups"]],
                                    "assignPublicIp": "DISABLED"}}


def run_migration(ecs: Any, n: dict[str, Any], network_configuration: dict[str, Any]) -> tuple[int | None, str]:
    """Run the task (latest revision of its family) to the end: its exit code and why it stopped."""
    started = ecs.run_task(cluster=n["cluster"], taskDefinition=n["family"], launchType="FARGATE",
                           count=1, startedBy="migrate", networkConfiguration=network_configuration)
    if started.get("failures"):
        return None, str(started["failures"])
    task_arn = started["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_stopped").wait(cluster=n["cluster"], tasks=[task_arn],
                                         WaiterConfig={"Delay": 15, "MaxAttempts": 120})
    task = ecs.describe_tasks(cluster=n["cluster"], tasks=[task_arn])["tasks"][0]
    container = next(c for c in task["containers"] if c["name"] == CONTAINER)
    return container.get("exitCode"), task.get("stoppedReason", "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("environment", help="the environment whose database to migrate")
    args = parser.parse_args(argv)
    return migrate(load_environment(args.environment))


def migrate(env: Any, reviewed: dict[str, Any] | None = None) -> int:
    """Snapshot, then the one-off task (the reviewed definition when given and known); 0 when it
    exited 0, 1 when it did not or AWS refused a step (said in one line, not a traceback).
    `reviewed` not yet known: 2, nothing done (run again once the stack is applied)."""
    n = names(env)
    session = boto3.Session(region_name=env.region)
    try:
        if reviewed is not None and not register_reviewed(session.client("ecs"), reviewed):
            return 2
        print(f"snapshot {snapshot(session.client('rds'), n['db'])} of {n['db']} is available")
        code, reason = run_migration(session.client("ecs"), n, network(session.client("ec2"), n))
    except (BotoCoreError, ClientError) as err:  # a waiter's timeout (WaiterError) included
        print(f"::error::migration of {env.name} stopped: {err}; the service keeps its image", file=sys.stderr)
        return 1
    if code != 0:
        print(f"::error::migration task of {env.name} ended with exit code {code} ({reason}); the service keeps "
              "its image; restore from the snapshot if the schema is damaged", file=sys.stderr)
        return 1
    print(f"migrations of {env.name} applied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
