"""DATA-1…DATA-3, SEC-4, SEC-5 for the data stacks."""

from __future__ import annotations

import json
import re

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.config import load_environment

SECRET_KEYS = re.compile(r"(password|auth_token|secret_string|master_key)$", re.I)


def test_prod_postgres_matches_the_design(stacks) -> None:
    db = stacks["prod-data"].one("aws_db_instance")
    expected = {
        "identifier": "llmlite-prod-postgres", "engine": "postgres", "instance_class": "db.t4g.small",
        "storage_type": "gp3", "allocated_storage": 20, "max_allocated_storage": 100, "multi_az": True,
        "port": 5432, "storage_encrypted": True, "backup_retention_period": 7, "backup_window": "03:00-04:00",
        "maintenance_window": "sun:04:30-sun:05:30", "monitoring_interval": 60,
        "performance_insights_enabled": True, "performance_insights_retention_period": 7,
        "enabled_cloudwatch_logs_exports": ["postgresql", "upgrade"], "manage_master_user_password": True,
        "iam_database_authentication_enabled": True, "deletion_protection": True, "skip_final_snapshot": False,
        "final_snapshot_identifier": "llmlite-prod-postgres-final", "copy_tags_to_snapshot": True,
        "auto_minor_version_upgrade": False, "publicly_accessible": False,
    }
    assert {k: db.get(k) for k in expected} == expected
    assert int(db["engine_version"].split(".")[0]) >= 15
    for key in ("kms_key_id", "performance_insights_kms_key_id", "master_user_secret_kms_key_id"):
        assert "foundation_key" in db[key]
    assert "password" not in db and "password_wo" not in db
    assert db["lifecycle"]["prevent_destroy"] is True
    assert "network_database_subnet" in json.dumps(stacks["prod-data"].one("aws_db_subnet_group")["subnet_ids"])
    assert "network_database_security_group" in db["vpc_security_group_ids"][0]


def test_postgres_forces_tls_and_logs_slow_statements(stacks) -> None:
    params = {p["name"]: p["value"] for p in stacks["prod-data"].one("aws_db_parameter_group")["parameter"]}
    assert params["rds.force_ssl"] == "1"
    assert params["log_min_duration_statement"] == "1000"


def test_rds_log_exports_land_in_encrypted_groups_with_retention(stacks) -> None:
    groups = {g["name"]: g for g in stacks["prod-data"].resources("aws_cloudwatch_log_group").values()}
    for log in ("postgresql", "upgrade"):
        group = groups[f"/aws/rds/instance/llmlite-prod-postgres/{log}"]
        assert group["kms_key_id"] and group["retention_in_days"] == 365


def test_dev_database_is_small_single_az_and_disposable(stacks) -> None:
    db = stacks["dev-data"].one("aws_db_instance")
    assert db["instance_class"] == "db.t4g.micro" and db["multi_az"] is False
    assert db["deletion_protection"] is False and db["skip_final_snapshot"] is True
    assert "lifecycle" not in db
    skips = db["//"]["checkov_skip"]
    assert {"CKV_AWS_157", "CKV_AWS_293", "CKV_LLM_1"} <= set(skips)


def test_redis_encrypted_authenticated_and_failover_in_prod(stacks) -> None:
    data = stacks["prod-data"]
    redis = data.one("aws_elasticache_replication_group")
    assert redis["transit_encryption_enabled"] is True and redis["at_rest_encryption_enabled"] == "true"
    assert "foundation_key" in redis["kms_key_id"]
    assert redis["automatic_failover_enabled"] is True and redis["multi_az_enabled"] is True
    assert redis["num_cache_clusters"] == 2 and redis["snapshot_retention_limit"] == 7
    assert redis["port"] == 6379 and "network_redis_security_group" in redis["security_group_ids"][0]
    # the AUTH token is the generated secret's current value, read ephemerally once the secret's
    # version is written, into the write-only argument: neither the group nor state keeps it
    assert "auth_token" not in redis and redis["auth_token_wo_version"] == 1
    assert redis["auth_token_update_strategy"] == "ROTATE"
    read = re.fullmatch(r"\$\{ephemeral\.aws_secretsmanager_secret_version\.(\w+)\.secret_string\}",
                        redis["auth_token_wo"]).group(1)
    current = data.doc["ephemeral"]["aws_secretsmanager_secret_version"][read]
    (version_id,) = data.resources("aws_secretsmanager_secret_version")
    assert current["depends_on"] == [f"aws_secretsmanager_secret_version.{version_id}"]
    assert current["secret_id"] == data.resources("aws_secretsmanager_secret_version")[version_id]["secret_id"]
    secret = data.one("aws_secretsmanager_secret")
    assert "foundation_key" in secret["kms_key_id"] and secret["lifecycle"]["prevent_destroy"] is True


