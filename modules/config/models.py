"""The sections of `environment.toml` as frozen, strictly typed pydantic models.

Strict: a quoted number (`cpu = "1024"`) or a word for a boolean (`high_availability =
"yes"`) is an error, not a silent conversion; unknown keys are errors too.
"""

from __future__ import annotations

from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

from modules.config.regions import REGIONS


# Availability zones per supported region (modules/config/regions.py says which and why).
REGION_AZS: dict[str, tuple[str, ...]] = {name: region.zones for name, region in REGIONS.items()}

# Fargate task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

# GPU families and the memory of one of their GPUs (GB): Spot alternatives share a class.
GPU_MEMORY_GB = {"g4dn": 16, "g5": 24, "g6": 24, "gr6": 24, "g6e": 48, "p4d": 40, "p4de": 80, "p5": 80, "p5e": 141}

# ECR pull-through cache rules of every environment: repository prefix -> upstream registry
# (the registry's URL as ECR names it, and the host an image reference names). Images are
# pulled as <account>.dkr.ecr.<region>.amazonaws.com/<prefix>/<upstream repository>:<tag>.
PULL_THROUGH_CACHES: dict[str, tuple[str, tuple[str, ...]]] = {
    "ghcr": ("ghcr.io", ("ghcr.io",)),
    "docker-hub": ("registry-1.docker.io", ("docker.io", "registry-1.docker.io", "index.docker.io")),
}


def upstream_of(image: str) -> tuple[str, str] | None:
    """(cache prefix, repository with tag) of an image named at an upstream the caches serve;
    a name without a registry host is Docker Hub's (`library/` for its official images)."""
    host, _, rest = image.partition("/")
    if not rest or ("." not in host and ":" not in host and host != "localhost"):
        host, rest = "docker.io", image if rest else f"library/{image}"
    for prefix, (_, hosts) in PULL_THROUGH_CACHES.items():
        if host in hosts:
            return prefix, rest
    return None


# Retention values CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,20}$")]


def _cidr_text(value: Any) -> Any:
    """A CIDR is written as a string: lax mode alone would turn `5` into 0.0.0.5/32. A range
    with host bits set (10.0.1.5/16) says so and names its network, not just "not valid"."""
    if not isinstance(value, (str, IPv4Network)):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if isinstance(value, str) and _host_bits_set(value):
        network = IPv4Network(value, strict=False)
        raise PydanticCustomError("cidr_host_bits", "{value} has host bits set: that range starts at {network}",
                                  {"value": value, "network": str(network)})
    return value


def _host_bits_set(text: str) -> bool:
    try:
        IPv4Network(text)
    except ValueError:
        try:
            IPv4Network(text, strict=False)
        except ValueError:
            return False  # not a range at all: the type's own error says so
        return True
    return False


# CIDRs are written as strings in TOML; strict mode would demand an IPv4Network object.
Cidr = Annotated[IPv4Network, Strict(False), BeforeValidator(_cidr_text)]


