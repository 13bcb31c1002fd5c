"""NET-1…NET-6 read from the synthesized network stacks."""

from __future__ import annotations

import json
from ipaddress import ip_network

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.config import load_environment
from modules.layers.network import INTERFACE_ENDPOINTS


@pytest.fixture(params=ENVIRONMENTS)
def network(request, stacks) -> Stack:
    return stacks[f"{request.param}-network"]


def test_nat_gateway_per_az_in_prod_one_in_dev(stacks) -> None:
    assert len(stacks["prod-network"].resources("aws_nat_gateway")) == 3
    assert len(stacks["prod-us-network"].resources("aws_nat_gateway")) == 3
    assert len(stacks["dev-network"].resources("aws_nat_gateway")) == 1


def test_each_private_route_table_uses_its_own_zones_nat_in_prod(stacks) -> None:
    routes = stacks["prod-network"].resources("aws_route")
    nats = {r["nat_gateway_id"] for r in routes.values() if "nat_gateway_id" in r}
    assert len(nats) == 3


def test_vpc_has_dns_and_every_subnet_is_inside_it(network: Stack) -> None:
    vpc = network.one("aws_vpc")
    assert vpc["enable_dns_support"] and vpc["enable_dns_hostnames"]
    cidr = ip_network(vpc["cidr_block"])
    subnets = network.resources("aws_subnet").values()
    assert len(subnets) == 3 * len(load_environment(network.name.removesuffix("-network")).network.availability_zones)
    for subnet in subnets:
        assert ip_network(subnet["cidr_block"]).subnet_of(cidr)
        assert subnet["map_public_ip_on_launch"] is False


def test_prod_uses_the_gateway_designs_addressing_inside_a_16_in_all_three_zones(stacks) -> None:
    """The design's two zones keep their subnets; the third continues the same plan."""
    net = stacks["prod-network"]
    assert net.one("aws_vpc")["cidr_block"] == "10.1.0.0/16"
    subnets = {s["cidr_block"]: s["availability_zone"] for s in net.resources("aws_subnet").values()}
    assert subnets == {f"10.1.{tier + zone}.0/24": f"eu-west-2{'abc'[zone - 1]}"
                       for tier in (0, 10, 20) for zone in (1, 2, 3)}


def test_database_tier_has_no_route_to_the_internet(network: Stack) -> None:
    tables = network.resources("aws_route_table")
    database_tables = [lid for lid, t in tables.items() if t["tags"]["Name"].endswith("-database-rt")]
    assert len(database_tables) == 1
    db_ref = network.ref("aws_route_table", database_tables[0])
    assert not [r for r in network.resources("aws_route").values() if r["route_table_id"] == db_ref]
    assert not tables[database_tables[0]].get("route")
    # and the database subnets are associated with exactly that table
    db_subnets = {network.ref("aws_subnet", lid) for lid, s in network.resources("aws_subnet").items()
                  if s["tags"]["Tier"] == "database"}
    associated = {a["subnet_id"] for a in network.resources("aws_route_table_association").values()
                  if a["route_table_id"] == db_ref}
    assert associated == db_subnets


def _ingress_rules(stack: Stack) -> list[dict]:
    rules = list(stack.resources("aws_vpc_security_group_ingress_rule").values())
    for sg in stack.resources("aws_security_group").values():
        rules += sg.get("ingress") or []
    return rules


def test_no_internet_ingress_except_the_public_albs_80_and_443(network: Stack) -> None:
    open_rules = [r for r in _ingress_rules(network) if r.get("cidr_ipv4") == "0.0.0.0/0"
                  or "0.0.0.0/0" in (r.get("cidr_blocks") or [])]
    alb_sg = next(lid for lid, sg in network.resources("aws_security_group").items() if sg["name"].endswith("-alb-sg"))
    assert sorted(r["from_port"] for r in open_rules) == [80, 443]
    assert all(r["security_group_id"] == network.ref("aws_security_group", alb_sg) for r in open_rules)


def test_security_groups_reference_each_other_per_net6(network: Stack) -> None:
    prefix = f"llmlite-{network.name.removesuffix('-network')}-"
    by_ref = {network.ref("aws_security_group", lid): sg["name"].removeprefix(prefix).removesuffix("-sg")
              for lid, sg in network.resources("aws_security_group").items()}
    edges = {(by_ref[r["referenced_security_group_id"]], by_ref[r["security_group_id"]], r["from_port"])
             for r in network.resources("aws_vpc_security_group_ingress_rule").values()
             if "referenced_security_group_id" in r}
    assert edges == {
        ("alb", "gateway", 4000),
        ("gateway", "database", 5432), ("lambda", "database", 5432),
        ("gateway", "redis", 6379), ("lambda", "redis", 6379),
        ("gateway", "llm-alb", 443), ("lambda", "llm-alb", 443),
        ("llm-alb", "gpu", 50051),  # vLLM's API and its /health on the one port
    }
    # every referenced ingress has the matching egress on the source
    egress = {(by_ref[r["security_group_id"]], by_ref[r["referenced_security_group_id"]], r["from_port"])
              for r in network.resources("aws_vpc_security_group_egress_rule").values()
              if "referenced_security_group_id" in r}
    assert egress == edges


def test_default_security_group_is_locked(network: Stack) -> None:
    default = network.one("aws_default_security_group")
    assert default["ingress"] == [] and default["egress"] == []