def test_dev_redis_is_one_node_without_failover(stacks) -> None:
    redis = stacks["dev-data"].one("aws_elasticache_replication_group")
    assert redis["num_cache_clusters"] == 1 and redis["automatic_failover_enabled"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_tables_keys_ttl_recovery_and_encryption(stacks, env: str) -> None:
    tables = {t["name"].removeprefix(f"llmlite-{env}-"): t for t in stacks[f"{env}-data"].resources(
        "aws_dynamodb_table").values()}
    assert set(tables) == {"connections", "chat-history"}
    assert (tables["connections"]["hash_key"], tables["connections"].get("range_key")) == ("connectionId", None)
    assert (tables["chat-history"]["hash_key"], tables["chat-history"]["range_key"]) == ("userSession", "createdAt")
    for table in tables.values():
        assert table["billing_mode"] == "PAY_PER_REQUEST"
        assert table["ttl"] == {"enabled": True, "attribute_name": "expiresAt"}
        assert table["point_in_time_recovery"] == {"enabled": True}
        assert table["server_side_encryption"]["enabled"] is True
        assert "foundation_key" in table["server_side_encryption"]["kms_key_arn"]
        protect = load_environment(env).protect_stateful
        assert table["deletion_protection_enabled"] is protect
        assert (table.get("lifecycle", {}).get("prevent_destroy") is True) is protect
        # A user's items are found without a scan (erasure): a keys-only index on userId.
        assert table["global_secondary_index"] == [{"name": "user", "hash_key": "userId",
                                                    "projection_type": "KEYS_ONLY"}]
        assert {"name": "userId", "type": "S"} in table["attribute"]


def test_prod_us_tables_replicate_to_us_east_1_with_a_replica_key(stacks) -> None:
    for table in stacks["prod-us-data"].resources("aws_dynamodb_table").values():
        (replica,) = table["replica"]
        assert replica["region_name"] == "us-east-1" and replica["point_in_time_recovery"] is True
        assert replica["deletion_protection_enabled"] is True  # a replica is a table too
        assert "foundation_key_replica_us_east_1" in replica["kms_key_arn"]
        assert table["stream_enabled"] is True
    foundation = stacks["prod-us-foundation"]
    assert foundation.one("aws_kms_key")["multi_region"] is True
    replica_key = foundation.one("aws_kms_replica_key")
    assert replica_key["provider"] == "aws.us_east_1"
    assert "logs.us-east-1.amazonaws.com" in replica_key["policy"]
    assert all("replica" not in t for t in stacks["prod-data"].resources("aws_dynamodb_table").values())


def _strings(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value, path)
    elif isinstance(node, str):
        yield path, node


def test_no_secret_value_in_any_synthesized_stack(stacks) -> None:
    """Every secret-bearing argument is a reference resolved at apply time, never a literal."""
    for stack in stacks.values():
        for path, value in _strings(stack.doc.get("resource", {})):
            if SECRET_KEYS.search(str(path[-1])):
                literal = re.sub(r"\$\{[^}]*\}", "", value)
                assert "${" in value and literal in ("", "sk-"), f"{stack.name}: {'.'.join(path)}"


STATE_SECRET_KEYS = re.compile(r"^(password|auth_token|secret_string|secret_binary|master_password)$")


def test_no_secret_value_reaches_terraform_state(stacks) -> None:
    """Where a write-only argument exists, a secret goes only through it (`…_wo`, never
    stored), from ephemeral values; no data source draws one into state. (A Cognito machine
    client's generated secret is an attribute AWS returns, with no write-only form.)"""
    for stack in stacks.values():
        for path, _ in _strings(stack.doc.get("resource", {})):
            assert not STATE_SECRET_KEYS.match(str(path[-1])), f"{stack.name}: {'.'.join(path)} is kept in state"
        assert not stack.resources("aws_secretsmanager_random_password"), stack.name  # a data source's result
        assert "aws_secretsmanager_random_password" not in stack.doc.get("data", {}), stack.name
        for type_, blocks in stack.doc.get("resource", {}).items():
            for lid, body in blocks.items():
                for key, value in body.items():
                    if "${ephemeral." in json.dumps(value):
                        assert key.endswith("_wo"), f"{stack.name}: {type_}.{lid}.{key}"
    redis = [s.one("aws_elasticache_replication_group") for s in stacks.values()
             if s.resources("aws_elasticache_replication_group")]
    assert redis and all(r["auth_token_wo"].startswith("${ephemeral.") for r in redis)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")[-2:]
    return int(hours) * 60 + int(minutes)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_backup_and_maintenance_windows_do_not_meet(stacks, env: str) -> None:
    # RDS: the backup window "must not conflict with the preferred maintenance window"; windows
    # that share an edge minute are refused by an emulator, so a gap keeps them apart.
    db = stacks[f"{env}-data"].one("aws_db_instance")
    backup = [_minutes(t) for t in db["backup_window"].split("-")]
    maintenance = [_minutes(t) for t in db["maintenance_window"].split("-")]
    assert backup[1] < maintenance[0] or maintenance[1] < backup[0], (db["backup_window"], db["maintenance_window"])


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _week_intervals(window: str) -> list[tuple[int, int]]:
    """Minutes of the week a window covers: "ddd:hh:mm-ddd:hh:mm" once, "hh:mm-hh:mm" every day."""
    start, end = window.split("-")
    if start[:3] in DAYS:
        return [(DAYS.index(start[:3]) * 1440 + _minutes(start[4:]), DAYS.index(end[:3]) * 1440 + _minutes(end[4:]))]
    return [(day * 1440 + _minutes(start), day * 1440 + _minutes(end)) for day in range(7)]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_database_and_redis_windows_never_meet(stacks, env: str) -> None:
    """A database maintenance (a Multi-AZ failover) at the same time as a Redis failover or a
    snapshot is two faults at once: every window stands apart from every other."""
    data = stacks[f"{env}-data"]
    db, redis = data.one("aws_db_instance"), data.one("aws_elasticache_replication_group")
    windows = {"rds backup": db["backup_window"], "rds maintenance": db["maintenance_window"],
               "redis snapshot": redis["snapshot_window"], "redis maintenance": redis["maintenance_window"]}
    names = list(windows)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for start_a, end_a in _week_intervals(windows[a]):
                for start_b, end_b in _week_intervals(windows[b]):
                    assert end_a < start_b or end_b < start_a, f"{a} {windows[a]} meets {b} {windows[b]}"


# --- AWS Backup, restore, data residency ----------------------------------------------------

def resource_address(stack: Stack, type_: str, block: dict) -> str:
    [logical_id] = [k for k, v in stack.resources(type_).items() if v is block]
    return f"{type_}.{logical_id}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_backup_plan_keeps_daily_recovery_points_of_the_database_and_tables(stacks, env: str) -> None:
    data = stacks[f"{env}-data"]
    protected = load_environment(env).protect_stateful
    db = data.one("aws_db_instance")
    assert db["delete_automated_backups"] is False  # restorable after the instance is gone
    vaults = {v["name"]: v for v in data.resources("aws_backup_vault").values()}
    vault = vaults[f"llmlite-{env}-backup"]
    assert "foundation_key" in vault["kms_key_arn"] and vault["force_destroy"] is not protected
    plan = data.one("aws_backup_plan")
    [rule] = plan["rule"]
    assert rule["schedule"] == "cron(0 1 * * ? *)" and rule["lifecycle"] == {"delete_after": 35}
    assert rule["target_vault_name"].endswith(".name}")
    selection = data.one("aws_backup_selection")
    assert selection["resources"] == [f"${{{resource_address(data, 'aws_db_instance', db)}.arn}}",
                                      *(f"${{aws_dynamodb_table.{k}.arn}}"
                                        for k in sorted(data.resources("aws_dynamodb_table")))]
    role = data.resources("aws_iam_role")[selection["iam_role_arn"].split(".")[1]]
    assert json.loads(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "backup.amazonaws.com"}
    attached = {a["policy_arn"].rsplit("/", 1)[1] for a in data.resources("aws_iam_role_policy_attachment").values()
                if a["role"].endswith(f"{selection['iam_role_arn'].split('.')[1]}.name}}")}
    assert attached == {"AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForRestores"}
    locks = data.resources("aws_backup_vault_lock_configuration").values()
    assert [(lock["min_retention_days"], lock["max_retention_days"]) for lock in locks] == (
        [(7, 35)] * len(vaults) if protected else [])


def test_backups_are_copied_only_where_the_environment_allows(stacks) -> None:
    """prod keeps its data in eu-west-2; prod-us copies to us-east-1, which it allows."""
    assert "copy_action" not in stacks["prod-data"].one("aws_backup_plan")["rule"][0]
    assert len(stacks["prod-data"].resources("aws_backup_vault")) == 1
    assert "replica" not in json.dumps(stacks["prod-gateway"].resources("aws_secretsmanager_secret"))
    us = stacks["prod-us-data"]
    [copy] = [v for v in us.resources("aws_backup_vault").values() if v["name"] == "llmlite-prod-us-backup-us-east-1"]
    assert copy["provider"] == "aws.us_east_1" and "key_replica_us_east_1" in copy["kms_key_arn"]
    [action] = us.one("aws_backup_plan")["rule"][0]["copy_action"]
    assert action["destination_vault_arn"] == f"${{{resource_address(us, 'aws_backup_vault', copy)}.arn}}"
    # Without the salt key a copied database's stored credentials cannot be decrypted.
    [salt] = [s for s in stacks["prod-us-gateway"].resources("aws_secretsmanager_secret").values()
              if s["name"].endswith("litellm-salt-key")]
    assert [r["region"] for r in salt["replica"]] == ["us-east-1"]
    assert "key_replica_us_east_1" in salt["replica"][0]["kms_key_id"]


def test_a_restored_database_and_table_are_adopted_by_a_config_change(tmp_path) -> None:
    """README "Restore": naming the restored copies in data.restored makes the stacks manage
    them at the same addresses (import blocks), so every consumer follows."""
    from modules.config import load_environment
    from modules.engine.app import build_app

    env = load_environment("prod")
    restored = env.data.restored.model_copy(update={"db_instance_identifier": "llmlite-prod-postgres-r1",
                                                    "history_table": "llmlite-prod-chat-history-r1"})
    env = env.model_copy(update={"data": env.data.model_copy(update={"restored": restored})})
    build_app([env], outdir=str(tmp_path)).synth()
    doc = json.loads((tmp_path / "stacks" / "prod-data" / "cdk.tf.json").read_text())
    data = Stack("prod-data", doc)
    db = data.one("aws_db_instance")
    db_address = resource_address(data, "aws_db_instance", db)
    history = next(t for t in data.resources("aws_dynamodb_table").values() if t["hash_key"] == "userSession")
    history_address = resource_address(data, "aws_dynamodb_table", history)
    assert db["identifier"] == "llmlite-prod-postgres-r1" and history["name"] == "llmlite-prod-chat-history-r1"
    assert db["final_snapshot_identifier"] == "llmlite-prod-postgres-r1-final"
    assert sorted((i["to"], i["id"]) for i in doc["import"]) == sorted([
        (db_address, "llmlite-prod-postgres-r1"), (history_address, "llmlite-prod-chat-history-r1")])
    # The same addresses as before: the stateful address list still holds them.
    groups = sorted(g["name"] for g in data.resources("aws_cloudwatch_log_group").values() if "/aws/rds/" in g["name"])
    assert groups == ["/aws/rds/instance/llmlite-prod-postgres-r1/postgresql",
                      "/aws/rds/instance/llmlite-prod-postgres-r1/upgrade",
                      "/aws/rds/instance/llmlite-prod-postgres/postgresql",
                      "/aws/rds/instance/llmlite-prod-postgres/upgrade"]
    assert db["depends_on"] == [f"aws_cloudwatch_log_group.{k}" for k, g in
                                data.resources("aws_cloudwatch_log_group").items() if "-r1/" in g["name"]]
    # Consumers read the adopted resources: the worker's table, the gateway's database host.
    realtime = json.loads((tmp_path / "stacks" / "prod-realtime" / "cdk.tf.json").read_text())
    worker = next(f for f in realtime["resource"]["aws_lambda_function"].values() if f["function_name"].endswith("worker"))
    assert history_address.split(".")[1] in worker["environment"]["variables"]["HISTORY_TABLE"]