class Section(BaseModel):
    """Base of every config section: immutable, and unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Backend(Section):
    type: Literal["local", "s3"] = "local"
    bucket: str | None = None
    key_prefix: str = "llm-platform"
    region: str | None = None
    kms_key_id: str | None = None


class Network(Section):
    vpc_cidr: Cidr
    availability_zones: list[str]
    public_subnets: list[Cidr]
    private_subnets: list[Cidr]
    database_subnets: list[Cidr]
    nat_gateways: Literal["single", "per_az"] = "per_az"


class Foundation(Section):
    log_retention_days: int = 365
    archive_after_days: Annotated[int, Field(ge=30)] = 90
    audit_retention_days: Annotated[int, Field(ge=1)] = 2555
    audit_object_lock: bool = False
    # One multi-region trail per account: a second one bills management events twice.
    cloudtrail: bool = False


class Edge(Section):
    certificate_arn: str | None = None
    idle_timeout_seconds: Annotated[int, Field(ge=1, le=4000)] = 300
    # The longest a model call may take (LiteLLM's per-model timeout); below the idle timeout, so
    # the proxy answers before the ALB cuts the connection. Deploys and scale-in drain this long.
    request_timeout_seconds: Annotated[int, Field(ge=10, le=3600)] = 240
    managed_rules_action: Literal["block", "count"] = "block"
    rate_limit_per_5_minutes: Annotated[int, Field(ge=10, le=2_000_000_000)] = 2000
    max_body_bytes: Annotated[int, Field(ge=8192, le=100_000_000)] = 4_000_000
    allowed_countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = []
    trusted_cidrs: list[Cidr] = []
    waf_log_destination: Literal["s3", "cloudwatch"] = "cloudwatch"


class Restored(Section):
    """Restored copies the stacks adopt in place of the generated names (README: "Restore").

    Set one after restoring into a new name and dropping the original from state: the data
    layer then manages (imports) the restored database or table under the same address, and
    every consumer (gateway, functions, alarms, backups) follows it.
    """

    db_instance_identifier: Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", max_length=63)] | None = None
    connections_table: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{3,255}$")] | None = None
    history_table: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_.-]{3,255}$")] | None = None


class Data(Section):
    postgres_version: str = "16"
    db_instance_class: str = "db.t4g.small"
    db_storage_gb: Annotated[int, Field(ge=20)] = 20
    db_max_storage_gb: Annotated[int, Field(ge=20)] = 100
    multi_az: bool = True
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    redis_node_type: str = "cache.t4g.small"
    redis_replicas: Annotated[int, Field(ge=0, le=5)] = 1
    redis_version: str = "7.1"
    # Raising the version sends the AUTH secret's current value to Redis (write-only
    # auth_token_wo): ROTATE keeps the previous token valid beside it, SET drops it.
    redis_auth_token_version: Annotated[int, Field(ge=1)] = 1
    redis_auth_update_strategy: Literal["ROTATE", "SET"] = "ROTATE"
    dynamodb_replica_regions: list[str] = []
    # Data residency: the only regions this environment's data may be copied to (table
    # replicas, backup copies, the salt key's replica). Empty: the data stays in `region`.
    allowed_copy_regions: list[str] = []
    # AWS Backup: daily recovery points of the database and tables, kept this long, and copied
    # to this region (one of allowed_copy_regions) when set.
    backup_plan_retention_days: Annotated[int, Field(ge=7, le=3650)] = 35
    backup_copy_region: str | None = None
    restored: Restored = Restored()


class Capacity(Section):
    min: Annotated[int, Field(ge=0)]
    desired: Annotated[int, Field(ge=0)]
    max: Annotated[int, Field(ge=1)]


class ModelRoute(Section):
    """A friendly model name routed to Bedrock or to an OpenAI-compatible upstream."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]+$")]
    bedrock_model_id: str | None = None
    upstream_url: str | None = None
    # Route to the environment's own GPU tier (llm layer) instead of Bedrock or a URL.
    self_hosted: bool = False
    # Per-deployment limits, enforced across tasks through the router's Redis.
    rpm: Annotated[int, Field(ge=1)] | None = None
    tpm: Annotated[int, Field(ge=1)] | None = None
    # This route's own timeout (default: edge.request_timeout_seconds).
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    # Routes LiteLLM tries, in order, when this one fails (e.g. the GPU tier → a Bedrock model).
    fallbacks: list[str] = []
    # Price per token (USD) for spend and budgets; a self-hosted route defaults to the GPU tier's.
    input_cost_per_token: Annotated[float, Field(ge=0)] | None = None
    output_cost_per_token: Annotated[float, Field(ge=0)] | None = None


class KeyLimits(Section):
    """Limits of a LiteLLM virtual key: per minute, and spend per budget period."""

    tpm: Annotated[int, Field(ge=1)]
    rpm: Annotated[int, Field(ge=1)]
    max_budget_usd: Annotated[float, Strict(False), Field(gt=0)]
    budget_duration: Annotated[str, Field(pattern=r"^[1-9][0-9]*[smhd]$|^[1-9][0-9]*mo$")] = "30d"


class Gateway(Section):
    image: str
    cpu: int = 1024
    memory: int = 2048
    capacity: Capacity = Capacity(min=2, desired=2, max=5)
    fargate_spot: bool = False
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70
    memory_target_percent: Annotated[int, Field(ge=10, le=95)] = 75
    # ECS Exec (break-glass shell into a task), recorded to an encrypted log group.
    ecs_exec: bool = False
    # How long an opted-in cached response lives (LiteLLM's own default is about a minute).
    cache_ttl_seconds: Annotated[int, Field(ge=1, le=604_800)] = 600
    # Secrets Manager ARN of a LiteLLM enterprise licence: enables the proxy's own body limit.
    license_secret_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:secretsmanager:")] | None = None
    # Serve keys LiteLLM cannot look up while its database is unreachable. LiteLLM's guide allows
    # it only where the proxy cannot be reached from the internet: this one can (the public ALB),
    # and its fallback identity would admit any caller during an outage. Off unless decided.
    allow_requests_on_db_unavailable: bool = False
    # Spend logs older than this are deleted by the proxy (LiteLLM's retention job).
    spend_logs_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    # Redis calls give up after these (seconds): a lost node fails fast instead of hanging requests.
    redis_socket_timeout_seconds: Annotated[float, Strict(False), Field(gt=0, le=60)] = 2.0
    redis_connect_timeout_seconds: Annotated[float, Strict(False), Field(gt=0, le=60)] = 2.0
    # New keys made without limits get key_defaults; no key may exceed key_upper_bounds.
    key_defaults: KeyLimits = KeyLimits(tpm=10_000, rpm=100, max_budget_usd=50)
    key_upper_bounds: KeyLimits = KeyLimits(tpm=100_000, rpm=1_000, max_budget_usd=500)
    models: list[ModelRoute]