def test_database_nacl_admits_only_data_ports_from_private_subnets(stacks) -> None:
    net = stacks["prod-network"]
    acls = net.resources("aws_network_acl")
    db_acl = next(lid for lid, a in acls.items() if a["tags"]["Name"].endswith("-database-acl"))
    rules = [r for r in net.resources("aws_network_acl_rule").values()
             if r["network_acl_id"] == net.ref("aws_network_acl", db_acl)]
    ingress = {(r["from_port"], r["to_port"], r["cidr_block"]) for r in rules if not r["egress"]}
    private = {"10.1.11.0/24", "10.1.12.0/24", "10.1.13.0/24"}
    database = {"10.1.21.0/24", "10.1.22.0/24", "10.1.23.0/24"}
    assert ingress == {(p, p, c) for p in (5432, 6379) for c in private} | {(1024, 65535, c) for c in database}
    egress = {(r["from_port"], r["to_port"], r["cidr_block"]) for r in rules if r["egress"]}
    assert egress == {(1024, 65535, c) for c in private | database}  # stateless replies on ephemeral ports
    assert all(r["rule_action"] == "allow" for r in rules)


def _ingress_of(network: Stack, tier: str) -> list[dict]:
    acl = next(lid for lid, a in network.resources("aws_network_acl").items() if a["tags"]["Name"].endswith(f"-{tier}-acl"))
    return [r for r in network.resources("aws_network_acl_rule").values()
            if r["network_acl_id"] == network.ref("aws_network_acl", acl) and not r["egress"]]


def _open_from_anywhere(rules: list[dict]) -> set[int]:
    open_ports: set[int] = set()
    for rule in rules:
        if rule["cidr_block"] == "0.0.0.0/0" and rule["protocol"] == "tcp" and rule["rule_action"] == "allow":
            open_ports |= set(range(rule["from_port"], rule["to_port"] + 1))
    return open_ports


def test_public_nacl_admits_replies_on_every_ephemeral_port(network: Stack) -> None:
    """NAT and ALB connections get replies on any port 1024-65535: a gap (3389) hangs them."""
    open_ports = _open_from_anywhere(_ingress_of(network, "public"))
    assert set(range(1024, 65536)) <= open_ports
    assert {80, 443} <= open_ports


def test_private_nacl_admits_replies_on_every_port_lambda_and_the_internal_alb_use(network: Stack) -> None:
    """Lambda's interfaces and the internal ALB's nodes connect from source ports 1024-65535
    (not only Linux's 32768-60999); replies also come from outside the VPC CIDR: through NAT
    and from the S3/DynamoDB gateway endpoints' public ranges."""
    ingress = _ingress_of(network, "private")
    assert set(range(1024, 65536)) <= _open_from_anywhere(ingress)
    (replies,) = [r for r in ingress if (r["from_port"], r["to_port"]) == (1024, 65535)]
    # 3389 from anywhere: a declared, reasoned skip (the stateful security groups keep RDP out)
    assert "security groups" in replies["//"]["checkov_skip"]["CKV_AWS_231"]
    # and nothing below 1024 from outside the VPC
    assert not [r for r in ingress if r["cidr_block"] == "0.0.0.0/0" and r["from_port"] < 1024]


def test_rule_numbers_are_unique_per_acl_and_direction(network: Stack) -> None:
    """AWS refuses a second entry with the same number (NetworkAclEntryAlreadyExists)."""
    keys = [(r["network_acl_id"], r.get("egress", False), r["rule_number"])
            for r in network.resources("aws_network_acl_rule").values()]
    assert keys and len(keys) == len(set(keys))


def test_every_subnet_has_a_tier_acl(network: Stack) -> None:
    covered = [s for acl in network.resources("aws_network_acl").values() for s in acl["subnet_ids"]]
    assert sorted(covered) == sorted(network.ref("aws_subnet", lid) for lid in network.resources("aws_subnet"))


def test_flow_logs_capture_all_traffic_into_an_encrypted_group(network: Stack) -> None:
    flow = network.one("aws_flow_log")
    assert flow["traffic_type"] == "ALL"
    group_id = flow["log_destination"].split(".")[1]
    group = network.resources("aws_cloudwatch_log_group")[group_id]
    assert group["kms_key_id"].startswith("${data.terraform_remote_state")
    assert group["retention_in_days"] >= 365


def test_endpoints_present(network: Stack) -> None:
    endpoints = network.resources("aws_vpc_endpoint").values()
    by_type = {}
    for e in endpoints:
        by_type.setdefault(e["vpc_endpoint_type"], set()).add(e["service_name"].split(".", 3)[3])
    assert by_type["Gateway"] == {"s3", "dynamodb"}
    assert by_type["Interface"] == set(INTERFACE_ENDPOINTS)
    assert all(e["private_dns_enabled"] for e in endpoints if e["vpc_endpoint_type"] == "Interface")


def test_endpoint_security_group_admits_https_from_the_vpc_only(network: Stack) -> None:
    vpc_cidr = network.one("aws_vpc")["cidr_block"]
    rule = network.resources("aws_vpc_security_group_ingress_rule")
    endpoint_rules = [r for r in rule.values() if r.get("cidr_ipv4") == vpc_cidr]
    assert [(r["from_port"], r["to_port"]) for r in endpoint_rules] == [(443, 443)]


def test_flow_log_role_can_only_write_to_its_group(network: Stack) -> None:
    policy = json.loads(network.one("aws_iam_role_policy")["policy"])
    (statement,) = policy["Statement"]
    assert set(statement["Action"]) == {"logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"}
    assert all(r.startswith("${aws_cloudwatch_log_group.") for r in statement["Resource"])
