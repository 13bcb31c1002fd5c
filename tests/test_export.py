"""MOD-1, MOD-2: every layer as a plain Terraform module, the HCL example root that wires them,
and the contract between the two."""

from __future__ import annotations

import dataclasses
import filecmp
import json
import re
import shutil
import subprocess
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
from pydantic import BaseModel

from modules.config import load_environment
from modules.config.models import Environment
from modules.config.regions import REGIONS
from modules.parts.context import REGION_TABLE
from modules.rehearsal.validate import MODULE_CONSTRAINT
from modules.tools.export import (EXPORTED_LAYERS, FIELD_RULES, FIXED_AT_EXPORT, MODULES_DIR, OUTPUT_DESCRIPTIONS,
                            OUTPUT_TYPES,
                            STRAIGHT_SETTINGS, TERRAFORM_TYPES, VARIABLE_NAMES, ExportError, blocks, bounds_rules,
                            cross_rules,
                            export_modules, hand_written, straight_settings,
                            variable_fields)
from policies.gate import Stack as GateStack, classify
from policies.scan import scan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = {name: ROOT / "examples" / name / "main.tf" for name in ("complete", "minimal", "another-region")}
# The dependency layer is built from PyPI wheels: its bytes (and hash) are checked by name,
# which carries the hash of its pinned requirements.
LAYER_ASSET = "dependencies_asset"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("modules")
    export_modules(load_environment("prod"), target)
    return target


def module_doc(root: Path, layer: str) -> dict:
    return json.loads((root / layer / "main.tf.json").read_text())


def test_every_layer_exports_a_provider_less_module(exported: Path) -> None:
    assert sorted(p.name for p in exported.iterdir()) == sorted(EXPORTED_LAYERS)
    for layer in EXPORTED_LAYERS:
        doc = module_doc(exported, layer)
        assert "provider" not in doc and "backend" not in doc["terraform"], layer
        assert doc["terraform"]["required_providers"]["aws"] == {"source": "hashicorp/aws", "version": ">= 6.0, < 7.0"}
        assert MODULE_CONSTRAINT == ">= 6.0, < 7.0"  # what validate and the module tests pin for the mirror
        outputs = blocks(doc, "output")
        # every field of the layer's typed outputs is a module output
        if layer in OUTPUT_TYPES:
            assert set(typing.get_type_hints(OUTPUT_TYPES[layer])) <= set(outputs), layer
        assert all(o.get("description") for o in outputs.values()), layer
        readme = (exported / layer / "README.md").read_text()
        for name in [*blocks(doc, "variable"), *outputs]:
            assert f"| {name} |" in readme, (layer, name)


def test_every_output_says_what_it_is(exported: Path) -> None:
    """No output is described by its own name; the table describes exactly the outputs the
    layers do not publish themselves."""
    for layer in EXPORTED_LAYERS:
        outputs = blocks(module_doc(exported, layer), "output")
        assert not [name for name, o in outputs.items() if o["description"] == f"{name} of the {layer} layer"
                    or o["description"].startswith(name)], layer
        published = {name for name, o in outputs.items() if "sensitive" in o}  # the layer's own (publish)
        if layer in OUTPUT_TYPES:
            assert set(OUTPUT_DESCRIPTIONS[layer]) == set(typing.get_type_hints(OUTPUT_TYPES[layer])) - published, layer


def test_module_files_are_found_relative_to_the_module(exported: Path) -> None:
    doc = module_doc(exported, "realtime")
    for function in doc["resource"]["aws_lambda_function"].values():
        assert function["filename"].startswith("${path.module}/assets/")
        assert (exported / "realtime" / function["filename"].removeprefix("${path.module}/")).is_file()


