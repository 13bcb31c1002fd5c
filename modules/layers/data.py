"""Data layer: RDS PostgreSQL (virtual keys, spend), ElastiCache Redis (shared rate limits,
response cache) and DynamoDB (WebSocket connections, chat history)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktn import Fn, Op, TerraformLocal, TerraformProvider, Token
from constructs import Construct
from cdktn_provider_aws.backup_plan import BackupPlan, BackupPlanRule, BackupPlanRuleCopyAction, \
    BackupPlanRuleCopyActionLifecycle, BackupPlanRuleLifecycle
from cdktn_provider_aws.backup_selection import BackupSelection
from cdktn_provider_aws.backup_vault import BackupVault
from cdktn_provider_aws.backup_vault_lock_configuration import BackupVaultLockConfiguration
from cdktn_provider_aws.cloudwatch_log_group import CloudwatchLogGroup
from cdktn_provider_aws.db_instance import DbInstance
from cdktn_provider_aws.db_parameter_group import DbParameterGroup, DbParameterGroupParameter
from cdktn_provider_aws.db_subnet_group import DbSubnetGroup
from cdktn_provider_aws.dynamodb_table import (
    DynamodbTable,
    DynamodbTableAttribute,
    DynamodbTableGlobalSecondaryIndex,
    DynamodbTablePointInTimeRecovery,
    DynamodbTableReplica,
    DynamodbTableServerSideEncryption,
    DynamodbTableTtl,
)
from cdktn_provider_aws.elasticache_replication_group import (
    ElasticacheReplicationGroup,
    ElasticacheReplicationGroupLogDeliveryConfiguration,
)
from cdktn_provider_aws.elasticache_subnet_group import ElasticacheSubnetGroup
from cdktn_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment

from modules.parts import iam
from modules.catalogue.alarms import DB_MEMORY_GIB, max_connections
from modules.parts.compliance import skip
from modules.parts.counted import ORDINAL_WIDTH
from modules.config.settings import DataSettings, Identity
from modules.parts.context import current_account
from modules.layers.foundation import FoundationOutputs
from modules.layers.network import NetworkOutputs, Port
from modules.parts.secret import GeneratedSecret
from modules.parts.outputs import publish
from modules.parts.storage import encrypted_log_group, protect
from modules.parts.switch import built, major_version, negate, only_if, pick_number, pick_or_none

DATABASE_NAME = "litellm"
MASTER_USERNAME = "litellm_admin"
DISPOSABLE = "Disposable environment (protect_stateful = false): "
# Both tables index their items by user, so erasing a user needs no scan. Keys only: the
# index holds nothing of the conversation, and erasure needs only the keys it deletes.
USER_INDEX = "user"
USER_ATTRIBUTE = "userId"

# UTC windows, none overlapping another, with gaps between them: a database maintenance (with
# its Multi-AZ failover) never meets a Redis failover or either store's backup. RDS and
# ElastiCache each refuse a backup window that overlaps their own maintenance window.
REDIS_SNAPSHOT_WINDOW = "01:30-02:30"
DB_BACKUP_WINDOW = "03:00-04:00"  # the design's
DB_MAINTENANCE_WINDOW = "sun:04:30-sun:05:30"
REDIS_MAINTENANCE_WINDOW = "sun:06:00-sun:07:00"

# AWS Backup's daily run: done before RDS's own backup window (03:00-04:00 UTC), which a
# Backup job of the same instance must not overlap (AWS Backup developer guide, "Amazon RDS").
BACKUP_SCHEDULE = "cron(0 1 * * ? *)"
BACKUP_START_WINDOW_MINUTES = 60
BACKUP_COMPLETION_WINDOW_MINUTES = 120
# A replication group without cluster mode: a primary and at most five replicas (ElastiCache's
# CreateReplicationGroup: NumCacheClusters 1 to 6), the environment files' bound.
MAX_REDIS_REPLICAS = next(bound.le for bound in DataSettings.model_fields["redis_replicas"].metadata
                          if hasattr(bound, "le"))
# A locked vault refuses recovery points kept for less than this (and deletions before it).
VAULT_LOCK_MIN_RETENTION_DAYS = 7


@dataclass(frozen=True)
class DataOutputs:
    db_address: str
    db_port: int
    db_name: str
    db_username: str
    db_master_secret_arn: str  # RDS-managed secret: {"username", "password"}
    db_resource_id: str  # for rds-db:connect (IAM authentication)
    redis_address: str
    redis_port: int
    redis_auth_secret_arn: str
    db_instance_id: str
    # What the parameter group sets: the gateway's pool and the connections alarm follow it.
    db_max_connections: int
    db_storage_gb: int  # the initial allocation: the free-storage share alarm's
    redis_node_ids: list[str]  # one cache cluster per node: ElastiCache metrics are per node
    connections_table_name: str
    connections_table_arn: str
    history_table_name: str
    history_table_arn: str


class Data(Construct):
    """The stateful stores, in the database subnets, encrypted with the environment key."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: DataSettings, network: NetworkOutputs,
                 foundation: FoundationOutputs, copy_provider: TerraformProvider | None = None) -> None:
        super().__init__(scope, id)
        self._identity, self._settings = identity, settings
        self._key = foundation.kms_key_arn
        self._account = current_account(self, identity.region)
        restored = settings.restored
        self._max_connections = db_max_connections(self, settings.db_instance_class)
        db = self._postgres(network)
        redis, redis_secret = self._redis(network)
        connections = self._table(foundation, "connections_table",
                                  restored.connections_table or identity.resource_name("connections"),
                                  hash_key="connectionId", adopted=restored.connections_table is not None)
        history = self._table(foundation, "history_table",
                              restored.history_table or identity.resource_name("chat-history"),
                              hash_key="userSession", range_key="createdAt", adopted=restored.history_table is not None)
        self._backups([db.arn, connections.arn, history.arn], foundation, copy_provider)
        self.outputs = DataOutputs(
            db_address=db.address, db_port=Port.POSTGRES, db_name=DATABASE_NAME, db_username=MASTER_USERNAME,
            # A plainly named local carries the ARN across stacks: cdktn names the cross-stack
            # output after the expression, and "…master_user_secret0secret_arn" trips the
            # secrets scanner's entropy rule although it is only an identifier.
            db_master_secret_arn=TerraformLocal(self, "db_credentials_arn",
                                                db.master_user_secret.get(0).secret_arn).as_string,
            db_resource_id=db.resource_id,
            redis_address=redis.primary_endpoint_address, redis_port=Port.REDIS,
            redis_auth_secret_arn=redis_secret.arn, db_instance_id=db.identifier,
            db_max_connections=self._max_connections, db_storage_gb=settings.db_storage_gb,
            redis_node_ids=redis_node_ids(identity.resource_name("redis"), settings.redis_replicas),
            connections_table_name=connections.name, connections_table_arn=connections.arn,
            history_table_name=history.name, history_table_arn=history.arn)
        publish(self, {
            "db_endpoint": (db.address, "PostgreSQL host name (port 5432, TLS required)"),
            "db_name": (DATABASE_NAME, "PostgreSQL database of LiteLLM"),
            "db_master_secret_arn": (self.outputs.db_master_secret_arn,
                                     "Secrets Manager ARN of the RDS-managed master credentials (rotated by RDS)"),
            "redis_endpoint": (redis.primary_endpoint_address, "Redis primary endpoint (port 6379, TLS, AUTH)"),
            "redis_auth_secret_arn": (redis_secret.arn, "Secrets Manager ARN of the Redis AUTH token"),
            "connections_table_name": (connections.name, "DynamoDB table of WebSocket connections"),
            "history_table_name": (history.name, "DynamoDB table of chat history"),
        })

    # --- PostgreSQL ---------------------------------------------------------------------------

    def _postgres(self, network: NetworkOutputs) -> DbInstance:
        identity, settings = self._identity, self._settings
        protected = identity.protect_stateful
        generated = identity.resource_name("postgres")
        identifier = settings.restored.db_instance_identifier or generated
        account = self._account
        subnets = DbSubnetGroup(self, "db_subnet_group", name=identity.resource_name("db"),
                                subnet_ids=network.database_subnet_ids)
        major = major_version(settings.postgres_version)
        parameters = DbParameterGroup(self, "db_parameters", name=identity.resource_name(f"postgres{major}"),
                                      family=f"postgres{major}", parameter=[
                                          DbParameterGroupParameter(name=name, value=value,
                                                                    apply_method="pending-reboot")
                                          for name, value in (("rds.force_ssl", "1"), ("log_connections", "1"),
                                                              ("log_disconnections", "1"),
                                                              ("log_min_duration_statement", "1000"),
                                                              ("log_statement", "ddl"),
                                                              # known, so rds-connections alarms on 80 % of it
                                                              ("max_connections",
                                                               as_text(self._max_connections)))])
        monitoring = iam.service_role(self, "db_monitoring_role", name=identity.resource_name("rds-monitoring"),
                                      service="monitoring.rds.amazonaws.com", source_account=account.id,
                                      statements=[])
        IamRolePolicyAttachment(
            self, "db_monitoring_policy", role=monitoring.name,
            policy_arn=f"arn:{account.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole")
        log_groups = self._db_log_groups(generated, identifier)
        db = DbInstance(
            self, "postgres", identifier=identifier, engine="postgres", engine_version=settings.postgres_version,
            instance_class=settings.db_instance_class, storage_type="gp3", allocated_storage=settings.db_storage_gb,
            max_allocated_storage=settings.db_max_storage_gb, storage_encrypted=True, kms_key_id=self._key,
            db_name=DATABASE_NAME, username=MASTER_USERNAME, port=Port.POSTGRES,
            # RDS generates, stores (Secrets Manager, environment key) and rotates the password:
            # it never appears in code, synthesized JSON or Terraform state.
            manage_master_user_password=True, master_user_secret_kms_key_id=self._key,
            iam_database_authentication_enabled=True, multi_az=settings.multi_az, db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[network.security_group_ids["database"]], publicly_accessible=False,
            parameter_group_name=parameters.name, backup_retention_period=settings.backup_retention_days,
            backup_window=DB_BACKUP_WINDOW, maintenance_window=DB_MAINTENANCE_WINDOW, copy_tags_to_snapshot=True,
            monitoring_interval=60, monitoring_role_arn=monitoring.arn, performance_insights_enabled=True,
            performance_insights_kms_key_id=self._key, performance_insights_retention_period=7,
            enabled_cloudwatch_logs_exports=["postgresql", "upgrade"],
            # A minor upgrade restarts primary and standby together (an outage, not a failover):
            # protected environments upgrade deliberately (README, "Upgrading PostgreSQL").
            auto_minor_version_upgrade=not protected,
            # Automated backups outlive the instance (restorable for their retention period).
            delete_automated_backups=False, deletion_protection=protected, skip_final_snapshot=negate(protected),
            final_snapshot_identifier=pick_or_none(protected, f"{identifier}-final"),
            depends_on=log_groups)
        if settings.restored.db_instance_identifier:
            db.import_from(identifier)  # README "Restore": the restored instance takes this address
        protect(db, protected)
        _postgres_skips(db, settings.multi_az, protected)
        return db

    def _db_log_groups(self, generated: str, identifier: str) -> list[CloudwatchLogGroup]:
        """Created ahead of RDS so the exported logs are encrypted and expire. A restored
        instance gets its own groups; the original's stay with the logs they hold."""
        def log_groups_of(instance: str, suffix: str = "") -> list[CloudwatchLogGroup]:
            return [encrypted_log_group(self, f"db_log_group_{log}{suffix}", name=f"/aws/rds/instance/{instance}/{log}",
                                        kms_key_arn=self._key, retention_days=self._identity.log_retention_days,
                                        protect_data=self._identity.protect_stateful)
                    for log in ("postgresql", "upgrade")]
        groups = log_groups_of(generated)
        return log_groups_of(identifier, "_restored") if identifier != generated else groups

    # --- Redis --------------------------------------------------------------------------------

    def _redis(self, network: NetworkOutputs) -> tuple[ElasticacheReplicationGroup, GeneratedSecret]:
        identity, settings = self._identity, self._settings
        protected = identity.protect_stateful
        name = identity.resource_name("redis")
        token = GeneratedSecret(self, "redis_auth", name=f"{identity.project}/{identity.environment}/redis-auth",
                                description="Redis AUTH token for LiteLLM and the functions",
                                kms_key_arn=self._key, protect_data=protected, length=64)
        subnets = ElasticacheSubnetGroup(self, "redis_subnet_group", name=identity.resource_name("redis"),
                                         subnet_ids=network.database_subnet_ids)
        slow_log = encrypted_log_group(self, "redis_slow_log", name=f"/aws/elasticache/{name}/slow-log",
                                       kms_key_arn=self._key, retention_days=identity.log_retention_days,
                                       protect_data=protected)
        replicas = settings.redis_replicas
        redis = ElasticacheReplicationGroup(
            self, "redis", replication_group_id=name,
            description=f"LiteLLM rate limits and response cache ({identity.environment})",
            engine="redis", engine_version=settings.redis_version, node_type=settings.redis_node_type, port=Port.REDIS,
            num_cache_clusters=redis_nodes(replicas), automatic_failover_enabled=redis_failover(replicas),
            # The primary in the first zone, each replica in the next: a lost zone keeps a copy.
            preferred_cache_cluster_azs=redis_zones(settings.availability_zones, replicas),
            multi_az_enabled=redis_multi_az(replicas, settings.multi_az), subnet_group_name=subnets.name,
            security_group_ids=[network.security_group_ids["redis"]], at_rest_encryption_enabled="true",
            kms_key_id=self._key, transit_encryption_enabled=True,
            # Write-only: Redis gets the secret's current value when the version number changes
            # (README: rotating the Redis AUTH token), and neither it nor state keeps a copy.
            auth_token_wo=token.current_value(), auth_token_wo_version=settings.redis_auth_token_version,
            auth_token_update_strategy=settings.redis_auth_update_strategy,
            snapshot_retention_limit=pick_number(protected, 7, 1),
            snapshot_window=REDIS_SNAPSHOT_WINDOW, maintenance_window=REDIS_MAINTENANCE_WINDOW,
            auto_minor_version_upgrade="true", final_snapshot_identifier=pick_or_none(protected, f"{name}-final"),
            log_delivery_configuration=[ElasticacheReplicationGroupLogDeliveryConfiguration(
                destination=slow_log.name, destination_type="cloudwatch-logs", log_format="json",
                log_type="slow-log")])
        protect(redis, protected)
        skip(redis, "CKV_AWS_31", "Transit encryption is on and the AUTH token is set, through the write-only "
             "auth_token_wo (kept out of state), which this check does not read: it looks for auth_token only.")
        if not isinstance(replicas, int):
            skip(redis, "CKV2_AWS_50", "Exported module: automatic failover follows the redis_replicas variable, which "
                 "this check cannot evaluate: on with 1 or more replicas (the default), off only for a one-node group "
                 "the caller chooses (refused with multi_az).")
        elif replicas == 0:
            skip(redis, "CKV2_AWS_50", DISPOSABLE + "one Redis node without failover is enough for development.")
        return redis, token

    # --- DynamoDB -----------------------------------------------------------------------------

    def _table(self, foundation: FoundationOutputs, id: str, name: str, *, hash_key: str,
               range_key: str | None = None, adopted: bool = False) -> DynamodbTable:
        identity, settings = self._identity, self._settings
        attributes = [DynamodbTableAttribute(name=hash_key, type="S"),
                      DynamodbTableAttribute(name=USER_ATTRIBUTE, type="S")]
        if range_key:
            attributes.append(DynamodbTableAttribute(name=range_key, type="N"))
        replicas = [DynamodbTableReplica(region_name=region, kms_key_arn=foundation.replica_kms_key_arns[region],
                                         point_in_time_recovery=True, propagate_tags=True,
                                         deletion_protection_enabled=identity.protect_stateful)
                    for region in settings.dynamodb_replica_regions]
        table = DynamodbTable(
            self, id, name=name, billing_mode="PAY_PER_REQUEST", hash_key=hash_key, range_key=range_key,
            attribute=attributes, ttl=DynamodbTableTtl(enabled=True, attribute_name="expiresAt"),
            # Added to live tables in place (UpdateTable creates the index and backfills it).
            global_secondary_index=[DynamodbTableGlobalSecondaryIndex(
                name=USER_INDEX, hash_key=USER_ATTRIBUTE, projection_type="KEYS_ONLY")],
            point_in_time_recovery=DynamodbTablePointInTimeRecovery(enabled=True),
            server_side_encryption=DynamodbTableServerSideEncryption(enabled=True, kms_key_arn=self._key),
            deletion_protection_enabled=identity.protect_stateful, replica=replicas or None,
            # Global tables replicate through the stream.
            stream_enabled=True if replicas else None,
            stream_view_type="NEW_AND_OLD_IMAGES" if replicas else None)
        if adopted:
            table.import_from(name)  # README "Restore": the restored table takes this address
        protect(table, identity.protect_stateful)
        return table

    # --- AWS Backup ---------------------------------------------------------------------------

    def _backups(self, resources: list[str], foundation: FoundationOutputs,
                 copy_provider: TerraformProvider | None) -> None:
        """Daily recovery points of the database and tables in an encrypted vault (locked where
        protected), copied to `backup_copy_region` when set; restores use the same role."""
        identity, settings = self._identity, self._settings
        account = self._account
        role = iam.service_role(self, "backup_role", name=identity.resource_name("backup"),
                                service="backup.amazonaws.com", source_account=None, statements=[])
        for purpose in ("Backup", "Restores"):
            IamRolePolicyAttachment(self, f"backup_policy_{purpose.lower()}", role=role.name, policy_arn=(
                f"arn:{account.partition}:iam::aws:policy/service-role/AWSBackupServiceRolePolicyFor{purpose}"))
        vault = self._vault("backup_vault", identity.resource_name("backup"), self._key)
        copies = None
        if settings.backup_copy_region and copy_provider is not None:
            region = settings.backup_copy_region
            # The environment key's replica there: the copies stay readable if this region is lost.
            target = self._vault("backup_copy_vault", identity.resource_name(f"backup-{region}"),
                                 foundation.replica_kms_key_arns[region], copy_provider)
            copies = [BackupPlanRuleCopyAction(destination_vault_arn=target.arn, lifecycle=(
                BackupPlanRuleCopyActionLifecycle(delete_after=settings.backup_plan_retention_days)))]
        plan = BackupPlan(self, "backup_plan", name=identity.resource_name("data"), rule=[BackupPlanRule(
            rule_name="daily", target_vault_name=vault.name, schedule=BACKUP_SCHEDULE,
            start_window=BACKUP_START_WINDOW_MINUTES, completion_window=BACKUP_COMPLETION_WINDOW_MINUTES,
            lifecycle=BackupPlanRuleLifecycle(delete_after=settings.backup_plan_retention_days),
            copy_action=copies)])
        BackupSelection(self, "backup_selection", name=identity.resource_name("data"), plan_id=plan.id,
                        iam_role_arn=role.arn, resources=resources)

    def _vault(self, id: str, name: str, key: str, provider: TerraformProvider | None = None) -> BackupVault:
        protected = self._identity.protect_stateful
        vault = BackupVault(self, id, name=name, kms_key_arn=key, force_destroy=negate(protected), provider=provider)
        protect(vault, protected)
        if built(protected):
            # Governance mode: recovery points cannot be deleted early or kept too briefly;
            # only a principal allowed backup:DeleteBackupVaultLockConfiguration can lift it.
            lock = BackupVaultLockConfiguration(self, f"{id}_lock", backup_vault_name=vault.name, provider=provider,
                                         min_retention_days=VAULT_LOCK_MIN_RETENTION_DAYS,
                                         max_retention_days=self._settings.backup_plan_retention_days)
            only_if(lock, protected)
        return vault


