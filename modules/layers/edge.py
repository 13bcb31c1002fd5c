"""Edge layer: regional WAFv2 web ACL in front of the internet-facing ALB."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

from cdktn import Fn, Token
from constructs import Construct
from cdktn_provider_aws.lb import Lb, LbAccessLogs
from cdktn_provider_aws.lb_listener import (
    LbListener,
    LbListenerDefaultAction,
    LbListenerDefaultActionRedirect,
)
from cdktn_provider_aws.lb_target_group import LbTargetGroup, LbTargetGroupHealthCheck
from cdktn_provider_aws.wafv2_ip_set import Wafv2IpSet
from cdktn_provider_aws.wafv2_web_acl import (
    Wafv2WebAcl,
    Wafv2WebAclDefaultAction,
    Wafv2WebAclDefaultActionAllow,
    Wafv2WebAclRule,
    Wafv2WebAclRuleAction,
    Wafv2WebAclRuleActionAllow,
    Wafv2WebAclRuleActionBlock,
    Wafv2WebAclRuleActionCount,
    Wafv2WebAclRuleOverrideAction,
    Wafv2WebAclRuleOverrideActionCount,
    Wafv2WebAclRuleOverrideActionNone,
    Wafv2WebAclRuleRuleLabel,
    Wafv2WebAclRuleVisibilityConfig,
    Wafv2WebAclVisibilityConfig,
)
from cdktn_provider_aws.wafv2_web_acl_association import Wafv2WebAclAssociation
from cdktn_provider_aws.wafv2_web_acl_logging_configuration import (
    Wafv2WebAclLoggingConfiguration,
    Wafv2WebAclLoggingConfigurationRedactedFields,
    Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader,
)

from modules.parts.compliance import skip
from modules.config import models
from modules.config.settings import Identity
from modules.layers.foundation import FoundationOutputs
from modules.layers.network import NetworkOutputs, Port
from modules.parts.outputs import publish
from modules.parts.storage import encrypted_log_group
from modules.parts.switch import attribute, attribute_or, built, only_if

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
# LiteLLM's /health calls every model; liveliness only says the proxy is up.
HEALTH_CHECK_PATH = "/health/liveliness"
# Managed rule groups in priority order (1..3); rules 4.. follow.
MANAGED_RULE_GROUPS = ("AWSManagedRulesAmazonIpReputationList", "AWSManagedRulesCommonRuleSet",
                       "AWSManagedRulesKnownBadInputsRuleSet")
# Prompts are large and contain code: a coding assistant's everyday request has `<script>`,
# `../../etc/passwd` in a sample or `http://169.254.169.254` in a doc. These common-rule-set
# body rules therefore only count (and label); the rule "BodyRules-OutsideApi" blocks on their
# labels everywhere but the OpenAI-compatible API paths. SizeRestrictions_BODY (8 KB) always
# counts: the body-size rule enforces a limit suited to prompts instead.
PROMPT_BODY_RULES = ("CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY", "EC2MetaDataSSRF_BODY")
COUNTED_MANAGED_RULES = {"AWSManagedRulesCommonRuleSet": ("SizeRestrictions_BODY", *PROMPT_BODY_RULES)}
CORE_RULE_SET_LABEL = "awswaf:managed:aws:core-rule-set:"
# LiteLLM's OpenAI-compatible (and Anthropic-compatible) inference paths.
API_PATH_PREFIXES = ("/v1/", "/chat/completions", "/completions", "/embeddings", "/responses",
                     "/messages", "/openai/deployments/")
# Headers that carry a key: LiteLLM reads x-litellm-api-key before Authorization, and api-key
# (Azure style) too. WAF logs keep none of them.
REDACTED_HEADERS = ("authorization", "x-litellm-api-key", "api-key")
API_PATH_LABEL = "platform:api-path"


@dataclass(frozen=True)
class WafChoice:
    """The ALB's web ACL: created here (`create`, which a module variable may turn off) or an
    existing one attached by `web_acl_arn` (then its logging is its owner's)."""
    create: bool | Any = True
    web_acl_arn: str = ""

    def __post_init__(self) -> None:
        if self.create is False and not self.web_acl_arn:
            raise ValueError("the ALB needs a web ACL: create one or give web_acl_arn")


@dataclass(frozen=True)
class EdgeOutputs:
    alb_arn: str
    alb_arn_suffix: str
    alb_dns_name: str
    alb_zone_id: str
    target_group_arn: str
    target_group_arn_suffix: str
    web_acl_arn: str
    web_acl_name: str


def greater_than_pattern(limit: int) -> str:
    """A regex matching exactly the decimal integers greater than `limit`, leading zeros or not.

    WAF can inspect only the first 8 KB of an ALB request body, so the body-size rule reads
    the Content-Length header as a number instead. Anchored at both ends and with `0*` in
    front, so `000100000000` (100 MB) counts as 100000000, not as a 12-digit string that no
    alternative expects; optional spaces or tabs around the value (HTTP's OWS) count too. WAF's
    regex engine refuses capturing groups (the group is `(?:…)`) and patterns over 200
    characters.
    """
    digits = str(limit)
    options = [rf"[1-9]\d{{{len(digits)},}}"]  # more significant digits than the limit
    for i, digit in enumerate(digits):
        if digit != "9":
            rest = len(digits) - i - 1
            options.append(digits[:i] + f"[{int(digit) + 1}-9]" + (rf"\d{{{rest}}}" if rest else ""))
    return r"^[ \t]*0*(?:" + "|".join(options) + r")[ \t]*$"


class Edge(Construct):
    """WAF (managed rules, rate limit, body size, optional geo and trusted IPs) and the public ALB."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: models.Edge, network: NetworkOutputs,
                 foundation: FoundationOutputs, waf: WafChoice = WafChoice()) -> None:
        super().__init__(scope, id)
        self._identity, self._settings, self._create_waf = identity, settings, waf.create
        self._nat_public_ips = network.nat_public_ips
        self.alb = Lb(
            self, "alb", name=identity.resource_name("alb"), internal=False, load_balancer_type="application",
            security_groups=[network.security_group_ids["alb"]], subnets=network.public_subnet_ids,
            drop_invalid_header_fields=True, idle_timeout=settings.idle_timeout_seconds,
            enable_deletion_protection=identity.protect_stateful, desync_mitigation_mode="defensive",
            access_logs=LbAccessLogs(bucket=foundation.alb_log_bucket, prefix="public-alb", enabled=True))
        if not identity.protect_stateful:
            skip(self.alb, "CKV_AWS_150", "Disposable environment (protect_stateful = false): the ALB is "
                 "rebuilt with the environment, so deletion protection would only block teardown.")

        skip(self.alb, "CKV2_AWS_76", "Log4j (Log4JRCE) is blocked by the KnownBadInputs group; this check also "
             "demands the anonymous-IP group, whose hosting-provider list would block CI runners and cloud "
             "dev boxes, ordinary clients of this API.")

        self.target_group = LbTargetGroup(
            self, "gateway_target_group", name=identity.resource_name("gateway"), target_type="ip",
            port=Port.GATEWAY, protocol="HTTP", vpc_id=network.vpc_id,
            # A leaving task (deploy, scale-in, the rotation redeploy) keeps its in-flight requests
            # for as long as a model call may take; ECS sends SIGTERM only once draining ends.
            deregistration_delay=str(settings.request_timeout_seconds),
            health_check=LbTargetGroupHealthCheck(
                enabled=True, path=HEALTH_CHECK_PATH, protocol="HTTP", port="traffic-port", interval=30,
                timeout=5, healthy_threshold=2, unhealthy_threshold=3, matcher="200"))
        LbListener(self, "https_listener", load_balancer_arn=self.alb.arn, port=Port.HTTPS, protocol="HTTPS",
                   ssl_policy=TLS_POLICY, certificate_arn=settings.certificate_arn,
                   default_action=[LbListenerDefaultAction(type="forward", target_group_arn=self.target_group.arn)])
        LbListener(self, "http_redirect_listener", load_balancer_arn=self.alb.arn, port=Port.HTTP, protocol="HTTP",
                   default_action=[LbListenerDefaultAction(type="redirect", redirect=LbListenerDefaultActionRedirect(
                       port=str(Port.HTTPS), protocol="HTTPS", status_code="HTTP_301"))])

        acl_arn, acl_name = waf.web_acl_arn, Token.as_string(Fn.element(Fn.split("/", waf.web_acl_arn), 2))
        if built(waf.create):
            self.web_acl = self._web_acl()
            acl_arn = attribute_or(self.web_acl, "arn", waf.create, acl_arn)
            acl_name = attribute_or(self.web_acl, "name", waf.create, acl_name)
            self._logging(foundation)
        Wafv2WebAclAssociation(self, "web_acl_association", resource_arn=self.alb.arn, web_acl_arn=acl_arn)

        self.outputs = EdgeOutputs(
            alb_arn=self.alb.arn, alb_arn_suffix=self.alb.arn_suffix, alb_dns_name=self.alb.dns_name,
            alb_zone_id=self.alb.zone_id, target_group_arn=self.target_group.arn,
            target_group_arn_suffix=self.target_group.arn_suffix, web_acl_arn=acl_arn, web_acl_name=acl_name)
        publish(self, {
            "alb_dns_name": (self.alb.dns_name,
                             "DNS name of the public ALB: point the API's domain at it (CNAME/alias)"),
            "alb_zone_id": (self.alb.zone_id, "Hosted zone id of the public ALB, for a Route 53 alias record"),
            "alb_url": (f"https://{self.alb.dns_name}", "HTTPS URL of the ALB (the certificate names your domain)"),
            "web_acl_arn": (acl_arn, "WAF web ACL in front of the ALB"),
        })

    def _web_acl(self) -> Wafv2WebAcl:
        identity, settings = self._identity, self._settings
        name = identity.resource_name("waf")
        rules: list[Wafv2WebAclRule] = []

        def visibility(metric: str) -> Wafv2WebAclRuleVisibilityConfig:
            return Wafv2WebAclRuleVisibilityConfig(cloudwatch_metrics_enabled=True, metric_name=f"{name}-{metric}",
                                                   sampled_requests_enabled=True)

        def rule(rule_name: str, priority: int, statement: dict[str, Any], action: str,
                 label: str | None = None) -> None:
            rule_action = {"allow": Wafv2WebAclRuleAction(allow=Wafv2WebAclRuleActionAllow()),
                           "block": Wafv2WebAclRuleAction(block=Wafv2WebAclRuleActionBlock()),
                           "count": Wafv2WebAclRuleAction(count=Wafv2WebAclRuleActionCount())}[action]
            rules.append(Wafv2WebAclRule(name=rule_name, priority=priority, statement=statement,
                                         action=rule_action, visibility_config=visibility(rule_name),
                                         rule_label=[Wafv2WebAclRuleRuleLabel(name=label)] if label else None))

        if settings.trusted_cidrs:
            trusted = Wafv2IpSet(self, "trusted_ip_set", name=identity.resource_name("trusted"), scope="REGIONAL",
                                 ip_address_version="IPV4", addresses=[str(c) for c in settings.trusted_cidrs])
            only_if(trusted, self._create_waf)
            rule("TrustedIps-Allow", 0, {"ip_set_reference_statement": {
                "arn": attribute(trusted, "arn", self._create_waf)}}, "allow")

        rules += _managed_rule_groups(settings.managed_rules_action, visibility)

        rule("RateLimit-PerIP", 4, self._rate_limit(), "block")
        if settings.allowed_countries:
            rule("GeoBlock", 5, {"not_statement": {"statement": {"geo_match_statement": {
                "country_codes": list(settings.allowed_countries)}}}}, "block")
        rule("BodySize-Limit", 6, {"regex_match_statement": {
            "regex_string": greater_than_pattern(settings.max_body_bytes),
            "field_to_match": {"single_header": {"name": "content-length"}},
            "text_transformation": [{"priority": 0, "type": "NONE"}]}}, "block")
        # A chunked body has no Content-Length for the size rule to read: refuse it (OpenAI
        # clients send Content-Length; LiteLLM's own body limit is enterprise-only).
        rule("ChunkedBody-Block", 9, {"byte_match_statement": {
            "search_string": "chunked", "positional_constraint": "CONTAINS",
            "field_to_match": {"single_header": {"name": "transfer-encoding"}},
            "text_transformation": [{"priority": 0, "type": "LOWERCASE"}]}}, "block")
        # Nesting stays two levels deep: the API path is a label, not a nested match.
        rule("ApiPath-Label", 7, _api_path(), "count", label=API_PATH_LABEL)
        rule("BodyRules-OutsideApi", 8, _body_rules_outside_api(), settings.managed_rules_action)

        acl = Wafv2WebAcl(
            self, "web_acl", name=name, scope="REGIONAL", description=f"Front door of {identity.resource_name('alb')}",
            default_action=Wafv2WebAclDefaultAction(allow=Wafv2WebAclDefaultActionAllow()), rule=rules,
            visibility_config=Wafv2WebAclVisibilityConfig(cloudwatch_metrics_enabled=True, metric_name=name,
                                                          sampled_requests_enabled=True))
        only_if(acl, self._create_waf)
        if settings.managed_rules_action == "count":
            skip(acl, "CKV_AWS_192", "managed_rules_action = count: new managed rules are tuned in count "
                 "mode before they block (WAF operations runbook); production sets block.")
        return acl

    def _rate_limit(self) -> dict[str, Any]:
        """Per client IP, except the platform's own: the chat worker calls the public URL from
        the NAT gateways' addresses, so its requests would all count as one client's. Those
        addresses are left out of the rate limit only (the managed and size rules still apply)."""
        egress = Wafv2IpSet(self, "platform_egress_ip_set", name=self._identity.resource_name("platform-egress"),
                            scope="REGIONAL", ip_address_version="IPV4",
                            description="NAT gateway addresses: the platform's own worker, exempt from the rate limit",
                            addresses=host_ranges(self._nat_public_ips))
        only_if(egress, self._create_waf)
        return {"rate_based_statement": {
            "limit": self._settings.rate_limit_per_5_minutes, "aggregate_key_type": "IP", "evaluation_window_sec": 300,
            "scope_down_statement": {"not_statement": {"statement": {
                "ip_set_reference_statement": {"arn": attribute(egress, "arn", self._create_waf)}}}}}}

    def _logging(self, foundation: FoundationOutputs) -> None:
        identity, settings = self._identity, self._settings
        if settings.waf_log_destination == "s3":
            destination = foundation.waf_log_bucket_arn
        else:
            # WAF delivers only to log groups named aws-waf-logs-*.
            group = encrypted_log_group(self, "waf_log_group", name=f"aws-waf-logs-{identity.resource_name('waf')}",
                                        kms_key_arn=foundation.kms_key_arn,
                                        retention_days=identity.log_retention_days,
                                        protect_data=identity.protect_stateful)
            only_if(group, self._create_waf)
            destination = attribute(group, "arn", self._create_waf)
        logging = Wafv2WebAclLoggingConfiguration(
            self, "waf_logging", resource_arn=attribute(self.web_acl, "arn", self._create_waf),
            log_destination_configs=[destination],
            redacted_fields=[Wafv2WebAclLoggingConfigurationRedactedFields(
                single_header=Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(name=header))
                for header in REDACTED_HEADERS])
        only_if(logging, self._create_waf)


def _api_path() -> dict[str, Any]:
    """Matches the inference API paths, decoded and normalised so `/v1/../key/generate` is not one."""
    return {"or_statement": {"statement": [{"byte_match_statement": {
        "search_string": prefix, "positional_constraint": "STARTS_WITH", "field_to_match": {"uri_path": {}},
        "text_transformation": [{"priority": 0, "type": "URL_DECODE"}, {"priority": 1, "type": "NORMALIZE_PATH"}]}}
        for prefix in API_PATH_PREFIXES]}}


def _body_rules_outside_api() -> dict[str, Any]:
    """Matches requests a prompt body rule labelled, unless the API-path rule labelled them too."""
    def label(key: str) -> dict[str, Any]:
        return {"label_match_statement": {"scope": "LABEL", "key": key}}
    return {"and_statement": {"statement": [
        {"or_statement": {"statement": [label(CORE_RULE_SET_LABEL + name.replace("_BODY", "_Body"))
                                        for name in PROMPT_BODY_RULES]}},
        {"not_statement": {"statement": label(API_PATH_LABEL)}}]}}


def _managed_rule_groups(action: str, visibility: Callable[[str], Wafv2WebAclRuleVisibilityConfig]
                         ) -> list[Wafv2WebAclRule]:
    """AWS's managed rule groups, first after the trusted IPs; in count mode while being tuned."""
    override = (Wafv2WebAclRuleOverrideAction(count=Wafv2WebAclRuleOverrideActionCount()) if action == "count"
                else Wafv2WebAclRuleOverrideAction(none=Wafv2WebAclRuleOverrideActionNone()))
    rules = []
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
        statement: dict[str, Any] = {"name": group, "vendor_name": "AWS"}
        counted = COUNTED_MANAGED_RULES.get(group, ())
        if counted:
            statement["rule_action_override"] = [{"name": r, "action_to_use": {"count": {}}} for r in counted]
        rules.append(Wafv2WebAclRule(name=group, priority=priority, override_action=override,
                                     statement={"managed_rule_group_statement": statement},
                                     visibility_config=visibility(group)))
    return rules


def host_ranges(ips: list[str]) -> list[str]:
    """Each address as a /32: the stacks' addresses one by one, a module's list as Terraform formats it."""
    if Token.is_unresolved(ips):
        return Token.as_list(Fn.formatlist("%s/32", [ips]))
    return [f"{ip}/32" for ip in ips]