def test_committed_modules_are_up_to_date(exported: Path) -> None:
    """Regenerate with: python main.py --export-modules"""
    stale = []
    for path in sorted(p for p in exported.rglob("*") if p.is_file()):
        relative = path.relative_to(exported)
        committed = MODULES_DIR / relative
        if LAYER_ASSET in relative.parts:
            same = committed.is_file()  # the name holds the requirements' hash
        elif path.name == "main.tf.json":
            same = committed.is_file() and _without_layer_hash(committed) == _without_layer_hash(path)
        else:
            same = committed.is_file() and filecmp.cmp(path, committed, shallow=False)
        if not same:
            stale.append(str(relative))
    extra = {str(p.relative_to(MODULES_DIR)) for p in MODULES_DIR.rglob("*") if p.is_file() and not hand_written(p)} - {
        str(p.relative_to(exported)) for p in exported.rglob("*") if p.is_file()}
    assert not stale and not extra, f"stale: {stale}, not exported any more: {sorted(extra)}; run " \
                                    "`python main.py --export-modules`"


def _without_layer_hash(path: Path) -> dict:
    doc = json.loads(path.read_text())
    for layer in doc.get("resource", {}).get("aws_lambda_layer_version", {}).values():
        layer.pop("source_code_hash", None)
    return doc


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_root_honours_every_module_contract(example: str) -> None:
    """Every argument is a declared variable of the right type, every required variable is
    set, and every module output read exists. The complete example uses every module."""
    root = hcl2.loads(EXAMPLES[example].read_text())
    calls = {name: {k: _scalar(v) for k, v in body.items() if not k.startswith("__")}  # parser's line markers
             for block in root["module"] for name, body in block.items()}
    assert set(calls) == set(EXPORTED_LAYERS) if example == "complete" else set(calls) < set(EXPORTED_LAYERS)
    for name, call in calls.items():
        assert (EXAMPLES[example].parent / call.pop("source")).resolve() == MODULES_DIR / name
        doc = module_doc(MODULES_DIR, name)
        variables = blocks(doc, "variable")
        assert set(call) <= set(variables), f"{name}: undeclared {set(call) - set(variables)}"
        required = {v for v, body in variables.items() if "default" not in body}
        assert required <= set(call), f"{name}: missing {required - set(call)}"
        for argument, expression in call.items():
            if not (isinstance(expression, str) and expression.startswith("${module.")):
                expected = ("bool" if isinstance(expression, bool) else
                            "number" if isinstance(expression, (int, float)) else
                            "list(string)" if isinstance(expression, list) else "string")
                assert variables[argument]["type"] == expected, (name, argument)  # a setting of the root
                continue
            reference = expression.strip("${}").split(".")
            assert reference[1] in calls, (name, argument)
            producer, field = reference[1], reference[2]
            assert field in blocks(module_doc(MODULES_DIR, producer), "output"), f"{name}.{argument}: no {field}"
            produced = TERRAFORM_TYPES[typing.get_type_hints(OUTPUT_TYPES[producer])[field]]
            assert variables[argument]["type"] == produced, (name, argument)
    for block in root["output"]:
        for output in block.values():
            if not isinstance(output, dict):
                continue
            _, producer, field = _scalar(output["value"]).strip("${}").split(".")
            assert field in blocks(module_doc(MODULES_DIR, producer), "output")