class Llm(Section):
    """The GPU model tier: vLLM on an Auto Scaling group behind an internal HTTPS ALB."""

    instance_type: str = "g5.xlarge"
    # More types whose GPUs hold at least as much memory as instance_type's: Spot capacity
    # from several pools.
    spot_instance_types: list[str] = []
    capacity: Capacity = Capacity(min=1, desired=1, max=4)
    on_demand_base: Annotated[int, Field(ge=0)] = 1
    # Share of the hosts above on_demand_base that run on-demand (the rest Spot).
    on_demand_percentage_above_base_capacity: Annotated[int, Field(ge=0, le=100)] = 0
    scheduled_scaling: bool = False
    # With scheduled_scaling: the group goes to zero at scale_down_hour and back to its
    # configured capacity at scale_up_hour, in schedule_time_zone (an IANA name).
    scale_down_hour: Annotated[int, Field(ge=0, le=23)] = 6
    scale_up_hour: Annotated[int, Field(ge=0, le=23)] = 15
    schedule_time_zone: str = "Etc/UTC"
    # Stopped, pre-initialized instances (weights on disk) that serve in about a minute.
    warm_pool_size: Annotated[int, Field(ge=0)] = 0
    root_volume_gb: Annotated[int, Field(ge=30, le=16384)] = 200
    # gp3 above its 3,000 IOPS / 125 MiB/s baseline: the weights copy is the boot's long pole.
    root_volume_iops: Annotated[int, Field(ge=3000, le=16000)] = 4000
    root_volume_throughput_mibps: Annotated[int, Field(ge=125, le=1000)] = 500
    # Launch lifecycle hook: how long a host may take (weights, image, up to 900 s of model
    # load) before the group abandons it. The boot script completes it once /health answers.
    launch_timeout_seconds: Annotated[int, Field(ge=1200, le=7200)] = 3600
    model_size_gb: Annotated[int, Field(ge=1)] = 16
    served_model_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9._-]+$")] = "deepseek-r1-distill-qwen-7b"
    # Weights source: a prefix in the layer's KMS-encrypted weights bucket (default), or a
    # Hugging Face model id (token from Secrets Manager) as the alternative.
    weights_s3_prefix: str | None = "models/deepseek-r1-distill-qwen-7b/"
    hf_model_id: str | None = None
    hf_token_secret_arn: str | None = None
    vllm_image: str = "vllm/vllm-openai:v0.11.0"
    max_model_len: Annotated[int, Field(ge=256, le=1_048_576)] = 8192
    # HTTP1 for an OpenAI-compatible server (vLLM); HTTP2/GRPC for a gRPC model service.
    protocol_version: Literal["HTTP1", "HTTP2", "GRPC"] = "HTTP1"
    # Private name of the internal ALB (Route 53 private zone = its parent domain), and the
    # certificate of its listener with the names that certificate holds (its domain name and
    # subject alternative names, as in ACM): one of them must cover dns_name.
    dns_name: Annotated[str, Field(pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$")] | None = None
    certificate_arn: str | None = None
    certificate_domains: list[Annotated[str, Field(pattern=r"^(\*\.)?([a-z0-9-]+\.)+[a-z]{2,}$")]] = []
    gpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70
    queue_target_per_instance: Annotated[int, Field(ge=1, le=1000)] = 5
    # What one GPU host costs per hour (USD) and the tokens (in + out) it serves per second at
    # the scaling target: the self-hosted route's price per token, so spend and budgets apply.
    host_cost_per_hour_usd: Annotated[float, Strict(False), Field(gt=0)] = 1.258
    tokens_per_second: Annotated[int, Field(ge=1)] = 400


class Realtime(Section):
    """The WebSocket chat path: Cognito, API Gateway, functions, queue, topic."""

    # Where the worker calls the model: the gateway's public URL (with a virtual key from
    # Secrets Manager) or the internal model endpoint, OpenAI-compatible, https only.
    model_endpoint_url: str | None = None
    # Gateway model names a frame may ask for (default: every gateway route).
    models: list[str] = []
    mfa: Literal["OPTIONAL", "ON"] = "ON"
    callback_urls: list[str] = ["https://localhost:3000/callback"]
    logout_urls: list[str] = ["https://localhost:3000/"]
    m2m_clients: list[Name] = []
    scopes: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9._-]{0,40}$")]] = ["chat.send", "chat.history"]
    throttling_rate_limit: Annotated[int, Field(ge=1, le=10_000)] = 50
    throttling_burst_limit: Annotated[int, Field(ge=1, le=5_000)] = 100
    connection_ttl_seconds: Annotated[int, Field(ge=60, le=86_400)] = 7200
    # The functions refuse 0 (Redis refuses an expiry of 0): a cached answer lives at least a second.
    cache_ttl_seconds: Annotated[int, Field(ge=1, le=604_800)] = 3600
    max_frame_bytes: Annotated[int, Field(ge=1024, le=131_072)] = 32_768
    # Receives before a request goes to the dead-letter queue (SQS allows 1-1000); at least 5,
    # since throttled batches count too (rules say so with a fix).
    max_receives: Annotated[int, Field(ge=1, le=1000)] = 5
    model_timeout_seconds: Annotated[int, Field(ge=5, le=600)] = 60
    # The most tokens the worker lets the model answer (sent as max_tokens): the answer's
    # length is the platform's to bound, not the prompt's.
    max_output_tokens: Annotated[int, Field(ge=1, le=131_072)] = 4096
    # The worker's reserved concurrency, and the most invocations its SQS event source mapping
    # makes (Lambda's maximum concurrency, 2-1000). The API-facing functions reserve none: the
    # stage's throttling limits them.
    worker_concurrency: Annotated[int, Field(ge=1)] = 10
    # Optional custom domain (e.g. chat.example.com) with a regional ACM certificate.
    custom_domain: Annotated[str, Field(pattern=r"^([a-z0-9-]+\.)+[a-z]{2,}$")] | None = None
    certificate_arn: str | None = None


class AlarmOverride(Section):
    threshold: Annotated[float, Strict(False)] | None = None  # 5 and 5.0 alike
    periods: Annotated[int, Field(ge=1, le=10)] | None = None


class Observability(Section):
    """Who is alerted, and any alarm whose threshold or evaluation periods differ here."""

    alarm_emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]] = []
    # Keyed by alarm name (the on-call table in the README lists them).
    overrides: dict[str, AlarmOverride] = {}