def redis_nodes(replicas: int | Any) -> int | Any:
    """Nodes of the Redis group: the primary and its replicas (a module's redis_replicas
    variable: Terraform adds)."""
    return 1 + replicas if isinstance(replicas, int) else Token.as_number(Op.add(1, replicas))


def redis_failover(replicas: int | Any) -> bool | Any:
    """Automatic failover promotes a replica: on whenever the group has one."""
    return replicas > 0 if isinstance(replicas, int) else Op.gt(replicas, 0)


def redis_multi_az(replicas: int | Any, multi_az: bool | Any) -> bool | Any:
    """Multi-AZ needs automatic failover, so a replica: a module's variables are validated to
    agree (redis_replicas refuses 0 with multi_az)."""
    return replicas > 0 and multi_az if isinstance(replicas, int) else multi_az


def redis_zones(zones: list[str] | Any, replicas: int | Any) -> list[str]:
    """The zone of each Redis node, the primary's first, round the zones. A module's nodes:
    the zones of the most a group may have (Terraform's element rounds the list the same way),
    sliced to the group's."""
    if isinstance(replicas, int) and not Token.is_unresolved(zones):
        return [zones[i % len(zones)] for i in range(redis_nodes(replicas))]
    most = [Token.as_string(Fn.element(zones, i)) for i in range(redis_nodes(MAX_REDIS_REPLICAS))]
    return Token.as_list(Fn.slice(most, 0, redis_nodes(replicas)))


