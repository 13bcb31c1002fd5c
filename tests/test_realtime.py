"""RT-1…RT-4: Cognito, the WebSocket API, the functions' infrastructure, queue and topic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.parts import packaging
from modules.engine.app import build_app
from modules.parts.compliance import SKIP_KEY
from modules.config import load_environment
from modules.layers.realtime import API_FUNCTIONS, claim_lease_seconds


@pytest.fixture(params=ENVIRONMENTS)
def realtime(request, stacks) -> Stack:
    return stacks[f"{request.param}-realtime"]


def functions(stack: Stack) -> dict[str, dict]:
    return {f["function_name"].rsplit("-chat-", 1)[1]: f for f in stack.resources("aws_lambda_function").values()}


def role_statements(stack: Stack, function: dict) -> dict[str, dict]:
    role_id = function["role"].split(".")[1]
    (policy,) = [p for p in stack.resources("aws_iam_role_policy").values()
                 if p["role"] == stack.ref("aws_iam_role", role_id)]
    return {s["Sid"]: s for s in json.loads(policy["policy"])["Statement"]}


def test_user_pool_policy_mfa_and_threat_protection(stacks) -> None:
    for env in ENVIRONMENTS:
        config = load_environment(env)
        mfa, protection = config.realtime.mfa, "ACTIVE" if config.protect_stateful else "INACTIVE"
        pool = stacks[f"{env}-realtime"].one("aws_cognito_user_pool")
        assert pool["password_policy"] | {"temporary_password_validity_days": 0, "password_history_size": 0} == {
            "minimum_length": 12, "require_lowercase": True, "require_uppercase": True, "require_numbers": True,
            "require_symbols": True, "temporary_password_validity_days": 0, "password_history_size": 0}
        assert pool["mfa_configuration"] == mfa and pool["software_token_mfa_configuration"] == {"enabled": True}
        assert pool["user_pool_tier"] == "PLUS" and pool["user_pool_add_ons"] == {"advanced_security_mode": "ENFORCED"}
        assert pool["deletion_protection"] == protection


def test_web_client_uses_code_flow_without_secret_and_m2m_clients_use_client_credentials(realtime: Stack) -> None:
    clients = {c["name"].rsplit("-chat-", 1)[1]: c for c in realtime.resources("aws_cognito_user_pool_client").values()}
    web = clients.pop("web")
    assert web["generate_secret"] is False and web["allowed_oauth_flows"] == ["code"]
    assert all(url.startswith("https://") for url in web["callback_urls"])
    assert clients, "at least one machine-to-machine client"
    for client in clients.values():
        assert client["generate_secret"] is True and client["allowed_oauth_flows"] == ["client_credentials"]
        assert all("/" in scope for scope in client["allowed_oauth_scopes"])  # resource-server scopes
    # ids are published, secrets never are
    outputs = json.dumps(realtime.doc["output"])
    assert "client_secret" not in outputs


def test_websocket_routes_and_authorizer(realtime: Stack) -> None:
    api = realtime.one("aws_apigatewayv2_api")
    assert api["protocol_type"] == "WEBSOCKET" and api["route_selection_expression"] == "$request.body.action"
    routes = {r["route_key"]: r for r in realtime.resources("aws_apigatewayv2_route").values()}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    assert routes["$connect"]["authorization_type"] == "CUSTOM"
    authorizer = realtime.one("aws_apigatewayv2_authorizer")
    assert authorizer["authorizer_type"] == "REQUEST"
    assert "identity_sources" not in authorizer  # the token comes from the query string or the subprotocol header
    assert "realtime_authorizer" in authorizer["authorizer_uri"]


def test_stage_logs_access_encrypted_and_throttles(realtime: Stack) -> None:
    env = load_environment(realtime.name.removesuffix("-realtime"))
    stage = realtime.one("aws_apigatewayv2_stage")
    assert stage["default_route_settings"]["throttling_rate_limit"] == env.realtime.throttling_rate_limit
    assert stage["default_route_settings"]["throttling_burst_limit"] == env.realtime.throttling_burst_limit
    group_id = stage["access_log_settings"]["destination_arn"].split(".")[1]
    group = realtime.resources("aws_cloudwatch_log_group")[group_id]
    assert group["kms_key_id"] and group["retention_in_days"] == 365
    assert "$context.connectionId" in stage["access_log_settings"]["format"]


def test_every_function_is_hardened(realtime: Stack) -> None:
    built = functions(realtime)
    assert set(built) == set(packaging.FUNCTIONS)
    groups = realtime.resources("aws_cloudwatch_log_group")
    for name, function in built.items():
        assert (function["runtime"], function["architectures"]) == ("python3.12", ["arm64"]), name
        assert function["tracing_config"] == {"mode": "Active"}
        assert function["kms_key_arn"].startswith("${data.terraform_remote_state")
        assert "network_lambda_security_group" in function["vpc_config"]["security_group_ids"][0]
        assert all("private_subnet" in s for s in function["vpc_config"]["subnet_ids"])
        assert function["filename"].startswith("assets/") and function["source_code_hash"]
        assert len(function["layers"]) == 1
        (group_id,) = [lid for lid, g in groups.items() if g["name"] == f"/aws/lambda/{function['function_name']}"]
        assert groups[group_id]["kms_key_id"] and groups[group_id]["retention_in_days"] == 365
        assert function["logging_config"]["log_group"] == realtime.ref("aws_cloudwatch_log_group", group_id, "name")


def test_only_the_worker_reserves_concurrency_and_its_queue_never_invokes_beyond_it(realtime: Stack) -> None:
    """FACT-5: an SQS mapping above the reservation throttles, and throttled batches count as
    receives. The API-facing functions reserve nothing (the stage's throttling limits them) and
    say why to Checkov; the worker reserves realtime.worker_concurrency and its mapping stops there."""
    env = load_environment(realtime.name.removesuffix("-realtime"))
    built = functions(realtime)
    for name in API_FUNCTIONS:
        assert "reserved_concurrent_executions" not in built[name], name
        assert "CKV_AWS_115" in built[name]["//"][SKIP_KEY], name
    assert built["eraser"]["reserved_concurrent_executions"] == 1  # an operator's erasures, one at a time
    worker = built["worker"]
    assert worker["reserved_concurrent_executions"] == env.realtime.worker_concurrency
    assert "CKV_AWS_115" not in worker.get("//", {}).get(SKIP_KEY, {})
    mapping = realtime.one("aws_lambda_event_source_mapping")
    assert 2 <= mapping["scaling_config"]["maximum_concurrency"] <= worker["reserved_concurrent_executions"]


def test_only_api_gateway_functions_may_be_invoked_by_api_gateway(realtime: Stack) -> None:
    built = functions(realtime)
    invokable = {f["function_name"] for f in realtime.resources("aws_lambda_permission").values()
                 if f["principal"] == "apigateway.amazonaws.com"}
    by_ref = {realtime.ref("aws_lambda_function", lid, "function_name"): name
              for lid, f in realtime.resources("aws_lambda_function").items()
              for name, g in built.items() if g is f}
    assert sorted(by_ref[ref] for ref in invokable) == sorted(API_FUNCTIONS)


def test_lambda_integrations_use_post(realtime: Stack) -> None:
    integrations = realtime.resources("aws_apigatewayv2_integration").values()
    assert len(integrations) == 3
    assert all(i["integration_type"] == "AWS_PROXY" and i["integration_method"] == "POST" for i in integrations)


def test_roles_are_least_privilege_per_function(stacks) -> None:
    stack = stacks["prod-realtime"]
    built = functions(stack)
    base = {"Logs", "DecryptEnvironment", "Tracing", "CreateInterfaces", "ManageInterfaces", "FindInterfaces"}
    expected = {
        "authorizer": set(),
        "connect": {"RecordConnection"},
        "disconnect": {"ForgetConnection"},
        "message": {"Enqueue", "EncryptQueue", "RedisAuth", "DecryptSecrets", "PostToConnections"},
        "eraser": {"FindUserItems", "EraseUserItems", "FindUnindexedHistory", "RedisAuth", "DecryptSecrets"},
        "worker": {"ConsumeRequests", "BackOffRetries", "SetAsideRequests", "QueueEncryption", "History", "RequestClaims",
                   "ForgetGoneConnections", "EnvelopeEncryption", "ModelKeyAndRedisAuth", "DecryptSecrets",
                   "PostToConnections", "Notify", "EncryptNotifications"},
    }
    for name, sids in expected.items():
        statements = role_statements(stack, built[name])
        assert set(statements) == base | sids, name
    worker = role_statements(stack, built["worker"])
    assert worker["EnvelopeEncryption"]["Condition"]["ForAllValues:StringEquals"] == {
        "kms:EncryptionContextKeys": ["userSession"]}
    assert worker["PostToConnections"]["Resource"][0].endswith("/live/POST/@connections/*")
    assert role_statements(stack, built["connect"])["RecordConnection"]["Action"] == ["dynamodb:PutItem"]
    # AWSLambdaVPCAccessExecutionRole (v3, 2024) lists ec2:DescribeSubnets for VPC functions.
    for function in built.values():
        assert role_statements(stack, function)["FindInterfaces"]["Action"] == [
            "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
    eraser = role_statements(stack, built["eraser"])  # deletes and finds through the user index; writes nothing
    assert eraser["FindUserItems"]["Action"] == ["dynamodb:Query"]
    assert all(r.endswith("/index/user") for r in eraser["FindUserItems"]["Resource"])
    assert eraser["EraseUserItems"]["Action"] == ["dynamodb:DeleteItem"]
    assert len(eraser["EraseUserItems"]["Resource"]) == 2
    claims = worker["RequestClaims"]
    assert claims["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["claim#*"]}}
    assert worker["SetAsideRequests"]["Resource"][0].startswith("${aws_sqs_queue.")
    assert "dead_letter_queue" in worker["SetAsideRequests"]["Resource"][0]
    # A failed record's retry is brought forward (backoff) on the request queue, and nowhere else.
    assert worker["BackOffRetries"]["Action"] == ["sqs:ChangeMessageVisibility"]
    assert [r.split(".")[1] for r in worker["BackOffRetries"]["Resource"]] == ["realtime_request_queue_B276B451"]
    assert not any("sqs:ChangeMessageVisibility" in s["Action"] for name, function in built.items()
                   if name != "worker" for s in role_statements(stack, function).values())


def test_queue_redrives_to_a_dead_letter_queue_and_the_worker_reports_partial_failures(realtime: Stack) -> None:
    env = load_environment(realtime.name.removesuffix("-realtime"))
    queues = {q["name"].rsplit("-", 1)[1]: q for q in realtime.resources("aws_sqs_queue").values()}
    requests, dead = queues["requests"], queues["dlq"]
    redrive = json.loads(requests["redrive_policy"])
    assert redrive["maxReceiveCount"] == env.realtime.max_receives and "dead_letter_queue" in redrive["deadLetterTargetArn"]
    assert redrive["maxReceiveCount"] >= 5  # Lambda's guidance: throttled batches count as receives
    assert requests["kms_master_key_id"] and dead["kms_master_key_id"]
    worker = functions(realtime)["worker"]
    assert requests["visibility_timeout_seconds"] >= 6 * worker["timeout"]  # Lambda's advice for SQS sources
    assert worker["timeout"] >= 2 * env.realtime.model_timeout_seconds  # a batch's records run one by one
    mapping = realtime.one("aws_lambda_event_source_mapping")
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    for policy in realtime.resources("aws_sqs_queue_policy").values():
        (deny,) = json.loads(policy["policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_topic_is_encrypted_and_tls_only(realtime: Stack) -> None:
    assert realtime.one("aws_sns_topic")["kms_master_key_id"]
    statements = json.loads(realtime.one("aws_sns_topic_policy")["policy"])["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)


def test_function_environment_matches_what_the_code_reads(realtime: Stack) -> None:
    built = functions(realtime)
    env = {name: set(f["environment"]["variables"]) for name, f in built.items()}
    assert {"USER_POOL_ID", "ALLOWED_CLIENT_IDS", "TOKEN_USE"} <= env["authorizer"]
    assert {"CONNECTIONS_TABLE", "CONNECTION_TTL_SECONDS"} <= env["connect"]
    assert {"REQUEST_QUEUE_URL", "WEBSOCKET_ENDPOINT", "ALLOWED_MODELS", "MAX_FRAME_BYTES", "REDIS_HOST",
            "REDIS_AUTH_SECRET_ARN"} <= env["message"]
    assert {"HISTORY_TABLE", "KMS_KEY_ARN", "MODEL_ENDPOINT", "MODEL_API_KEY_SECRET_ARN", "RESPONSE_TOPIC_ARN",
            "WEBSOCKET_ENDPOINT", "CACHE_TTL_SECONDS", "DEAD_LETTER_QUEUE_URL", "CLAIM_LEASE_SECONDS", "REQUEST_QUEUE_URL"} <= env["worker"]
    worker = built["worker"]
    configured = load_environment(realtime.name.removesuffix("-realtime")).realtime
    assert worker["environment"]["variables"]["MODEL_MAX_TOKENS"] == str(configured.max_output_tokens)
    # A claim outlives any worker run: only a dead worker's claim is ever taken over.
    assert int(worker["environment"]["variables"]["CLAIM_LEASE_SECONDS"]) > worker["timeout"]
    for variables in (f["environment"]["variables"] for f in built.values()):
        assert not any(word in name for name in variables for word in ("PASSWORD", "TOKEN=", "SECRET_VALUE"))
    assert built["worker"]["environment"]["variables"]["MODEL_ENDPOINT"].startswith("https://")


def test_custom_domain_where_configured(stacks) -> None:
    prod, dev = stacks["prod-realtime"], stacks["dev-realtime"]
    domain = prod.one("aws_apigatewayv2_domain_name")
    assert domain["domain_name"] == "ws.example.com"
    assert domain["domain_name_configuration"]["endpoint_type"] == "REGIONAL"
    assert domain["domain_name_configuration"]["security_policy"] == "TLS_1_2"
    assert prod.one("aws_apigatewayv2_api_mapping")["stage"] == "live"
    assert prod.doc["output"]["websocket_url"]["value"] == "wss://ws.example.com"
    assert "custom_domain_target" in prod.doc["output"]
    assert not dev.resources("aws_apigatewayv2_domain_name")
    assert dev.doc["output"]["websocket_url"]["value"].endswith(".amazonaws.com/live")


def test_the_api_gateway_account_settings_are_left_to_the_account(realtime: Stack) -> None:
    """The region's API Gateway logging role is the account stack's (tests/test_account.py); the
    environment forgets its former setting without resetting it under its neighbours."""
    assert not realtime.resources("aws_api_gateway_account")
    assert not [r for r in realtime.resources("aws_iam_role").values() if r["name"].endswith("-apigw-logs")]
    assert "depends_on" not in realtime.one("aws_apigatewayv2_stage")
    assert realtime.doc["removed"] == [{"from": "aws_api_gateway_account.realtime_api_logging_account_6F90CBAB",
                                        "lifecycle": {"destroy": False}}]


def test_the_authorizers_error_alarm_watches_only_real_failures(stacks) -> None:
    """FACT-6: the authorizer returns a Deny for a refused token (tests/test_functions.py proves
    it never raises for one), so the Errors metric its alarm watches counts real failures only."""
    for env in ENVIRONMENTS:
        (alarm,) = [a for a in stacks[f"{env}-observability"].resources("aws_cloudwatch_metric_alarm").values()
                    if a["alarm_name"].endswith("lambda-errors-authorizer")]
        assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/Lambda", "Errors", "Sum")
        assert "realtime_authorizer" in alarm["dimensions"]["FunctionName"]  # the realtime stack's output
