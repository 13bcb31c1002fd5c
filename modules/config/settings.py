"""What each layer reads of an environment: the shared identity, and its own settings.

A layer takes an `Identity` and one settings object — its section of `environment.toml`,
plus the few values it borrows from other sections, named after what it uses them for.
The plain-Terraform export reads the same objects to declare a module's variables.
"""

from __future__ import annotations

from operator import attrgetter
from typing import ClassVar, Literal

from pydantic import BaseModel

from modules.config import models
from modules.config.models import Capacity, Environment, ModelRoute, Section


class Identity(Section):
    """Who and where a layer is, and the house rules every layer applies."""

    project: str
    environment: str
    region: str
    protect_stateful: bool
    log_retention_days: int

    @classmethod
    def of(cls, env: Environment) -> Identity:
        return cls(project=env.project, environment=env.name, region=env.region,
                   protect_stateful=env.protect_stateful, log_retention_days=env.foundation.log_retention_days)

    def resource_name(self, suffix: str) -> str:
        """`<project>-<env>-<suffix>`: the one naming rule for AWS resource names."""
        return f"{self.project}-{self.environment}-{suffix}"


class LlmSettings(models.Llm):
    SECTION: ClassVar[str] = "llm"
    BORROWED: ClassVar[dict[str, str]] = {"idle_timeout_seconds": "edge.idle_timeout_seconds"}
    idle_timeout_seconds: int  # the internal ALB holds a streamed answer as long as the public one


class DataSettings(models.Data):
    SECTION: ClassVar[str] = "data"
    BORROWED: ClassVar[dict[str, str]] = {"availability_zones": "network.availability_zones"}
    availability_zones: list[str]  # Redis nodes are pinned to them, the primary in the first


class GatewaySettings(models.Gateway):
    SECTION: ClassVar[str] = "gateway"
    BORROWED: ClassVar[dict[str, str]] = {"max_body_bytes": "edge.max_body_bytes",
                                          "self_hosted_model_name": "llm.served_model_name",
                                          "self_hosted_dns_name": "llm.dns_name",
                                          "request_timeout_seconds": "edge.request_timeout_seconds",
                                          "gpu_host_cost_per_hour_usd": "llm.host_cost_per_hour_usd",
                                          "gpu_tokens_per_second": "llm.tokens_per_second",
                                          "salt_key_replica_region": "data.backup_copy_region"}
    max_body_bytes: int  # the proxy's own body limit matches the WAF's
    self_hosted_model_name: str
    self_hosted_dns_name: str | None
    request_timeout_seconds: int  # model calls end, and tasks drain, within the ALB's idle timeout
    gpu_host_cost_per_hour_usd: float  # the self-hosted route's price per token
    gpu_tokens_per_second: int
    # The salt key goes where the database's copies go: without it a copy's stored
    # credentials cannot be decrypted.
    salt_key_replica_region: str | None


class RealtimeSettings(models.Realtime):
    SECTION: ClassVar[str] = "realtime"
    BORROWED: ClassVar[dict[str, str]] = {"model_routes": "gateway.models",
                                          "edge_certificate_arn": "edge.certificate_arn"}
    model_routes: list[ModelRoute]  # the models a frame may ask for, unless `models` narrows them
    edge_certificate_arn: str | None  # the custom domain's certificate, unless its own is given


class ObservabilitySettings(models.Observability):
    SECTION: ClassVar[str] = "observability"
    BORROWED: ClassVar[dict[str, str]] = {
        "model_routes": "gateway.models", "gpu_capacity": "llm.capacity",
        "gpu_scheduled_scaling": "llm.scheduled_scaling",
        "gpu_queue_target_per_instance": "llm.queue_target_per_instance",
        "waf_log_destination": "edge.waf_log_destination",
        "dynamodb_replica_regions": "data.dynamodb_replica_regions"}
    # Thresholds and widgets follow the sizing and the routes they watch.
    model_routes: list[ModelRoute]
    gpu_capacity: Capacity
    gpu_scheduled_scaling: bool
    gpu_queue_target_per_instance: int
    waf_log_destination: Literal["s3", "cloudwatch"]
    dynamodb_replica_regions: list[str]  # a replication-latency alarm per table and replica region


class StateSettings(models.Backend):
    SECTION: ClassVar[str] = "backend"
    BORROWED: ClassVar[dict[str, str]] = {"archive_after_days": "foundation.archive_after_days",
                                          "audit_retention_days": "foundation.audit_retention_days"}
    archive_after_days: int  # old state versions age like the environment's logs
    audit_retention_days: int


class AccountEnvironment(Section):
    """What an account's stack reads of one environment in that account (its pipeline roles)."""

    name: str
    project: str
    region: str
    state_bucket: str | None     # None: the environment keeps its state locally
    state_key_prefix: str
    state_region: str

    @classmethod
    def of(cls, env: Environment) -> AccountEnvironment:
        return cls(name=env.name, project=env.project, region=env.region, state_bucket=env.backend.bucket,
                   state_key_prefix=env.backend.key_prefix, state_region=env.backend.region or env.region)


class AccountSettings(Section):
    """An `account-<name>` stack's input: the account and every environment deployed to it."""

    name: str
    account: models.Account
    environments: tuple[AccountEnvironment, ...]


# Each layer's settings type: its section as it is, or the section extended by values of
# other sections (SECTION names it; BORROWED maps each extra field to the path it is read from).
SETTINGS: dict[str, type[BaseModel]] = {
    "state": StateSettings, "foundation": models.Foundation, "network": models.Network, "edge": models.Edge,
    "data": DataSettings, "llm": LlmSettings, "gateway": GatewaySettings, "realtime": RealtimeSettings,
    "observability": ObservabilitySettings,
}


def settings_for(env: Environment, layer: str) -> BaseModel:
    """The layer's settings of a validated environment (values are not validated again)."""
    kind = SETTINGS[layer]
    if not hasattr(kind, "BORROWED"):
        return getattr(env, layer)
    section = getattr(env, kind.SECTION)
    borrowed = {field: attrgetter(path)(env) for field, path in kind.BORROWED.items()}
    return kind.model_construct(**dict(section), **borrowed)


def source_of(layer: str, field: str) -> str:
    """The dotted path in `environment.toml` a layer's settings field comes from."""
    kind = SETTINGS[layer]
    if hasattr(kind, "BORROWED"):
        return kind.BORROWED.get(field, f"{kind.SECTION}.{field}")
    return f"{layer}.{field}"
