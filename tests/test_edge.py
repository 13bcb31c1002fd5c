"""EDGE-1…EDGE-4: WAF rules and logging, the public ALB, its listeners and target group."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.engine.app import build_app
from modules.config import load_environment
from modules.layers.edge import greater_than_pattern


@pytest.fixture(params=ENVIRONMENTS)
def edge(request, stacks) -> Stack:
    return stacks[f"{request.param}-edge"]


def rules_by_priority(stack: Stack) -> dict[int, dict]:
    return {r["priority"]: r for r in stack.one("aws_wafv2_web_acl")["rule"]}


def test_rules_in_the_specified_priority_order(stacks) -> None:
    rules = rules_by_priority(stacks["prod-edge"])
    assert [(p, r["name"]) for p, r in sorted(rules.items())] == [
        (1, "AWSManagedRulesAmazonIpReputationList"), (2, "AWSManagedRulesCommonRuleSet"),
        (3, "AWSManagedRulesKnownBadInputsRuleSet"), (4, "RateLimit-PerIP"), (6, "BodySize-Limit"),
        (7, "ApiPath-Label"), (8, "BodyRules-OutsideApi"), (9, "ChunkedBody-Block")]
    geo = rules_by_priority(stacks["prod-us-edge"])[5]
    assert geo["name"] == "GeoBlock" and geo["action"] == {"block": {}}
    assert geo["statement"]["not_statement"]["statement"]["geo_match_statement"]["country_codes"] == [
        "US", "CA", "GB", "IE"]


def test_web_acl_defaults_to_allow_with_metrics_and_samples(edge: Stack) -> None:
    acl = edge.one("aws_wafv2_web_acl")
    assert acl["scope"] == "REGIONAL" and acl["default_action"] == {"allow": {}}
    for config in [acl["visibility_config"]] + [r["visibility_config"] for r in acl["rule"]]:
        assert config["cloudwatch_metrics_enabled"] and config["sampled_requests_enabled"]


def test_rate_limit_blocks_2000_per_5_minutes_per_ip(edge: Stack) -> None:
    rate = rules_by_priority(edge)[4]
    assert rate["action"] == {"block": {}}
    statement = dict(rate["statement"]["rate_based_statement"])
    statement.pop("scope_down_statement")  # the platform's own addresses (test below)
    assert statement == {"limit": 2000, "aggregate_key_type": "IP", "evaluation_window_sec": 300}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_managed_rules_block_or_count_as_the_environment_says(stacks, env: str) -> None:
    expected = {"none": {}} if load_environment(env).edge.managed_rules_action == "block" else {"count": {}}
    managed = [r for r in rules_by_priority(stacks[f"{env}-edge"]).values() if "override_action" in r]
    assert len(managed) == 3 and all(r["override_action"] == expected for r in managed), env


def test_common_rule_sets_body_rules_only_count(edge: Stack) -> None:
    common = rules_by_priority(edge)[2]["statement"]["managed_rule_group_statement"]
    assert common["rule_action_override"] == [{"name": name, "action_to_use": {"count": {}}} for name in (
        "SizeRestrictions_BODY", "CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY",
        "EC2MetaDataSSRF_BODY")]


def test_prompt_body_rules_block_outside_the_inference_api_only(stacks) -> None:
    """Code in a prompt (`<script>`, `../../etc/passwd`, `169.254.169.254`) passes on the API
    paths; the same body on any other path is blocked by its core-rule-set label."""
    for env in ENVIRONMENTS:
        action = {load_environment(env).edge.managed_rules_action: {}}
        rules = rules_by_priority(stacks[f"{env}-edge"])
        label_rule, outside = rules[7], rules[8]
        assert label_rule["action"] == {"count": {}} and label_rule["rule_label"] == [{"name": "platform:api-path"}]
        prefixes = [s["byte_match_statement"]["search_string"]
                    for s in label_rule["statement"]["or_statement"]["statement"]]
        assert {"/v1/", "/chat/completions", "/embeddings"} <= set(prefixes)
        for match in label_rule["statement"]["or_statement"]["statement"]:
            assert match["byte_match_statement"]["positional_constraint"] == "STARTS_WITH"
            assert [t["type"] for t in match["byte_match_statement"]["text_transformation"]] == [
                "URL_DECODE", "NORMALIZE_PATH"]
        labelled, not_api = outside["statement"]["and_statement"]["statement"]
        assert [s["label_match_statement"]["key"] for s in labelled["or_statement"]["statement"]] == [
            f"awswaf:managed:aws:core-rule-set:{name}_Body"
            for name in ("CrossSiteScripting", "GenericLFI", "GenericRFI", "EC2MetaDataSSRF")]
        assert not_api == {"not_statement": {"statement": {"label_match_statement": {
            "scope": "LABEL", "key": "platform:api-path"}}}}
        assert outside["action"] == action, env  # dev tunes in count mode like the managed rules


def test_chunked_bodies_are_refused_since_their_size_is_unknown(edge: Stack) -> None:
    rule = rules_by_priority(edge)[9]
    match = rule["statement"]["byte_match_statement"]
    assert rule["action"] == {"block": {}}
    assert match["field_to_match"] == {"single_header": {"name": "transfer-encoding"}}
    assert (match["search_string"], match["positional_constraint"]) == ("chunked", "CONTAINS")


def test_body_size_rule_blocks_on_content_length_above_the_prompt_limit(edge: Stack) -> None:
    """The synthesized pattern, run as WAF would run it (Python's `re` stands in for PCRE: the
    pattern uses only classes, counted repeats, alternation and anchors, which both read alike)."""
    rule = rules_by_priority(edge)[6]
    statement = rule["statement"]["regex_match_statement"]
    assert rule["action"] == {"block": {}}
    assert statement["field_to_match"] == {"single_header": {"name": "content-length"}}
    limit = load_environment(edge.name.removesuffix("-edge")).edge.max_body_bytes
    pattern = re.compile(statement["regex_string"])
    blocked = ["000100000000", "100000001", "0100000001", str(limit + 1), f"000{limit + 1}", "9" * 12,
               f" {limit + 1}", f"{limit + 1}\t"]
    allowed = ["0", "1", "42", "9000", "0009000", str(limit), f"000{limit}", f"0{limit - 1}", "0" * 20, ""]
    assert [v for v in blocked if not pattern.search(v)] == []
    assert [v for v in allowed if pattern.search(v)] == []


def _waf_compatible(pattern: str) -> None:
    """WAF refuses capturing subexpressions and regex patterns over 200 characters."""
    assert re.compile(pattern).groups == 0, pattern
    assert len(pattern) <= 200, (len(pattern), pattern)


@pytest.mark.parametrize("limit", [8192, 65536, 999_999, 1_000_000, 4_000_000, 10_485_760, 88_888_888, 100_000_000])
def test_greater_than_pattern_matches_exactly_the_larger_numbers(limit: int) -> None:
    pattern = re.compile(greater_than_pattern(limit))
    _waf_compatible(pattern.pattern)
    rng = random.Random(limit)
    samples = {0, 1, limit - 1, limit, limit + 1, limit * 10, 10 ** len(str(limit)) - 1}
    samples |= {rng.randrange(0, limit * 3) for _ in range(2000)}
    for n in samples:
        for text in (str(n), f"0{n}", f"0000{n}"):  # leading zeros change nothing
            assert bool(pattern.search(text)) == (n > limit), text


def test_greater_than_pattern_fits_waf_for_every_allowed_limit() -> None:
    """The longest patterns come from limits with the most digits other than 9."""
    from modules.config.models import Edge
    bounds = Edge.model_fields["max_body_bytes"].metadata
    low = next(b.ge for b in bounds if hasattr(b, "ge"))
    high = next(b.le for b in bounds if hasattr(b, "le"))
    worst = [int("1" + "0" * (n - 1)) for n in range(len(str(low)), len(str(high)) + 1)]
    worst += [int("8" * n) for n in range(len(str(low)), len(str(high)))]
    for limit in [low, high, *(w for w in worst if low <= w <= high)]:
        _waf_compatible(greater_than_pattern(limit))


def test_trusted_ips_are_allowed_first(tmp_path: Path) -> None:
    env = load_environment("prod")
    env = env.model_copy(update={"edge": env.edge.model_copy(update={"trusted_cidrs": ["203.0.113.0/24"]})})
    build_app([env], outdir=str(tmp_path)).synth()
    stack = Stack("prod-edge", json.loads((tmp_path / "stacks" / "prod-edge" / "cdk.tf.json").read_text()))
    first = rules_by_priority(stack)[0]
    assert first["action"] == {"allow": {}}
    trusted = [s for s in stack.resources("aws_wafv2_ip_set").values() if s["name"].endswith("-trusted")]
    assert [s["addresses"] for s in trusted] == [["203.0.113.0/24"]]


def test_waf_logs_redact_every_key_header_into_an_aws_waf_logs_destination(stacks) -> None:
    for env in ENVIRONMENTS:
        logging = stacks[f"{env}-edge"].one("aws_wafv2_web_acl_logging_configuration")
        assert logging["redacted_fields"] == [{"single_header": {"name": header}}
                                              for header in ("authorization", "x-litellm-api-key", "api-key")]
    # prod writes to the KMS-encrypted aws-waf-logs- bucket of the foundation
    assert "foundation_waf_logs_bucket" in stacks["prod-edge"].one("aws_wafv2_web_acl_logging_configuration")[
        "log_destination_configs"][0]
    dev = stacks["dev-edge"]
    group = dev.one("aws_cloudwatch_log_group")
    assert group["name"].startswith("aws-waf-logs-") and group["kms_key_id"] and group["retention_in_days"] == 365


def test_alb_is_public_hardened_and_logged(edge: Stack) -> None:
    alb = edge.one("aws_lb")
    assert alb["internal"] is False and alb["load_balancer_type"] == "application"
    assert alb["drop_invalid_header_fields"] is True
    assert alb["idle_timeout"] == 300  # long generations stall before the first byte
    assert alb["access_logs"]["enabled"] is True and "foundation_alb_logs_bucket" in alb["access_logs"]["bucket"]
    assert len(alb["subnets"]) >= 2 and all("network_public_subnet" in s for s in alb["subnets"])
    assert edge.one("aws_wafv2_web_acl_association")["resource_arn"].startswith("${aws_lb.")


def test_deletion_protection_in_prod_only(stacks) -> None:
    assert stacks["prod-edge"].one("aws_lb")["enable_deletion_protection"] is True
    assert stacks["dev-edge"].one("aws_lb")["enable_deletion_protection"] is False


def test_https_listener_uses_tls13_and_the_environments_certificate(stacks) -> None:
    listeners = {l["port"]: l for l in stacks["prod-edge"].resources("aws_lb_listener").values()}
    https = listeners[443]
    assert https["protocol"] == "HTTPS" and https["ssl_policy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert https["certificate_arn"] == load_environment("prod").edge.certificate_arn
    assert https["default_action"][0]["type"] == "forward"


def test_http_redirects_to_https_with_301(edge: Stack) -> None:
    http = next(l for l in edge.resources("aws_lb_listener").values() if l["port"] == 80)
    assert http["default_action"] == [{"type": "redirect", "redirect": {
        "port": "443", "protocol": "HTTPS", "status_code": "HTTP_301"}}]


def test_gateway_target_group_health_check(edge: Stack) -> None:
    group = edge.one("aws_lb_target_group")
    assert (group["target_type"], group["port"], group["protocol"]) == ("ip", 4000, "HTTP")
    # leaving tasks keep their in-flight model calls (edge.request_timeout_seconds)
    assert group["deregistration_delay"] == "240"
    check = group["health_check"]
    assert check["path"] == "/health/liveliness"
    assert (check["interval"], check["timeout"], check["healthy_threshold"], check["unhealthy_threshold"],
            check["matcher"]) == (30, 5, 2, 3, "200")


def test_the_platforms_own_nat_addresses_are_exempt_from_the_rate_limit_only(edge: Stack) -> None:
    """The chat worker reaches the public URL through the NAT gateways: its traffic must not
    count as one client's against the per-IP rate limit (issue: the worker was throttled)."""
    [(logical_id, egress)] = [(k, v) for k, v in edge.resources("aws_wafv2_ip_set").items()
                              if v["name"].endswith("-platform-egress")]
    assert egress["scope"] == "REGIONAL" and egress["ip_address_version"] == "IPV4"
    # Every NAT gateway's Elastic IP of the network layer, as a /32.
    assert egress["addresses"] and all(re.fullmatch(r"\$\{[^}]*nat_eip_\d[^}]*public_ip[^}]*\}/32", a)
                                       for a in egress["addresses"]), egress["addresses"]
    rules = rules_by_priority(edge)
    rate = rules[4]["statement"]["rate_based_statement"]
    assert rate["scope_down_statement"] == {"not_statement": {"statement": {"ip_set_reference_statement": {
        "arn": f"${{aws_wafv2_ip_set.{logical_id}.arn}}"}}}}
    assert rules[4]["action"] == {"block": {}}
    # No other rule names the set: managed, size and geo rules still see the worker's requests.
    assert logical_id not in json.dumps([r for p, r in rules.items() if p != 4])
