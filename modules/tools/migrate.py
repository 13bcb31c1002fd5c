"""Run LiteLLM's schema migrations once, before the proxy service moves to a new image.

    python -m modules.tools.migrate ENV [--synth-dir cdktf.out]

Serving tasks start with DISABLE_SCHEMA_UPDATE=true; the deploy runs this between the data
stack and the gateway stack's apply (README, "Database migrations"). Steps, each waiting for
the last: register the migration task definition of the new image (a targeted Terraform apply
of the gateway stack), snapshot the database, run the one-off task in the proxy's subnets with
its security group, and exit non-zero unless the task's container exited 0. A failed migration
leaves the snapshot to restore from and the service on its old image.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

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


def register_task_definition(synth_dir: Path, env_name: str) -> None:
    """Apply only the migration task definition (and what it needs) of the synthesized gateway stack."""
    stack_dir = synth_dir / "stacks" / f"{env_name}-gateway"
    subprocess.run(["terraform", f"-chdir={stack_dir}", "init", "-input=false"], check=True)
    subprocess.run(["terraform", f"-chdir={stack_dir}", "apply", "-input=false", "-auto-approve",
                    f"-target={migration_address(stack_dir)}"], check=True)


def migration_address(stack_dir: Path) -> str:
    """The migration task definition's Terraform address (cdktn names it after the construct path)."""
    doc = json.loads((stack_dir / "cdk.tf.json").read_text())
    (name,) = [n for n in doc["resource"]["aws_ecs_task_definition"] if MIGRATION_TASK_ID in n]
    return f"aws_ecs_task_definition.{name}"


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
    parser.add_argument("--synth-dir", type=Path, default=Path("cdktf.out"), help="the synth output (default: cdktf.out)")
    parser.add_argument("--skip-register", action="store_true", help="the task definition is already applied")
    args = parser.parse_args(argv)
    env = load_environment(args.environment)
    n = names(env)
    if not args.skip_register:
        register_task_definition(args.synth_dir, env.name)
    session = boto3.Session(region_name=env.region)
    print(f"snapshot {snapshot(session.client('rds'), n['db'])} of {n['db']} is available")
    code, reason = run_migration(session.client("ecs"), n, network(session.client("ec2"), n))
    if code != 0:
        print(f"::error::migration task of {env.name} ended with exit code {code} ({reason}); the service keeps "
              "its image; restore from the snapshot if the schema is damaged", file=sys.stderr)
        return 1
    print(f"migrations of {env.name} applied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
