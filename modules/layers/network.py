"""Network layer: VPC with public, private and isolated database tiers, NACLs, endpoints,
flow logs, and the security groups every later layer attaches to."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Network
from typing import Any

from cdktn import Fn, Op, TerraformCount, Token
from constructs import Construct
from cdktn_provider_aws.default_security_group import DefaultSecurityGroup
from cdktn_provider_aws.eip import Eip
from cdktn_provider_aws.flow_log import FlowLog
from cdktn_provider_aws.internet_gateway import InternetGateway
from cdktn_provider_aws.nat_gateway import NatGateway
from cdktn_provider_aws.network_acl import NetworkAcl
from cdktn_provider_aws.network_acl_rule import NetworkAclRule
from cdktn_provider_aws.route import Route
from cdktn_provider_aws.route_table import RouteTable
from cdktn_provider_aws.route_table_association import RouteTableAssociation
from cdktn_provider_aws.security_group import SecurityGroup
from cdktn_provider_aws.subnet import Subnet
from cdktn_provider_aws.vpc import Vpc
from cdktn_provider_aws.vpc_endpoint import VpcEndpoint
from cdktn_provider_aws.vpc_security_group_egress_rule import VpcSecurityGroupEgressRule
from cdktn_provider_aws.vpc_security_group_ingress_rule import VpcSecurityGroupIngressRule

from modules.parts import iam
from modules.parts.compliance import skip
from modules.config import models
from modules.config.settings import Identity
from modules.parts.context import current_account
from modules.parts.outputs import publish
from modules.parts.storage import encrypted_log_group
from modules.parts.switch import attribute, built, only_if
from modules.parts.zones import Zone, Zones


class Port:
    """Every port the platform opens, in one place."""

    HTTP = 80
    HTTPS = 443
    GATEWAY = 4000  # LiteLLM proxy
    POSTGRES = 5432
    REDIS = 6379
    GPU_SERVICE = 50051  # self-hosted model (vLLM over HTTPS; also its /health)


# ssmmessages carries ECS Exec and Session Manager shells to the GPU hosts.
INTERFACE_ENDPOINTS = ("bedrock-runtime", "ecr.api", "ecr.dkr", "logs", "secretsmanager", "kms",
                       "sqs", "sns", "ssm", "ssmmessages", "sts")
ANYWHERE = "0.0.0.0/0"

# Security groups created here and attached by the layer that owns the workload.
SECURITY_GROUPS = {
    "alb": "public ALB (edge layer)",
    "gateway": "LiteLLM tasks (gateway layer)",
    "database": "RDS PostgreSQL (data layer)",
    "redis": "ElastiCache Redis (data layer)",
    "lambda": "functions of the realtime layer",
    "llm_alb": "internal ALB of the GPU tier (llm layer)",
    "gpu": "GPU model instances (llm layer)",
}


@dataclass(frozen=True)
class NetworkShape:
    """Which optional parts exist. An environment file decides them (nat_gateways; flow logs and
    every interface endpoint always); the exported module takes each as a variable, which
    Terraform applies through `count` (modules.parts.switch)."""

    single_nat_gateway: bool | Any = False
    enable_flow_log: bool | Any = True
    # Interface endpoints to create: a name of INTERFACE_ENDPOINTS is checked by `contains`.
    interface_endpoints: tuple[str, ...] | Any = INTERFACE_ENDPOINTS

    @staticmethod
    def of(settings: models.Network) -> NetworkShape:
        return NetworkShape(single_nat_gateway=settings.nat_gateways == "single")

    def endpoint(self, service: str) -> bool | Any:
        """The switch of one interface endpoint."""
        if isinstance(self.interface_endpoints, tuple):
            return service in self.interface_endpoints
        return Fn.contains(self.interface_endpoints, service)


@dataclass(frozen=True)
class NetworkOutputs:
    vpc_id: str
    vpc_cidr: str
    public_subnet_ids: list[str]
    private_subnet_ids: list[str]
    database_subnet_ids: list[str]
    security_group_ids: dict[str, str]
    # The NAT gateways' Elastic IPs: the platform's own calls to its public URL come from them.
    nat_public_ips: list[str]
    nat_gateway_ids: list[str] = field(default_factory=list)
    public_route_table_id: str = ""
    private_route_table_ids: list[str] = field(default_factory=list)  # one per zone
    database_route_table_id: str = ""
    # Endpoint id by service (s3, dynamodb and each interface endpoint); null for one not created.
    vpc_endpoint_ids: dict[str, str] = field(default_factory=dict)


# An ACL entry: protocol, port ranges (low, high), and one CIDR or a per-zone list of them.
AclEntry = tuple[str, list[tuple[int, int]], Any]


def cidr_list(cidrs: list[IPv4Network] | Any) -> list[str] | Any:
    """A per-zone CIDR list as text: the stacks' networks, or a module's list variable as it is."""
    return [str(c) for c in cidrs] if all(isinstance(c, IPv4Network) for c in cidrs) else cidrs


def acl_rules(protocol: str, ports: list[tuple[int, int]], cidrs: Any, number: int | Any
              ) -> tuple[list[tuple[str, Any, Any, Any, Any, Any]], int | Any]:
    """An entry's ACL rules as (protocol, number, count, low, high, cidr), numbered on from
    `number`, and the number after them: one rule per CIDR and port range, or, for a module's
    per-zone list, one rule counted over both."""
    if isinstance(cidrs, str) or not Token.is_unresolved(cidrs):  # one CIDR, or the stacks' list
        pairs = [(c, p) for c in ([cidrs] if isinstance(cidrs, str) else cidrs) for p in ports]
        return ([(protocol, plus(number, 10 * i), None, low, high, cidr) for i, (cidr, (low, high)) in enumerate(pairs)],
                plus(number, 10 * len(pairs)))
    instances = Op.mul(len(ports), Fn.length_of(cidrs))
    count = TerraformCount.of(Token.as_number(instances))
    at, lows, highs = count.index, [low for low, _ in ports], [high for _, high in ports]
    return ([(protocol, Op.add(number, Op.mul(10, at)), count,
              Token.as_number(Fn.element(lows, Op.mod(at, len(ports)))),
              Token.as_number(Fn.element(highs, Op.mod(at, len(ports)))),
              Token.as_string(Fn.element(cidrs, Fn.floor(Op.div(at, len(ports))))))],
            Op.add(number, Op.mul(10, instances)))


def plus(left: int | Any, right: int) -> int | Any:
    """A rule number: a plain sum, or Terraform's after a counted rule."""
    return left + right if isinstance(left, int) else Op.add(left, right)