def _scalar(value):
    """The HCL parser wraps attribute values in one-element lists."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def test_example_root_is_terraform_formatted() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    proc = subprocess.run([terraform, "fmt", "-check", "-diff", *(str(e.parent) for e in EXAMPLES.values())],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_checkov_finds_no_unexplained_failure_in_the_modules() -> None:
    stacks = [GateStack(layer, MODULES_DIR / layer / "main.tf.json", f"{layer}/main.tf.json")
              for layer in EXPORTED_LAYERS]
    result = classify(scan([s.path for s in stacks], cache_dir=None).reports, stacks)
    assert result.parsing_errors == []
    assert result.unexplained == [] and result.stale == [] and result.secrets == [], result.unexplained[:5]
    assert result.passed > 300


def test_bad_export_requests_are_refused_and_write_nothing(tmp_path: Path) -> None:
    from main import main
    target = tmp_path / "out"
    assert main(["--export-modules", str(target), "--environment", "NO_SUCH_ENV"]) == 2
    assert main(["--export-modules", str(target), "--layers", "edge,cache"]) == 2
    assert main(["--export-modules", str(target), "--environment", "prod-us"]) == 2  # replicas need aliases
    assert not target.exists()
    with pytest.raises(ExportError, match="unknown layer"):
        export_modules(load_environment("prod"), target, ("cache",))


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    found = []
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += _fields(kind, f"{prefix}{name}.")
        else:
            found.append(f"{prefix}{name}")
    return found


def test_every_config_field_is_a_module_variable_or_fixed_with_a_reason() -> None:
    """A field added to the environment files fails here until the export makes it a
    variable or says why it is fixed at export."""
    variables = variable_fields()
    fixed = [field for fields in FIXED_AT_EXPORT.values() for field in fields]
    classified = variables + fixed
    assert sorted(classified) == sorted(set(classified)), "a field is classified twice"
    assert set(classified) == set(_fields(Environment))


def test_a_field_added_to_a_section_becomes_a_variable_without_an_edit_here(monkeypatch) -> None:
    from modules.config import models
    from modules.config.settings import SETTINGS

    class Edge(models.Edge):
        header_limit_bytes: int = 8192

    monkeypatch.setitem(SETTINGS, "edge", Edge)
    assert straight_settings("edge") == (*STRAIGHT_SETTINGS["edge"], "header_limit_bytes")


def test_straight_settings_are_variables_with_the_config_bounds(exported: Path) -> None:
    env = load_environment("prod")
    for layer, names in STRAIGHT_SETTINGS.items():
        variables = blocks(module_doc(exported, layer), "variable")
        cross = cross_rules(env, layer)
        for name in names:
            variable = VARIABLE_NAMES.get(f"{layer}.{name}", name)
            declared = variables[variable]
            field = type(getattr(env, layer)).model_fields[name]
            bounds = len([m for m in field.metadata if hasattr(m, "ge") or hasattr(m, "le")]) + (
                "Literal[" in str(field.annotation))  # a choice is one rule
            assert len(bounds_rules(field)) == bounds, variable
            extra = len(FIELD_RULES.get(f"{layer}.{name}", ()))
            assert len(declared.get("validation", [])) == bounds + extra + len(cross.get(variable, ())), variable
            assert declared["default"] == getattr(getattr(env, layer), name)
            assert f"${{var.{variable}}}" in json.dumps(module_doc(exported, layer)["resource"]), variable


# Names of AWS regions (any partition) and their zones (`eu-west-2a`), and 12-digit account
# ids: the caller's provider decides them.
REGION_NAME = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)(?:-gov|-iso[a-z]?)?-"
                         r"(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-\d+(?![0-9])")
ACCOUNT_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{12}(?![0-9A-Za-z])")


def bound_to_a_region(doc: dict[str, Any]) -> list[str]:
    """Where a module names a region or an account outside its variables' defaults and
    descriptions and its region table (the local `regions`, which must be REGIONS itself)."""
    doc = json.loads(json.dumps(doc))
    table = doc.get("locals", {}).pop(REGION_TABLE, None)
    assert table in (None, {name: {**dataclasses.asdict(r), "zones": list(r.zones)} for name, r in REGIONS.items()})
    for variable in blocks(doc, "variable").values():
        variable.pop("default", None)
        variable.pop("description", None)

    def leaks(value: Any, path: str) -> Iterator[str]:
        if isinstance(value, dict):
            for key, item in value.items():
                yield from leaks(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                yield from leaks(item, f"{path}[{i}]")
        elif isinstance(value, str):
            yield from (f"{path}: {found.group()}" for pattern in (REGION_NAME, ACCOUNT_ID)
                        for found in pattern.finditer(value))

    return list(leaks(doc, ""))


@pytest.mark.parametrize("layer", EXPORTED_LAYERS)
def test_no_module_names_a_region_or_an_account(layer: str) -> None:
    """Region, partition and account come from the caller's provider (data sources), per-region
    facts from the region table: a literal would hold in one region and break apply or run time
    in another."""
    assert bound_to_a_region(json.loads((MODULES_DIR / layer / "main.tf.json").read_text())) == []


def test_the_region_scan_finds_a_literal_region_or_account() -> None:
    doc = {"variable": {"zones": {"default": ["eu-west-2a"], "description": "zones of eu-west-2"}},
           "resource": {"aws_vpc_endpoint": {"s3": {"service_name": "com.amazonaws.eu-west-2.s3"}},
                        "aws_iam_role": {"r": {"arn": "arn:aws:iam::111122223333:role/x"}},
                        "aws_elasticache_replication_group": {"g": {"preferred_cache_cluster_azs": ["eu-west-2a"]}}}}
    assert bound_to_a_region(doc) == [".resource.aws_vpc_endpoint.s3.service_name: eu-west-2",
                                      ".resource.aws_iam_role.r.arn: 111122223333",
                                      ".resource.aws_elasticache_replication_group.g.preferred_cache_cluster_azs[0]: "
                                      "eu-west-2"]


def test_realtime_custom_domain_is_a_variable_and_without_one_the_stage_url_is_given(exported: Path) -> None:
    doc = module_doc(exported, "realtime")
    assert doc["variable"]["domain_name"]["default"] == load_environment("prod").realtime.custom_domain
    resources = doc["resource"]
    counted = "${(var.domain_name != \"\") ? 1 : 0}"
    (domain,) = resources["aws_apigatewayv2_domain_name"].values()
    (mapping,) = resources["aws_apigatewayv2_api_mapping"].values()
    assert domain["count"] == counted and mapping["count"] == counted
    assert mapping["domain_name"].startswith("${one(aws_apigatewayv2_domain_name.")
    url = blocks(doc, "output")["websocket_url"]["value"]
    assert url.startswith("${(var.domain_name != \"\") ? \"wss://${var.domain_name}\" : \"wss://${aws_apigatewayv2_api.")
    assert "execute-api.${data.aws_region.region.id}.amazonaws.com/live" in url


def test_edge_creates_its_web_acl_or_attaches_the_callers(exported: Path) -> None:
    doc = module_doc(exported, "edge")
    variables, resources = blocks(doc, "variable"), doc["resource"]
    assert variables["create_waf"]["default"] is True and variables["web_acl_arn"]["default"] == ""
    assert any("var.create_waf != (var.web_acl_arn != \"\")" in v["condition"]
               for v in variables["web_acl_arn"]["validation"])
    counted = "${var.create_waf ? 1 : 0}"
    for kind in ("aws_wafv2_web_acl", "aws_wafv2_ip_set", "aws_wafv2_web_acl_logging_configuration"):
        assert all(r["count"] == counted for r in resources[kind].values()), kind
    (association,) = resources["aws_wafv2_web_acl_association"].values()
    assert "count" not in association  # the ALB is never without a web ACL
    assert association["web_acl_arn"].startswith("${var.create_waf ? local.") and "var.web_acl_arn" in \
        association["web_acl_arn"]
    outputs = blocks(doc, "output")
    assert "element(split(\"/\", var.web_acl_arn), 2)" in outputs["web_acl_name"]["value"]


def test_an_edge_without_a_web_acl_of_either_kind_is_refused() -> None:
    from modules.layers.edge import WafChoice
    with pytest.raises(ValueError, match="web ACL"):
        WafChoice(create=False)


def test_foundation_creates_the_trail_or_names_the_accounts_own(exported: Path) -> None:
    doc = module_doc(exported, "foundation")
    variables, resources = blocks(doc, "variable"), doc["resource"]
    assert variables["create_cloudtrail"]["default"] is load_environment("prod").foundation.cloudtrail is True
    assert variables["cloudtrail_arn"]["default"] == ""
    counted = "${var.create_cloudtrail ? 1 : 0}"
    trail_parts = [r for kind in ("aws_cloudtrail", "aws_cloudwatch_log_group", "aws_iam_role", "aws_iam_role_policy")
                   for lid, r in resources[kind].items() if "trail" in lid]
    assert len(trail_parts) == 4 and all(r["count"] == counted for r in trail_parts)
    (key,) = resources["aws_kms_key"].values()
    assert key["policy"].startswith("${var.create_cloudtrail ? local.")
    policies = {k.split("_key_policy_")[1].split("_")[0]: v for k, v in doc["locals"].items()
                if k.startswith("foundation_key_policy_")}
    assert "CloudTrailEncrypt" in policies["on"] and "cloudtrail" not in policies["off"]
    assert blocks(doc, "output")["cloudtrail_arn"]["value"].endswith(": var.cloudtrail_arn}")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_a_security_group_map_of_your_own_is_told_its_missing_and_unknown_keys(tmp_path: Path) -> None:
    """The variable alone, planned by Terraform: the error names what the caller's map lacks."""
    variable = blocks(module_doc(MODULES_DIR, "edge"), "variable")["network_security_group_ids"]
    (tmp_path / "main.tf.json").write_text(json.dumps({"variable": {"network_security_group_ids": variable}}))
    env = {"CHECKPOINT_DISABLE": "1", "PATH": "/usr/bin:/bin:/usr/local/bin", "TF_IN_AUTOMATION": "1"}
    subprocess.run(["terraform", "init", "-no-color"], cwd=tmp_path, env=env, capture_output=True, check=True)
    plan = subprocess.run(["terraform", "plan", "-no-color", "-input=false",
                           "-var", 'network_security_group_ids={alb="sg-1",gateway="sg-2",web="sg-9"}'],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    message = " ".join(plan.stderr.split())
    assert plan.returncode != 0
    assert "missing [database, redis, lambda, llm_alb, gpu], unknown [web]." in message


def test_redis_nodes_are_a_data_variable_the_modules_follow(exported: Path) -> None:
    """The node count is `redis_replicas`, not the exported environment's: the group, its zones
    and `redis_node_ids` are computed from the variable, and the observability module counts its
    per-node alarms over the list it is given (no node's alarm is written out)."""
    data = module_doc(exported, "data")
    replicas = blocks(data, "variable")["redis_replicas"]
    assert replicas["default"] == load_environment("prod").data.redis_replicas and replicas["type"] == "number"
    assert [v["condition"] for v in replicas["validation"]] == [
        "${var.redis_replicas >= 0 && var.redis_replicas <= 5 && floor(var.redis_replicas) == var.redis_replicas}",
        "${var.redis_replicas >= 1 || !var.multi_az}"]
    (group,) = data["resource"]["aws_elasticache_replication_group"].values()
    assert group["num_cache_clusters"] == "${(1 + var.redis_replicas)}"
    assert group["automatic_failover_enabled"] == "${(var.redis_replicas > 0)}"
    assert group["multi_az_enabled"] == "${var.multi_az}"
    assert group["preferred_cache_cluster_azs"].endswith(", 0, (1 + var.redis_replicas))}")
    node_ids = blocks(data, "output")["redis_node_ids"]["value"]
    assert "var.redis_replicas" in node_ids and "-001" not in node_ids
    observability = module_doc(exported, "observability")
    alarms = observability["resource"]["aws_cloudwatch_metric_alarm"]
    per_node = {name: alarm for name, alarm in alarms.items()
                if "CacheClusterId" in json.dumps(alarm) and "no_primary" not in name}
    assert sorted(name.rsplit("_", 1)[0] for name in per_node) == [
        "observability_alarm_redis_cpu_001", "observability_alarm_redis_evictions_001",
        "observability_alarm_redis_memory_001"]
    assert all(a["count"] == "${length(var.data_redis_node_ids)}" and
               a["dimensions"] == {"CacheClusterId": "${element(var.data_redis_node_ids, count.index)}"}
               for a in per_node.values())
    (primary,) = [a for name, a in alarms.items() if "no_primary" in name]
    assert primary["dynamic"]["metric_query"]["for_each"] == "${var.data_redis_node_ids}"
    assert [q["id"] for q in primary["metric_query"]] == ["primaries"]


def test_the_redis_node_count_is_not_baked_into_the_modules(exported: Path, tmp_path: Path) -> None:
    """An environment with another replica count exports the same modules: only the default
    of `redis_replicas` differs."""
    env = load_environment("prod")
    three = env.model_copy(update={"data": env.data.model_copy(update={"redis_replicas": 2})})
    export_modules(three, tmp_path, ("data", "observability"))
    assert module_doc(tmp_path, "observability") == module_doc(exported, "observability")
    data = module_doc(tmp_path, "data")
    assert data["variable"]["redis_replicas"].pop("default") == 2
    expected = module_doc(exported, "data")
    expected["variable"]["redis_replicas"].pop("default")
    assert data == expected


def test_the_database_size_is_not_baked_into_the_gateway_or_observability(exported: Path, tmp_path: Path) -> None:
    """Another class and storage export the same gateway and observability modules: their pool
    and database alarms are expressions over the data module's outputs, and only the data
    module's defaults differ."""
    env = load_environment("prod")
    larger = env.model_copy(update={"data": env.data.model_copy(update={"db_instance_class": "db.r7g.xlarge",
                                                                         "db_storage_gb": 50})})
    export_modules(larger, tmp_path, ("data", "gateway", "observability"))
    for layer in ("gateway", "observability"):
        assert module_doc(tmp_path, layer) == module_doc(exported, layer), layer
        fixed = (tmp_path / layer / "README.md").read_text().split("Fixed at export")[1].split("\n")[0]
        assert "`data.db_instance_class`" not in fixed and "`data.db_storage_gb`" not in fixed, layer
    data = module_doc(tmp_path, "data")
    assert data["variable"]["db_instance_class"].pop("default") == "db.r7g.xlarge"
    assert data["variable"]["db_storage_gb"].pop("default") == 50
    expected = module_doc(exported, "data")
    expected["variable"]["db_instance_class"].pop("default")
    expected["variable"]["db_storage_gb"].pop("default")
    assert data == expected


def test_the_database_size_reaches_the_pool_and_alarms_through_the_data_outputs(exported: Path) -> None:
    """The data module's db_max_connections is the lookup its parameter group sets; the gateway's
    pool and the observability module's thresholds are arithmetic over the inputs wired from it."""
    from modules.catalogue.alarms import DB_MEMORY_GIB, max_connections
    data = module_doc(exported, "data")
    (table,) = [value for name, value in data["locals"].items() if name.startswith("data_db_max_connections_by_class")]
    assert table == {name: max_connections(name) for name in DB_MEMORY_GIB}
    (parameters,) = data["resource"]["aws_db_parameter_group"].values()
    (set_by_group,) = [p["value"] for p in parameters["parameter"] if p["name"] == "max_connections"]
    assert blocks(data, "output")["db_max_connections"]["value"] == set_by_group
    assert "[var.db_instance_class]" in set_by_group
    assert blocks(data, "output")["db_storage_gb"]["value"] == "${var.db_storage_gb}"
    alarms = module_doc(exported, "observability")["resource"]["aws_cloudwatch_metric_alarm"]
    thresholds = {name.rsplit("_", 1)[0]: alarm.get("threshold") for name, alarm in alarms.items()}
    assert thresholds["observability_alarm_rds_connections"] == \
        "${floor((((var.data_db_max_connections * 80) / 100) + 0.5))}"
    assert "var.data_db_storage_gb * 1073741824" in thresholds["observability_alarm_rds_free_storage_share"]
    gateway = module_doc(exported, "gateway")
    configs = [local for name, local in gateway["locals"].items() if "_containers_" in name]
    pool = ("\\\"database_connection_pool_limit\\\": ${floor(((var.data_db_max_connections - 10) / "
            "floor(((var.gateway_max_tasks * 200) / 100))))}, ")
    assert configs and all(pool in config for config in configs)
    assert blocks(gateway, "variable")["data_db_max_connections"]["type"] == "number"