class Environment(Section):
    name: Name
    # The AWS account the environment deploys to: every provider refuses any other
    # (allowed_account_ids), and every ARN in this file must name it.
    account_id: str
    # Optional IAM role (in that account) the provider and the S3 backend assume.
    deploy_role_arn: str | None = None
    project: Name = "llmlite"
    region: str
    high_availability: bool
    protect_stateful: bool
    tags: dict[str, str] = {}
    backend: Backend = Backend()
    network: Network
    foundation: Foundation = Foundation()
    edge: Edge = Edge()
    data: Data = Data()
    gateway: Gateway
    llm: Llm = Llm()
    realtime: Realtime = Realtime()
    observability: Observability = Observability()


class Account(Section):
    """One AWS account of `environments/accounts.toml`: its `account-<name>` stack holds what
    exists once per account (modules/layers/account.py)."""

    id: Annotated[str, Field(pattern=r"^\d{12}$")]
    # Where the account stack's provider runs (IAM is global; API Gateway settings are set in
    # every region an environment of the account uses).
    region: str
    # The GitHub repository (`<org>/<repo>`) whose workflows may assume the pipeline's roles.
    repository: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}$")]
    # The Auto Scaling service-linked role exists once an Auto Scaling group was ever made in
    # the account: "import" adopts it (an earlier foundation created it), "create" makes it.
    autoscaling_role: Literal["create", "import"] = "create"
    # The S3 bucket (an environment's state bucket in this account, in `region`) keeping the
    # account stack's state under `llm-platform/account-<name>.tfstate`; unset: a local file.
    state_bucket: str | None = None


class Accounts(Section):
    accounts: dict[Name, Account]