def redis_node_ids(group: str, replicas: int | Any) -> list[str]:
    """ElastiCache names a replication group's nodes <group>-001, -002, …: as many as the
    group has, a list of any length in a module."""
    if isinstance(replicas, int):
        return [f"{group}-{i:0{ORDINAL_WIDTH}d}" for i in range(1, 1 + redis_nodes(replicas))]
    return Token.as_list(Fn.formatlist(f"%s-%0{ORDINAL_WIDTH}d", [group, Fn.range(1, Op.add(2, replicas))]))


def db_max_connections(scope: Construct, instance_class: str) -> int | Any:
    """The max_connections the parameter group sets for the class. A module looks it up in a
    local table of every class the platform sizes (its db_instance_class variable is validated
    against the same table), so the parameter group and the db_max_connections output agree."""
    if not Token.is_unresolved(instance_class):
        return max_connections(instance_class)
    table = TerraformLocal(scope, "db_max_connections_by_class",
                           {name: max_connections(name) for name in DB_MEMORY_GIB})
    return Token.as_number(Fn.lookup(table.as_number_map, instance_class))


def as_text(number: int | Any) -> str:
    """A number for a text argument: a module's expression as Terraform interpolates it."""
    return str(number) if isinstance(number, int) else Token.as_string(number)


def _postgres_skips(db: DbInstance, multi_az: bool, protected: bool) -> None:
    """The database's Checkov skips, each with the configuration that makes it right."""
    if not multi_az:
        skip(db, "CKV_AWS_157", DISPOSABLE + "a single-AZ database halves the cost of a development stack.")
    if protected:
        skip(db, "CKV_AWS_226", "A minor upgrade restarts primary and standby together: protected environments "
             "take them deliberately, in a window (README, \"Upgrading PostgreSQL\"), not automatically.")
    else:
        skip(db, "CKV_AWS_293", DISPOSABLE + "the database is dropped with the environment.")
