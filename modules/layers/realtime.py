"""Realtime layer: the WebSocket chat path — Cognito, API Gateway WebSocket API, the functions
of `lambda/`, the request queue with its dead-letter queue and the response topic."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cdktn import AssetType, Op, TerraformAsset, TerraformStack, Token
from constructs import Construct
from cdktn_provider_aws.apigatewayv2_api import Apigatewayv2Api
from cdktn_provider_aws.apigatewayv2_api_mapping import Apigatewayv2ApiMapping
from cdktn_provider_aws.apigatewayv2_authorizer import Apigatewayv2Authorizer
from cdktn_provider_aws.apigatewayv2_domain_name import (
    Apigatewayv2DomainName,
    Apigatewayv2DomainNameDomainNameConfiguration,
)
from cdktn_provider_aws.apigatewayv2_integration import Apigatewayv2Integration
from cdktn_provider_aws.apigatewayv2_route import Apigatewayv2Route
from cdktn_provider_aws.apigatewayv2_stage import (
    Apigatewayv2Stage,
    Apigatewayv2StageAccessLogSettings,
    Apigatewayv2StageDefaultRouteSettings,
)
from cdktn_provider_aws.cognito_resource_server import CognitoResourceServer, CognitoResourceServerScope
from cdktn_provider_aws.cognito_user_pool import (
    CognitoUserPool,
    CognitoUserPoolAccountRecoverySetting,
    CognitoUserPoolAccountRecoverySettingRecoveryMechanism,
    CognitoUserPoolAdminCreateUserConfig,
    CognitoUserPoolPasswordPolicy,
    CognitoUserPoolSoftwareTokenMfaConfiguration,
    CognitoUserPoolUserPoolAddOns,
)
from cdktn_provider_aws.cognito_user_pool_client import (
    CognitoUserPoolClient,
    CognitoUserPoolClientTokenValidityUnits,
)
from cdktn_provider_aws.cognito_user_pool_domain import CognitoUserPoolDomain
from cdktn_provider_aws.lambda_event_source_mapping import (
    LambdaEventSourceMapping,
    LambdaEventSourceMappingScalingConfig,
)
from cdktn_provider_aws.lambda_function import (
    LambdaFunction,
    LambdaFunctionEnvironment,
    LambdaFunctionLoggingConfig,
    LambdaFunctionTracingConfig,
    LambdaFunctionVpcConfig,
)
from cdktn_provider_aws.lambda_layer_version import LambdaLayerVersion
from cdktn_provider_aws.lambda_permission import LambdaPermission
from cdktn_provider_aws.secretsmanager_secret import SecretsmanagerSecret
from cdktn_provider_aws.sns_topic import SnsTopic
from cdktn_provider_aws.sns_topic_policy import SnsTopicPolicy
from cdktn_provider_aws.sqs_queue import SqsQueue
from cdktn_provider_aws.sqs_queue_policy import SqsQueuePolicy

from modules.parts import iam, packaging
from modules.parts.compliance import skip
from modules.parts.switch import attribute, only_if, pick, pick_number
from modules.config.settings import Identity, RealtimeSettings
from modules.parts.context import Account, current_account
from modules.layers.data import USER_INDEX, DataOutputs
from modules.layers.foundation import FoundationOutputs
from modules.layers.network import NetworkOutputs
from modules.parts.outputs import publish
from modules.parts.storage import encrypted_log_group, protect

STAGE = "live"
# The worker handles a batch's records one after another: its timeout covers every model call.
WORKER_BATCH_SIZE = 2
WORKER_TIMEOUT_MARGIN = 30
ERASER_TIMEOUT = 900  # Lambda's maximum: a user with many thousands of exchanges, deleted one by one
ENVELOPE_CONTEXT_KEY = "userSession"  # the field-level encryption context the worker binds
CLAIM_PREFIX = "claim#"  # partition keys of the worker's claims on request ids (history table)
# The functions API Gateway invokes (routes and the authorizer); the worker is invoked by its
# SQS event source mapping only.
API_FUNCTIONS = ("authorizer", "connect", "disconnect", "message")


@dataclass(frozen=True)
class RealtimeOutputs:
    api_id: str
    stage: str
    request_queue_name: str
    dead_letter_queue_name: str
    function_names: dict[str, str]
    user_pool_id: str


@dataclass
class Function:
    """One function of `lambda/`: its settings and exactly the statements its role needs."""

    name: str
    timeout: int
    memory: int = 256
    environment: dict[str, str] = field(default_factory=dict)
    statements: list[iam.Statement] = field(default_factory=list)
    # None: no reservation (the API-facing functions, bounded by the stage's throttling).
    reserved_concurrency: int | None = None


def worker_timeout(model_timeout_seconds: int) -> int:
    return WORKER_BATCH_SIZE * model_timeout_seconds + WORKER_TIMEOUT_MARGIN


def claim_lease_seconds(model_timeout_seconds: int) -> int:
    """A claim older than this belongs to a worker that died: longer than the worker can run."""
    return worker_timeout(model_timeout_seconds) + 60


def _vpc_networking(account: Account) -> list[iam.Statement]:
    """Lambda attaches a VPC function through network interfaces it manages with the function's
    role: the actions of AWS's managed AWSLambdaVPCAccessExecutionRole (ec2:DescribeSubnets
    since its v3 of January 2024), each scoped as narrowly as the EC2 API admits."""
    ec2 = f"arn:{account.partition}:ec2:{account.region}:{account.id}"
    return [
        iam.allow(["ec2:CreateNetworkInterface"], [f"{ec2}:network-interface/*", f"{ec2}:subnet/*",
                                                   f"{ec2}:security-group/*"], sid="CreateInterfaces"),
        iam.allow(["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface", "ec2:UnassignPrivateIpAddresses"],
                  [f"{ec2}:network-interface/*"], sid="ManageInterfaces"),
        iam.allow_unscoped(["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], sid="FindInterfaces"),
    ]


@dataclass(frozen=True)
class _Wiring:
    """What the functions are wired to: built by the identity, messaging and API steps."""
    pool: CognitoUserPool
    client_ids: list[str]
    queue: SqsQueue
    dead_letters: SqsQueue
    topic: SnsTopic
    model_key: SecretsmanagerSecret
    data: DataOutputs
    endpoint: str
    connections_arn: str



class Realtime(Construct):
    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: RealtimeSettings,
                 network: NetworkOutputs,
                 foundation: FoundationOutputs, data: DataOutputs) -> None:
        super().__init__(scope, id)
        account = current_account(self, identity.region)
        self._identity, self._settings = identity, settings
        self._key, self._account, self._network = foundation.kms_key_arn, account, network

        pool, web_client, m2m_clients, domain = self._cognito()  # identity
        queue, dead_letters, topic = self._messaging(account)
        model_key = self._model_key()
        api = Apigatewayv2Api(self, "api", name=identity.resource_name("chat"), protocol_type="WEBSOCKET",
                              route_selection_expression="$request.body.action",
                              description=f"WebSocket chat of {identity.environment}")
        wiring = _Wiring(pool=pool, client_ids=[web_client.id, *(c.id for c in m2m_clients)], queue=queue,
                         dead_letters=dead_letters, topic=topic, model_key=model_key, data=data,
                         endpoint=f"https://{api.id}.execute-api.{identity.region}.amazonaws.com/{STAGE}",
                         connections_arn=f"{api.execution_arn}/{STAGE}/POST/@connections/*")
        built = self._functions(self._function_specs(wiring), queue)
        self._routes(api, built)
        url, extra_outputs = self._custom_domain(api)

        self.outputs = RealtimeOutputs(api_id=api.id, stage=STAGE, request_queue_name=queue.name,
                                       dead_letter_queue_name=dead_letters.name,
                                       function_names={n: f.function_name for n, f in built.items()},
                                       user_pool_id=pool.id)
        publish(self, {
            "websocket_url": (url, "WebSocket URL clients connect to (?token=<Cognito access token>)"),
            "user_pool_id": (pool.id, "Cognito user pool of chat users"),
            "web_client_id": (web_client.id, "Cognito app client for the web UI (authorization code + PKCE)"),
            "m2m_client_ids": ({c.name: c.id for c in m2m_clients},
                               "Cognito machine-to-machine clients (their secrets stay in Cognito)"),
            "auth_domain": (f"https://{domain.domain}.auth.{identity.region}.amazoncognito.com",
                            "Cognito hosted UI and OAuth2 token endpoint"),
            "request_queue_url": (queue.url, "SQS queue of chat requests"),
            "dead_letter_queue_url": (dead_letters.url, "SQS dead-letter queue: requests that failed every try"),
            "response_topic_arn": (topic.arn, "SNS topic notified of every answer (ids only)"),
            "model_api_key_secret_arn": (model_key.arn, "Secrets Manager ARN to put the worker's LiteLLM key in"),
            "eraser_function_name": (built["eraser"].function_name,
                                     "Function erasing a user's chat data (python -m modules.tools.erase_user)"),
            **extra_outputs,
        })

    def _model_key(self) -> SecretsmanagerSecret:
        identity = self._identity
        model_key = SecretsmanagerSecret(
            self, "model_api_key", name=f"{identity.project}/{identity.environment}/realtime-model-key",
            kms_key_id=self._key,
            description="LiteLLM virtual key the chat worker calls models with (set by an admin)",
            recovery_window_in_days=pick_number(identity.protect_stateful, 30, 0))
        protect(model_key, identity.protect_stateful)
        skip(model_key, "CKV2_AWS_57", "A LiteLLM virtual key is issued and revoked in LiteLLM; an admin "
             "rotates it with /key/regenerate and put-secret-value, no rotation Lambda can.")
        return model_key

    # --- functions ----------------------------------------------------------------------------

    def _function_specs(self, w: _Wiring) -> list[Function]:
        identity, settings = self._identity, self._settings
        data, key = w.data, self._key
        models = ",".join(settings.models or [m.name for m in settings.model_routes])
        redis = {"REDIS_HOST": data.redis_address, "REDIS_PORT": str(data.redis_port),
                 "REDIS_AUTH_SECRET_ARN": data.redis_auth_secret_arn,
                 "CACHE_TTL_SECONDS": str(settings.cache_ttl_seconds)}
        return [
            Function("authorizer", timeout=10, environment={
                "USER_POOL_ID": w.pool.id, "TOKEN_USE": "access", "ALLOWED_CLIENT_IDS": ",".join(w.client_ids)}),
            Function("connect", timeout=10, environment={
                "CONNECTIONS_TABLE": data.connections_table_name,
                "CONNECTION_TTL_SECONDS": str(settings.connection_ttl_seconds)},
                statements=[iam.allow(["dynamodb:PutItem"], [data.connections_table_arn], sid="RecordConnection")]),
            Function("disconnect", timeout=10, environment={"CONNECTIONS_TABLE": data.connections_table_name},
                     statements=[iam.allow(["dynamodb:DeleteItem"], [data.connections_table_arn],
                                           sid="ForgetConnection")]),
            Function("message", timeout=15, environment={
                "REQUEST_QUEUE_URL": w.queue.url, "WEBSOCKET_ENDPOINT": w.endpoint, "ALLOWED_MODELS": models,
                "MAX_FRAME_BYTES": str(settings.max_frame_bytes), **redis},
                statements=[
                    iam.allow(["sqs:SendMessage"], [w.queue.arn], sid="Enqueue"),
                    iam.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key], sid="EncryptQueue", conditions={
                        "StringEquals": {"kms:ViaService": f"sqs.{identity.region}.amazonaws.com"}}),
                    iam.allow(["secretsmanager:GetSecretValue"], [data.redis_auth_secret_arn], sid="RedisAuth"),
                    *self._read_secret_and_post(w)]),
            Function("worker", timeout=worker_timeout(settings.model_timeout_seconds), memory=512,
                     reserved_concurrency=settings.worker_concurrency, environment={
                "HISTORY_TABLE": data.history_table_name, "CONNECTIONS_TABLE": data.connections_table_name,
                "KMS_KEY_ARN": key, "MODEL_ENDPOINT": settings.model_endpoint_url or "",
                "MODEL_API_KEY_SECRET_ARN": w.model_key.arn,
                "MODEL_TIMEOUT_SECONDS": str(settings.model_timeout_seconds),
                "MODEL_MAX_TOKENS": str(settings.max_output_tokens),
                "CLAIM_LEASE_SECONDS": str(claim_lease_seconds(settings.model_timeout_seconds)),
                "DEAD_LETTER_QUEUE_URL": w.dead_letters.url, "REQUEST_QUEUE_URL": w.queue.url,
                "RESPONSE_TOPIC_ARN": w.topic.arn, "WEBSOCKET_ENDPOINT": w.endpoint, **redis},
                statements=self._worker_statements(w)),
            # Invoked by an operator (python -m modules.tools.erase_user): one erasure at a time.
            Function("eraser", timeout=ERASER_TIMEOUT, reserved_concurrency=1, environment={
                "HISTORY_TABLE": data.history_table_name, "CONNECTIONS_TABLE": data.connections_table_name, **redis},
                statements=self._eraser_statements(w)),
        ]

    def _read_secret_and_post(self, w: _Wiring) -> list[iam.Statement]:
        identity = self._identity
        return [iam.allow(["kms:Decrypt"], [self._key], sid="DecryptSecrets", conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{identity.region}.amazonaws.com"}}),
                iam.allow(["execute-api:ManageConnections"], [w.connections_arn], sid="PostToConnections")]

    def _worker_statements(self, w: _Wiring) -> list[iam.Statement]:
        identity = self._identity
        key, data = self._key, w.data
        return [
            iam.allow(["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"], [w.queue.arn],
                      sid="ConsumeRequests"),
            # A failed record is retried after a backoff, not the queue's whole visibility timeout.
            iam.allow(["sqs:ChangeMessageVisibility"], [w.queue.arn], sid="BackOffRetries"),
            # A job the configuration cannot serve is set aside for an operator, not retried.
            iam.allow(["sqs:SendMessage"], [w.dead_letters.arn], sid="SetAsideRequests"),
            iam.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key], sid="QueueEncryption", conditions={
                "StringEquals": {"kms:ViaService": f"sqs.{identity.region}.amazonaws.com"}}),
            iam.allow(["dynamodb:PutItem", "dynamodb:Query"], [data.history_table_arn], sid="History"),
            # Claims on request ids: only items under the claim prefix are read, updated, deleted.
            iam.allow(["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
                      [data.history_table_arn], sid="RequestClaims", conditions={
                          "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [f"{CLAIM_PREFIX}*"]}}),
            iam.allow(["dynamodb:DeleteItem"], [data.connections_table_arn], sid="ForgetGoneConnections"),
            # Field-level envelope encryption of prompt and answer, bound to the conversation.
            iam.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key], sid="EnvelopeEncryption", conditions={
                "Null": {f"kms:EncryptionContext:{ENVELOPE_CONTEXT_KEY}": "false"},
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": [ENVELOPE_CONTEXT_KEY]}}),
            iam.allow(["secretsmanager:GetSecretValue"], [w.model_key.arn, data.redis_auth_secret_arn],
                      sid="ModelKeyAndRedisAuth"),
            *self._read_secret_and_post(w),
            iam.allow(["sns:Publish"], [w.topic.arn], sid="Notify"),
            iam.allow(["kms:Decrypt", "kms:GenerateDataKey"], [key], sid="EncryptNotifications", conditions={
                "StringEquals": {"kms:ViaService": f"sns.{identity.region}.amazonaws.com"}}),
        ]

    def _eraser_statements(self, w: _Wiring) -> list[iam.Statement]:
        data = w.data
        tables = [data.history_table_arn, data.connections_table_arn]
        return [
            iam.allow(["dynamodb:Query"], [f"{arn}/index/{USER_INDEX}" for arn in tables], sid="FindUserItems"),
            iam.allow(["dynamodb:DeleteItem"], tables, sid="EraseUserItems"),
            # Items written before they carried userId: found once by a scan (scanUnindexed).
            iam.allow(["dynamodb:Scan"], [data.history_table_arn], sid="FindUnindexedHistory"),
            iam.allow(["secretsmanager:GetSecretValue"], [data.redis_auth_secret_arn], sid="RedisAuth"),
            iam.allow(["kms:Decrypt"], [self._key], sid="DecryptSecrets", conditions={
                "StringEquals": {"kms:ViaService": f"secretsmanager.{self._identity.region}.amazonaws.com"}}),
        ]

    def _functions(self, functions: list[Function], queue: SqsQueue) -> dict[str, LambdaFunction]:
        identity, settings = self._identity, self._settings
        layer_package = packaging.build_layer()
        layer = LambdaLayerVersion(
            self, "dependencies", layer_name=identity.resource_name("chat-deps"),
            filename=TerraformAsset(self, "dependencies_asset", path=str(layer_package.path),
                                    type=AssetType.FILE).path,
            source_code_hash=layer_package.source_code_hash, compatible_runtimes=[packaging.RUNTIME],
            compatible_architectures=[packaging.ARCHITECTURE])
        built = {f.name: self._function(f, layer.arn) for f in functions}

        LambdaEventSourceMapping(self, "worker_source", event_source_arn=queue.arn,
                                 function_name=built["worker"].arn, batch_size=WORKER_BATCH_SIZE,
                                 maximum_batching_window_in_seconds=1,
                                 # One poison message never redrives its whole batch.
                                 function_response_types=["ReportBatchItemFailures"],
                                 # Never more invocations than the worker's reservation: above it
                                 # Lambda throttles, and throttled batches count as receives.
                                 scaling_config=LambdaEventSourceMappingScalingConfig(
                                     maximum_concurrency=settings.worker_concurrency))
        return built

    def _custom_domain(self, api: Apigatewayv2Api) -> tuple[str, dict[str, tuple[Any, str]]]:
        """The clients' URL, and the extra output a custom domain needs (its DNS target). A
        domain that is a module variable exists while it is not empty (Terraform counts it)."""
        identity, settings = self._identity, self._settings
        stage_url = f"wss://{api.id}.execute-api.{identity.region}.amazonaws.com/{STAGE}"
        domain = settings.custom_domain
        if not domain:
            return stage_url, {}
        switch: bool | Any = True if not Token.is_unresolved(domain) else Op.neq(domain, "")
        domain_name = Apigatewayv2DomainName(
            self, "custom_domain", domain_name=domain,
            domain_name_configuration=Apigatewayv2DomainNameDomainNameConfiguration(
                certificate_arn=settings.certificate_arn or settings.edge_certificate_arn or "",
                endpoint_type="REGIONAL",
                security_policy="TLS_1_2"))
        mapping = Apigatewayv2ApiMapping(self, "custom_domain_mapping", api_id=api.id,
                                         domain_name=attribute(domain_name, "id", switch), stage=STAGE,
                                         depends_on=[self._stage])
        only_if(domain_name, switch)
        only_if(mapping, switch)
        target = (domain_name.domain_name_configuration.target_domain_name if switch is True
                  else attribute(domain_name, "domain_name_configuration[0].target_domain_name", switch))
        return pick(switch, f"wss://{domain}", stage_url), {"custom_domain_target": (
            target, "Point the custom domain at this name (CNAME or Route 53 alias)")}

    # --- Cognito ------------------------------------------------------------------------------

    def _cognito(self):
        identity, settings = self._identity, self._settings
        pool = CognitoUserPool(
            self, "user_pool", name=identity.resource_name("chat-users"), user_pool_tier="PLUS",
            username_attributes=["email"], auto_verified_attributes=["email"],
            mfa_configuration=settings.mfa,
            software_token_mfa_configuration=CognitoUserPoolSoftwareTokenMfaConfiguration(
                enabled=True),
            password_policy=CognitoUserPoolPasswordPolicy(
                minimum_length=12, require_lowercase=True, require_uppercase=True, require_numbers=True,
                require_symbols=True, temporary_password_validity_days=3, password_history_size=5),
            # Threat protection (compromised credentials, adaptive authentication): the Plus tier.
            user_pool_add_ons=CognitoUserPoolUserPoolAddOns(advanced_security_mode="ENFORCED"),
            account_recovery_setting=CognitoUserPoolAccountRecoverySetting(recovery_mechanism=[
                CognitoUserPoolAccountRecoverySettingRecoveryMechanism(name="verified_email", priority=1)]),
            admin_create_user_config=CognitoUserPoolAdminCreateUserConfig(allow_admin_create_user_only=True),
            deletion_protection=pick(identity.protect_stateful, "ACTIVE", "INACTIVE"))
        protect(pool, identity.protect_stateful)
        domain = CognitoUserPoolDomain(self, "domain", domain=f"{identity.resource_name('chat')}-{self._account.id}",
                                       user_pool_id=pool.id)
        identifier = f"{identity.project}-{identity.environment}-chat"
        server = CognitoResourceServer(self, "resource_server", identifier=identifier, name="chat",
                                       user_pool_id=pool.id,
                                       scope=[CognitoResourceServerScope(scope_name=s, scope_description=f"chat: {s}")
                                              for s in settings.scopes])
        scopes = [f"{identifier}/{s}" for s in settings.scopes]
        common = dict(user_pool_id=pool.id, allowed_oauth_flows_user_pool_client=True, enable_token_revocation=True,
                      prevent_user_existence_errors="ENABLED", supported_identity_providers=["COGNITO"],
                      access_token_validity=60, id_token_validity=60, refresh_token_validity=30,
                      token_validity_units=[CognitoUserPoolClientTokenValidityUnits(
                          access_token="minutes", id_token="minutes", refresh_token="days")], depends_on=[server])
        web = CognitoUserPoolClient(
            self, "web_client", name=identity.resource_name("chat-web"), generate_secret=False,
            allowed_oauth_flows=["code"], allowed_oauth_scopes=["openid", "email", *scopes],
            callback_urls=settings.callback_urls, logout_urls=settings.logout_urls,
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_SRP_AUTH"], **common)
        m2m = [CognitoUserPoolClient(
            self, f"m2m_client_{name.replace('-', '_')}", name=identity.resource_name(f"chat-{name}"),
            generate_secret=True,
            allowed_oauth_flows=["client_credentials"], allowed_oauth_scopes=scopes,
            explicit_auth_flows=["ALLOW_REFRESH_TOKEN_AUTH"], **common)
            for name in settings.m2m_clients]
        return pool, web, m2m, domain

    # --- queue and topic ----------------------------------------------------------------------

    def _messaging(self, account: Account) -> tuple[SqsQueue, SqsQueue, SnsTopic]:
        identity, settings = self._identity, self._settings
        dead_letters = SqsQueue(self, "dead_letter_queue", name=identity.resource_name("chat-requests-dlq"),
                                kms_master_key_id=self._key, kms_data_key_reuse_period_seconds=300,
                                message_retention_seconds=14 * 86_400)
        skip(dead_letters, "CKV_LLM_8", "This is the dead-letter queue: its messages wait for an operator "
             "to read and redrive them, so it has no dead-letter queue of its own.")
        queue = SqsQueue(
            self, "request_queue", name=identity.resource_name("chat-requests"), kms_master_key_id=self._key,
            kms_data_key_reuse_period_seconds=300, message_retention_seconds=4 * 86_400,
            # Six times the worker's timeout, as Lambda advises for SQS sources.
            visibility_timeout_seconds=6 * worker_timeout(settings.model_timeout_seconds),
            redrive_policy=json.dumps({"deadLetterTargetArn": dead_letters.arn,
                                       "maxReceiveCount": settings.max_receives}))
        for id_, q in (("request_queue_policy", queue), ("dead_letter_queue_policy", dead_letters)):
            SqsQueuePolicy(self, id_, queue_url=q.url, policy=iam.document(iam.deny_insecure_transport(["sqs:*"],
                                                                                                       [q.arn])))
        topic = SnsTopic(self, "response_topic", name=identity.resource_name("chat-responses"),
                         kms_master_key_id=self._key)
        SnsTopicPolicy(self, "response_topic_policy", arn=topic.arn, policy=iam.document(
            iam.allow(["sns:GetTopicAttributes", "sns:Publish", "sns:Subscribe"], [topic.arn], sid="Account",
                      principals={"AWS": f"arn:{account.partition}:iam::{account.id}:root"}),
            iam.deny_insecure_transport(["sns:Publish"], [topic.arn])))
        return queue, dead_letters, topic

    # --- functions ----------------------------------------------------------------------------

    def _function(self, spec: Function, layer_arn: str) -> LambdaFunction:
        identity, key = self._identity, self._key
        name = identity.resource_name(f"chat-{spec.name}")
        logs = encrypted_log_group(self, f"{spec.name}_log_group", name=f"/aws/lambda/{name}", kms_key_arn=key,
                                   retention_days=identity.log_retention_days,
                                   protect_data=identity.protect_stateful)
        role = iam.service_role(self, f"{spec.name}_role", name=name, service="lambda.amazonaws.com",
                                source_account=self._account.id, statements=[
                                    iam.allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{logs.arn}:*"],
                                              sid="Logs"),
                                    # The environment variables are encrypted with the environment key.
                                    iam.allow(["kms:Decrypt"], [key], sid="DecryptEnvironment", conditions={
                                        "StringEquals": {"kms:ViaService": f"lambda.{identity.region}.amazonaws.com"}}),
                                    iam.allow_unscoped(["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
                                                       sid="Tracing"),
                                    *_vpc_networking(self._account),
                                    *spec.statements])
        package = packaging.build_function(spec.name)
        code = TerraformAsset(self, f"{spec.name}_code", path=str(package.path), type=AssetType.FILE)
        function = LambdaFunction(
            self, spec.name, function_name=name, role=role.arn, runtime=packaging.RUNTIME,
            architectures=[packaging.ARCHITECTURE], handler=packaging.HANDLER, filename=code.path,
            source_code_hash=package.source_code_hash, layers=[layer_arn], timeout=spec.timeout,
            memory_size=spec.memory, reserved_concurrent_executions=spec.reserved_concurrency,
            kms_key_arn=key, tracing_config=LambdaFunctionTracingConfig(mode="Active"),
            environment=LambdaFunctionEnvironment(variables={
                "POWERTOOLS_SERVICE_NAME": f"chat-{spec.name}", "LOG_LEVEL": "INFO", **spec.environment}),
            logging_config=LambdaFunctionLoggingConfig(log_format="JSON", log_group=logs.name),
            vpc_config=LambdaFunctionVpcConfig(subnet_ids=self._network.private_subnet_ids,
                                               security_group_ids=[self._network.security_group_ids["lambda"]]),
            depends_on=[logs, *([role.policy] if role.policy else [])])
        skip(function, "CKV_AWS_116", "Invoked synchronously (API Gateway, an operator's erasure) or by an SQS "
             "event source: a Lambda DLQ applies only to asynchronous invocations; failed requests land in the "
             "queue's DLQ.")
        skip(function, "CKV_AWS_272", "Code is built from this repository by the synth, hashed and pinned by "
             "source_code_hash; no signing profile exists to verify against.")
        if spec.reserved_concurrency is None:
            skip(function, "CKV_AWS_115", "Invoked by API Gateway, whose stage throttling (rate and burst, from "
                 "config) is this function's limit. A reservation that never caps below the stage would be at "
                 "least the burst per function and would take that much from the account's regional pool, of "
                 "which Lambda keeps 100 unreserved, so apply fails in accounts with a low quota; a smaller "
                 "one throttles connections and frames the stage admits.")
        return function

    def _routes(self, api: Apigatewayv2Api, functions: dict[str, LambdaFunction]) -> None:
        identity, settings = self._identity, self._settings
        for name in API_FUNCTIONS:
            LambdaPermission(self, f"{name}_invoke", action="lambda:InvokeFunction",
                             function_name=functions[name].function_name, principal="apigateway.amazonaws.com",
                             source_arn=f"{api.execution_arn}/*")
        authorizer = Apigatewayv2Authorizer(
            self, "jwt_authorizer", api_id=api.id, authorizer_type="REQUEST", name=identity.resource_name("chat-jwt"),
            authorizer_uri=functions["authorizer"].invoke_arn)
        for route_key, name in (("$connect", "connect"), ("$disconnect", "disconnect"), ("$default", "message")):
            # The API requires POST for Lambda integrations of WebSocket APIs (IntegrationMethod).
            integration = Apigatewayv2Integration(self, f"{name}_integration", api_id=api.id,
                                                  integration_type="AWS_PROXY",
                                                  integration_method="POST", integration_uri=functions[name].invoke_arn)
            route = Apigatewayv2Route(
                self, f"{name}_route", api_id=api.id, route_key=route_key, target=f"integrations/{integration.id}",
                **({"authorization_type": "CUSTOM", "authorizer_id": authorizer.id} if name == "connect" else {}))
            if name != "connect":
                skip(route, "CKV_AWS_309", "WebSocket APIs authorize once, on $connect; API Gateway accepts no "
                     "authorizer on $disconnect or $default, which run only on an authorized connection.")
        # The region's API Gateway account settings (the role stages log through) belong to the
        # account's stack now (modules/layers/account.py), deployed first; forgetting them here
        # must not reset them under the account's other environments.
        TerraformStack.of(self).add_override("removed", [{
            "from": "aws_api_gateway_account.realtime_api_logging_account_6F90CBAB", "lifecycle": {"destroy": False}}])
        logs = encrypted_log_group(self, "access_log_group", name=f"/aws/apigateway/{identity.resource_name('chat')}",
                                   kms_key_arn=self._key, retention_days=identity.log_retention_days,
                                   protect_data=identity.protect_stateful)
        access_format = {k: f"$context.{v}" for k, v in (
            ("requestId", "requestId"), ("ip", "identity.sourceIp"), ("requestTime", "requestTime"),
            ("routeKey", "routeKey"), ("status", "status"), ("connectionId", "connectionId"),
            ("eventType", "eventType"), ("integrationError", "integrationErrorMessage"),
            ("authorizerError", "authorizer.error"), ("user", "authorizer.userId"))}
        self._stage = stage = Apigatewayv2Stage(
            self, "stage", api_id=api.id, name=STAGE, auto_deploy=True,
            access_log_settings=Apigatewayv2StageAccessLogSettings(destination_arn=logs.arn,
                                                                   format=json.dumps(access_format)),
            default_route_settings=Apigatewayv2StageDefaultRouteSettings(
                throttling_rate_limit=settings.throttling_rate_limit,
                throttling_burst_limit=settings.throttling_burst_limit,
                detailed_metrics_enabled=True))
        skip(stage, "CKV2_AWS_51", "Clients are browsers and apps that authenticate with a Cognito token at "
             "$connect; they hold no client certificates, and the integrations are Lambda, not HTTP backends.")
