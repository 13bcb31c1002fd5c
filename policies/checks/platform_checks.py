"""The platform's own Checkov policies: rules of its specification that Checkov lacks.

Loaded by the compliance gate with `--external-checks-dir policies/checks`. Ids are
CKV_LLM_<n>; skips for them are declared in code like any other (modules.parts.compliance.skip).
"""

from __future__ import annotations

import json
import re
from typing import Any

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

# Mirrors modules.parts.storage.STATEFUL_TYPES (checks run inside Checkov, without the app's imports);
# tests/test_compliance.py keeps the two equal.
STATEFUL = ["aws_s3_bucket", "aws_kms_key", "aws_kms_replica_key", "aws_db_instance", "aws_dynamodb_table",
            "aws_elasticache_replication_group", "aws_secretsmanager_secret", "aws_cognito_user_pool",
            "aws_backup_vault"]
SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|MASTER_KEY|API_KEY|DATABASE_URL|AUTH)", re.I)


def value(conf: dict[str, Any], *path: str) -> Any:
    """Follow `path` through Checkov's parsed resource, unwrapping its one-element lists."""
    current: Any = conf
    for key in path:
        while isinstance(current, list) and len(current) == 1:
            current = current[0]
        if not isinstance(current, dict) or key not in current:
            return None
        current = current[key]
    while isinstance(current, list) and len(current) == 1:
        current = current[0]
    return current


def as_json(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return raw


def as_list(raw: Any) -> list[Any]:
    if raw is None:
        return []
    return raw if isinstance(raw, list) else [raw]


class Check(BaseResourceCheck):
    """A check defined by its id, name, resource types and one predicate over the resource."""

    def __init__(self, id: str, name: str, resources: list[str], category: CheckCategories) -> None:
        super().__init__(name=name, id=id, categories=[category], supported_resources=resources)

    def holds(self, conf: dict[str, Any]) -> bool:
        raise NotImplementedError

    def scan_resource_conf(self, conf: dict[str, Any]) -> CheckResult:
        return CheckResult.PASSED if self.holds(conf) else CheckResult.FAILED


class StatefulPreventDestroy(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_1", "Stateful resource is protected by lifecycle.prevent_destroy",
                         STATEFUL, CheckCategories.BACKUP_AND_RECOVERY)

    def holds(self, conf: dict[str, Any]) -> bool:
        return value(conf, "lifecycle", "prevent_destroy") in (True, "true")


def denies_insecure_transport(conf: dict[str, Any]) -> bool:
    policy = as_json(value(conf, "policy")) or {}
    return any(s.get("Effect") == "Deny"
               and str(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")).lower() == "false"
               for s in as_list(policy.get("Statement")))


class S3DeniesInsecureTransport(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_2", "S3 bucket policy denies requests without TLS",
                         ["aws_s3_bucket_policy"], CheckCategories.ENCRYPTION)

    def holds(self, conf: dict[str, Any]) -> bool:
        return denies_insecure_transport(conf)


# Headers that carry a LiteLLM key: Authorization, and x-litellm-api-key which LiteLLM reads first.
KEY_HEADERS = ("authorization", "x-litellm-api-key", "api-key")


class WafRedactsAuthorization(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_3", "WAF logging redacts every header that carries an API key",
                         ["aws_wafv2_web_acl_logging_configuration"], CheckCategories.LOGGING)

    def holds(self, conf: dict[str, Any]) -> bool:
        redacted = {str(value(f, "single_header", "name")).lower() for f in as_list(value(conf, "redacted_fields"))}
        return set(KEY_HEADERS) <= redacted


class AlbListenerTls13(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_4", "HTTPS listener uses a TLS 1.3 security policy",
                         ["aws_lb_listener", "aws_alb_listener"], CheckCategories.ENCRYPTION)

    def holds(self, conf: dict[str, Any]) -> bool:
        if value(conf, "protocol") != "HTTPS":
            return True
        return str(value(conf, "ssl_policy")).startswith("ELBSecurityPolicy-TLS13-")


class NoSecretsInContainerEnvironment(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_5", "Container environment holds no secret-looking variable (use secrets)",
                         ["aws_ecs_task_definition"], CheckCategories.SECRETS)

    def holds(self, conf: dict[str, Any]) -> bool:
        containers = as_json(value(conf, "container_definitions")) or []
        return not any(SECRET_NAME.search(str(var.get("name", "")))
                       for container in as_list(containers) for var in container.get("environment") or [])


class ContainerRootReadOnly(Check):
    """Checkov's own CKV_AWS_336 cannot read cdktn's JSON-encoded container definitions."""

    def __init__(self) -> None:
        super().__init__("CKV_LLM_6", "ECS containers run unprivileged with a read-only root filesystem",
                         ["aws_ecs_task_definition"], CheckCategories.GENERAL_SECURITY)

    def holds(self, conf: dict[str, Any]) -> bool:
        containers = as_list(as_json(value(conf, "container_definitions")))
        return bool(containers) and all(c.get("readonlyRootFilesystem") is True and not c.get("privileged")
                                        for c in containers)


class QueueAndTopicDenyInsecureTransport(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_7", "SQS queue and SNS topic policies deny requests without TLS",
                         ["aws_sqs_queue_policy", "aws_sns_topic_policy"], CheckCategories.ENCRYPTION)

    def holds(self, conf: dict[str, Any]) -> bool:
        return denies_insecure_transport(conf)


class QueueHasDeadLetterQueue(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_8", "SQS queue redrives failed messages to a dead-letter queue",
                         ["aws_sqs_queue"], CheckCategories.BACKUP_AND_RECOVERY)

    def holds(self, conf: dict[str, Any]) -> bool:
        return "deadLetterTargetArn" in str(value(conf, "redrive_policy") or "")


class CognitoPasswordPolicyAndMfa(Check):
    def __init__(self) -> None:
        super().__init__("CKV_LLM_9", "Cognito user pool requires 12+ character passwords of every class and MFA",
                         ["aws_cognito_user_pool"], CheckCategories.IAM)

    def holds(self, conf: dict[str, Any]) -> bool:
        policy = value(conf, "password_policy") or {}
        classes = all(value(policy, f"require_{c}") in (True, "true")
                      for c in ("lowercase", "uppercase", "numbers", "symbols"))
        length = value(policy, "minimum_length")
        return classes and isinstance(length, (int, float)) and length >= 12 and value(
            conf, "mfa_configuration") in ("ON", "OPTIONAL")


checks = [StatefulPreventDestroy(), S3DeniesInsecureTransport(), WafRedactsAuthorization(), AlbListenerTls13(),
          NoSecretsInContainerEnvironment(), ContainerRootReadOnly(), QueueAndTopicDenyInsecureTransport(),
          QueueHasDeadLetterQueue(), CognitoPasswordPolicyAndMfa()]