class Network(Construct):
    """VPC across the configured AZs: public (ALB, NAT), private (workloads) and database
    (no route to the internet) tiers, each behind its own NACL."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity, settings: models.Network,
                 kms_key_arn: str, shape: NetworkShape | None = None) -> None:
        super().__init__(scope, id)
        self._identity, self._settings = identity, settings
        shape = shape or NetworkShape.of(settings)
        account = current_account(self, identity.region)
        self.vpc = Vpc(self, "vpc", cidr_block=str(settings.vpc_cidr), enable_dns_support=True,
                       enable_dns_hostnames=True, tags={"Name": identity.resource_name("vpc")})
        vpc_id = self.vpc.id
        # No rules: the default security group admits and emits nothing.
        DefaultSecurityGroup(self, "default_security_group", vpc_id=vpc_id, ingress=[], egress=[])

        self._zones = zones = Zones(settings.availability_zones)
        public = self._subnets("public", settings.public_subnets)
        private = self._subnets("private", settings.private_subnets)
        database = self._subnets("database", settings.database_subnets)

        igw = InternetGateway(self, "igw", vpc_id=vpc_id, tags={"Name": identity.resource_name("igw")})
        public_rt = self._route_table("public", public)
        Route(self, "public_default_route", route_table_id=public_rt.id, destination_cidr_block=ANYWHERE,
              gateway_id=igw.id)

        nats, nat_ips = self._nat_gateways(public, igw, shape.single_nat_gateway)
        private_rts = [self._private_route_table(zone, private, nats) for zone in zones.each()]
        database_rt = self._route_table("database", database)  # local routes only

        endpoints = self._endpoints(vpc_id, private, private_rts, shape)

        self._acls(public, private, database)
        self._flow_logs(account.id, kms_key_arn, shape.enable_flow_log)
        groups = {name: self._security_group(name, purpose) for name, purpose in SECURITY_GROUPS.items()}
        self._connect(groups)

        self.outputs = NetworkOutputs(
            vpc_id=vpc_id, vpc_cidr=str(settings.vpc_cidr),
            public_subnet_ids=zones.all(public, "id"), private_subnet_ids=zones.all(private, "id"),
            database_subnet_ids=zones.all(database, "id"),
            security_group_ids={name: sg.id for name, sg in groups.items()}, nat_public_ips=nat_ips,
            nat_gateway_ids=zones.spread(nats, "id", public[0]), public_route_table_id=public_rt.id,
            private_route_table_ids=zones.all(private_rts, "id"), database_route_table_id=database_rt.id,
            vpc_endpoint_ids=endpoints)
        publish(self, {
            "vpc_id": (vpc_id, "VPC of the environment"),
            "public_subnet_ids": (self.outputs.public_subnet_ids, "Public subnets (ALB, NAT), one per AZ"),
            "private_subnet_ids": (self.outputs.private_subnet_ids, "Private subnets (Fargate, Lambda, GPU hosts)"),
            "database_subnet_ids": (self.outputs.database_subnet_ids, "Database subnets, no route to the internet"),
            "security_group_ids": (self.outputs.security_group_ids, "Security groups by role (alb, gateway, …)"),
        })

    # --- subnets and routes -------------------------------------------------------------------

    def _nat_gateways(self, public: list[Subnet], igw: InternetGateway, single: bool | Any
                      ) -> tuple[list[NatGateway], list[str]]:
        """The NAT gateway each private zone routes through, and the Elastic IPs: one per zone,
        or the first zone's for all when `single`."""
        identity, zones = self._identity, self._zones
        eips, nats = [], []
        for zone in zones.each(first_only=single):
            eip = Eip(self, f"nat_eip_{zone.number}", count=zone.count, domain="vpc",
                      tags={"Name": identity.resource_name(f"nat-{zone.label}")})
            nats.append(NatGateway(self, f"nat_{zone.number}", count=zone.count, allocation_id=zone.own(eip, "id"),
                                   subnet_id=zone.own(public[zone.number], "id"),
                                   tags={"Name": identity.resource_name(f"nat-{zone.label}")}, depends_on=[igw]))
            eips.append(eip)
        return nats, zones.all(eips, "public_ip")

    def _private_route_table(self, zone: Zone, private: list[Subnet], nats: list[NatGateway]) -> RouteTable:
        """A zone's private route table: its default route leaves through the zone's NAT gateway."""
        rt = RouteTable(self, f"private_{zone.number}_route_table", count=zone.count, vpc_id=self.vpc.id,
                        tags={"Name": self._identity.resource_name(f"private-{zone.label}-rt")})
        RouteTableAssociation(self, f"private_{zone.number}_route_table_association_0", count=zone.count,
                              route_table_id=zone.own(rt, "id"), subnet_id=zone.own(private[zone.number], "id"))
        Route(self, f"private_{zone.number}_default_route", count=zone.count, route_table_id=zone.own(rt, "id"),
              destination_cidr_block=ANYWHERE, nat_gateway_id=zone.round(nats, "id"))
        return rt

    def _endpoints(self, vpc_id: str, private: list[Subnet], private_rts: list[RouteTable], shape: NetworkShape
                   ) -> dict[str, str]:
        """Gateway endpoints on the private route tables, interface endpoints in the private
        subnets; their ids by service."""
        identity, settings = self._identity, self._settings
        ids = {}
        for service in ("s3", "dynamodb"):
            ids[service] = VpcEndpoint(
                self, f"endpoint_{service}", vpc_id=vpc_id, vpc_endpoint_type="Gateway",
                service_name=f"com.amazonaws.{identity.region}.{service}",
                route_table_ids=self._zones.all(private_rts, "id"),
                tags={"Name": identity.resource_name(f"{service}-endpoint")}).id
        endpoint_sg = self._security_group("endpoints", "interface VPC endpoints")
        VpcSecurityGroupIngressRule(self, "endpoints_https_from_vpc", security_group_id=endpoint_sg.id,
                                    ip_protocol="tcp", from_port=Port.HTTPS, to_port=Port.HTTPS,
                                    cidr_ipv4=str(settings.vpc_cidr), description="HTTPS from inside the VPC")
        for service in INTERFACE_ENDPOINTS:
            switch = shape.endpoint(service)
            if not built(switch):
                continue
            endpoint = VpcEndpoint(
                self, f"endpoint_{service.replace('.', '_').replace('-', '_')}", vpc_id=vpc_id,
                vpc_endpoint_type="Interface", service_name=f"com.amazonaws.{identity.region}.{service}",
                private_dns_enabled=True, subnet_ids=self._zones.all(private, "id"), security_group_ids=[endpoint_sg.id],
                tags={"Name": identity.resource_name(f"{service}-endpoint")})
            only_if(endpoint, switch)
            ids[service] = attribute(endpoint, "id", switch)
        return ids

    def _subnets(self, tier: str, cidrs: list[IPv4Network] | Any) -> list[Subnet]:
        identity, zones = self._identity, self._zones
        subnets = []
        for zone in zones.each():
            az = zone.of(zones.names)
            subnets.append(Subnet(self, f"{tier}_subnet_{zone.number}", count=zone.count, vpc_id=self.vpc.id,
                                  cidr_block=str(zone.of(cidrs)), availability_zone=az, map_public_ip_on_launch=False,
                                  tags={"Name": identity.resource_name(f"{tier}-{az}"), "Tier": tier}))
        return subnets

    def _route_table(self, name: str, subnets: list[Subnet]) -> RouteTable:
        """One route table for a tier's subnets in every zone."""
        identity = self._identity
        rt = RouteTable(self, f"{name}_route_table", vpc_id=self.vpc.id,
                        tags={"Name": identity.resource_name(f"{name.replace('_', '-')}-rt")})
        for zone in self._zones.each():
            RouteTableAssociation(self, f"{name}_route_table_association_{zone.number}", count=zone.count,
                                  route_table_id=rt.id, subnet_id=zone.own(subnets[zone.number], "id"))
        return rt

    # --- network ACLs (stateless: return traffic needs explicit ephemeral-port rules) ---------

    def _acls(self, public: list[Subnet], private: list[Subnet], database: list[Subnet]) -> None:
        settings = self._settings
        vpc = str(settings.vpc_cidr)
        private_cidrs, database_cidrs = cidr_list(settings.private_subnets), cidr_list(settings.database_subnets)
        either = (Token.as_list(Fn.concat([private_cidrs, database_cidrs])) if self._zones.counted
                  else private_cidrs + database_cidrs)
        ephemeral = [(1024, 65535)]

        self._acl("public", public, ingress=[
            ("tcp", [(Port.HTTPS, Port.HTTPS)], ANYWHERE),
            ("tcp", [(Port.HTTP, Port.HTTP)], ANYWHERE),
            # Replies to NAT and ALB connections arrive on any port 1024-65535 (3389
            # included: a gap would hang every connection whose source port lands there).
            # Security groups, which are stateful, keep RDP and everything else out.
            ("tcp", ephemeral, ANYWHERE),
        ], egress=[("-1", [(0, 0)], ANYWHERE)])
        self._acl("private", private, ingress=[
            ("tcp", [(Port.HTTPS, Port.HTTPS)], vpc),
            ("tcp", [(Port.GATEWAY, Port.GATEWAY)], vpc),
            ("tcp", [(Port.GPU_SERVICE, Port.GPU_SERVICE)], vpc),
            # Replies to the workloads' own connections. Lambda's network interfaces and the
            # internal ALB's nodes use source ports 1024-65535 (VPC user guide, "Ephemeral
            # ports"), not only Linux's 32768-60999; and replies come from outside the VPC CIDR
            # too: through NAT, and from S3/DynamoDB gateway endpoints (public service ranges).
            ("tcp", ephemeral, ANYWHERE),
        ], egress=[("-1", [(0, 0)], ANYWHERE)])
        self._acl(
            "database", database,
            ingress=[("tcp", [(Port.POSTGRES, Port.POSTGRES), (Port.REDIS, Port.REDIS)], private_cidrs),
                     ("tcp", ephemeral, database_cidrs)],  # replication between data nodes, and its replies
            egress=[("tcp", ephemeral, either)])

    def _acl(self, tier: str, subnets: list[Subnet], *, ingress: list[AclEntry], egress: list[AclEntry]) -> NetworkAcl:
        """The tier's ACL and its rules, numbered 100, 110, … in order: each entry opens its
        port ranges to each of its CIDRs (CIDR by CIDR)."""
        identity = self._identity
        acl = NetworkAcl(self, f"{tier}_acl", vpc_id=self.vpc.id, subnet_ids=self._zones.all(subnets, "id"),
                         tags={"Name": identity.resource_name(f"{tier}-acl")})
        for direction, entries in (("ingress", ingress), ("egress", egress)):
            rules: list[tuple[str, Any, Any, Any, Any, Any]] = []
            number: int | Any = 100
            for protocol, ports, cidrs in entries:
                made, number = acl_rules(protocol, ports, cidrs, number)
                rules += made
            for i, (protocol, number, count, low, high, cidr) in enumerate(rules):
                rule = NetworkAclRule(self, f"{tier}_acl_{direction}_{i}", count=count, network_acl_id=acl.id,
                                      egress=direction == "egress", rule_number=number, rule_action="allow",
                                      protocol=protocol, from_port=low, to_port=high, cidr_block=cidr)
                if direction == "ingress" and cidr == ANYWHERE and low <= 3389 <= high:
                    skip(rule, "CKV_AWS_231", "The stateless ACL must admit replies on every ephemeral port "
                         "(1024-65535) or connections whose source port is 3389 hang; the stateful security "
                         "groups admit no RDP from anywhere.")
        return acl

    # --- flow logs ----------------------------------------------------------------------------

    def _flow_logs(self, account_id: str, kms_key_arn: str, enabled: bool | Any) -> None:
        """VPC flow logs to an encrypted group. Off, no flow log is created (in a module the
        empty group and its role stay: they cost nothing)."""
        if not built(enabled):
            return
        identity = self._identity
        group = encrypted_log_group(self, "flow_log_group", name=f"/vpc/{identity.resource_name('flow-logs')}",
                                    kms_key_arn=kms_key_arn, retention_days=identity.log_retention_days,
                                    protect_data=identity.protect_stateful)
        role = iam.service_role(
            self, "flow_log_role", name=identity.resource_name("flow-logs"), service="vpc-flow-logs.amazonaws.com",
            source_account=account_id,
            statements=[iam.allow(["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                                  [group.arn, f"{group.arn}:*"])])
        flow_log = FlowLog(self, "flow_log", vpc_id=self.vpc.id, traffic_type="ALL",
                           log_destination_type="cloud-watch-logs", log_destination=group.arn, iam_role_arn=role.arn,
                           max_aggregation_interval=60)
        only_if(flow_log, enabled)

    # --- security groups ----------------------------------------------------------------------

    def _security_group(self, name: str, purpose: str) -> SecurityGroup:
        identity = self._identity
        sg = SecurityGroup(self, f"{name}_security_group", vpc_id=self.vpc.id,
                           name=identity.resource_name(f"{name.replace('_', '-')}-sg"), description=f"{purpose}",
                           tags={"Name": identity.resource_name(f"{name.replace('_', '-')}-sg")})
        if name in SECURITY_GROUPS:
            skip(sg, "CKV2_AWS_5", "Created here so every layer can reference it; the owning layer "
                 "attaches it in its own stack, which Checkov scans separately.")
        return sg

    def _connect(self, sg: dict[str, SecurityGroup]) -> None:
        """NET-6: who may talk to whom. Each edge opens egress on the source and ingress on the target."""

        def allow(source: str, target: str, port: int, why: str) -> None:
            key = f"{source}_to_{target}_{port}"
            VpcSecurityGroupEgressRule(self, f"egress_{key}", security_group_id=sg[source].id, ip_protocol="tcp",
                                       from_port=port, to_port=port, referenced_security_group_id=sg[target].id,
                                       description=why)
            VpcSecurityGroupIngressRule(self, f"ingress_{key}", security_group_id=sg[target].id, ip_protocol="tcp",
                                        from_port=port, to_port=port, referenced_security_group_id=sg[source].id,
                                        description=why)

        internet = {port: VpcSecurityGroupIngressRule(
            self, f"alb_ingress_{port}_internet", security_group_id=sg["alb"].id, ip_protocol="tcp",
            from_port=port, to_port=port, cidr_ipv4=ANYWHERE, description=f"clients on {port}")
            for port in (Port.HTTPS, Port.HTTP)}
        skip(internet[Port.HTTP], "CKV_AWS_260", "Port 80 only answers with a 301 redirect to HTTPS (edge "
             "listener), so clients that type a bare host name are upgraded instead of refused.")
        allow("alb", "gateway", Port.GATEWAY, "ALB to LiteLLM")
        for client in ("gateway", "lambda"):
            allow(client, "database", Port.POSTGRES, f"{client} to PostgreSQL")
            allow(client, "redis", Port.REDIS, f"{client} to Redis")
            allow(client, "llm_alb", Port.HTTPS, f"{client} to the internal model ALB")
        allow("llm_alb", "gpu", Port.GPU_SERVICE, "internal ALB to the model service and its health check")
        # AWS APIs, Bedrock and image registries over HTTPS only.
        for name in ("gateway", "lambda", "gpu"):
            VpcSecurityGroupEgressRule(self, f"{name}_egress_https", security_group_id=sg[name].id,
                                       ip_protocol="tcp", from_port=Port.HTTPS, to_port=Port.HTTPS,
                                       cidr_ipv4=ANYWHERE, description="HTTPS to AWS APIs and registries")
