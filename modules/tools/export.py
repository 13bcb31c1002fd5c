"""Every layer as a self-contained Terraform module, for teams whose repositories are plain
Terraform (`python main.py --export-modules [--environment prod] [DIR]`).

The same layer constructs build the module as build the stacks: their typed inputs come from
module variables instead of other stacks (`<layer>_<field>`, e.g. `network_vpc_id`), and each
field of their typed outputs becomes a module output of the same name. Modules declare
`required_providers` with a version range and hold no provider or backend block. Structure
and sizing (zones, NAT per AZ, capacities, instance classes, names) are fixed at export from
the chosen environment; each module's README says which.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import typing
from pathlib import Path
from typing import Any

from cdktn import App, Fn, TerraformOutput, TerraformStack
from constructs import Construct

from modules.parts import packaging
from modules.config import Environment
from modules.layers.data import Data, DataOutputs
from modules.layers.edge import Edge, EdgeOutputs
from modules.layers.foundation import Foundation, FoundationOutputs
from modules.layers.gateway import Gateway, GatewayOutputs
from modules.layers.llm import Llm, LlmOutputs
from modules.engine.module_stack import ProviderRequirement, TFModuleOutput, TFModuleVariable
from modules.layers.network import SECURITY_GROUPS, Network, NetworkOutputs
from modules.layers.observability import Observability, Watched
from modules.layers.realtime import Realtime, RealtimeOutputs
from modules.engine.stacks import APP_CONTEXT

MODULES_DIR = Path(__file__).resolve().parents[2] / "terraform-modules"
AWS_PROVIDER = (">= 6.0, < 7.0", "hashicorp/aws")
OUTPUT_TYPES = {"foundation": FoundationOutputs, "network": NetworkOutputs, "edge": EdgeOutputs, "data": DataOutputs,
                "gateway": GatewayOutputs, "llm": LlmOutputs, "realtime": RealtimeOutputs}
EXPORTED_LAYERS = (*OUTPUT_TYPES, "observability")
TERRAFORM_TYPES = {str: "string", int: "number", list[str]: "list(string)", dict[str, str]: "map(string)"}


class ExportError(Exception):
    pass


def field_types(outputs: type) -> dict[str, Any]:
    return typing.get_type_hints(outputs)


class Inputs:
    """Another layer's typed outputs, read from module variables named `<layer>_<field>`.

    A variable is declared the first time a layer reads the field, so a module asks for
    exactly what it uses. Lists and maps have the shape of the exported environment."""

    def __init__(self, stack: Construct, layer: str, env: Environment) -> None:
        self._stack, self._layer, self._env = stack, layer, env
        self._types = field_types(OUTPUT_TYPES[layer])
        self._values: dict[str, Any] = {}

    def __getattr__(self, field: str) -> Any:
        if field.startswith("_"):
            raise AttributeError(field)
        if field not in self._values:
            kind = self._types[field]
            variable = TFModuleVariable(self._stack, f"{self._layer}_{field}", type=TERRAFORM_TYPES[kind],
                                        description=f"{field} output of the {self._layer} module")
            if kind == dict[str, str]:
                self._values[field] = {key: Fn.lookup(variable.value, key) for key in self._keys(field)}
            elif kind == list[str]:
                self._values[field] = [Fn.element(variable.list_value, i) for i in range(self._length(field))]
            else:
                self._values[field] = variable.number_value if kind is int else variable.string_value
        return self._values[field]

    def _keys(self, field: str) -> list[str]:
        return {"security_group_ids": list(SECURITY_GROUPS), "replica_kms_key_arns": [],
                "function_names": list(packaging.FUNCTIONS)}[field]

    def _length(self, field: str) -> int:
        if field == "redis_node_ids":
            return 1 + self._env.data.redis_replicas
        return len(self._env.network.availability_zones)  # subnet lists: one per zone


def with_settings(stack: Construct, env: Environment, layer: str) -> Environment:
    """The environment with the settings a consumer changes replaced by module variables
    (their defaults are the exported environment's values). Only settings that flow straight
    into resource arguments qualify: a token cannot take part in Python arithmetic."""
    def variable(name: str, default: Any, description: str) -> Any:
        kind = "number" if isinstance(default, int) else "string"
        var = TFModuleVariable(stack, name, type=kind, default=default, description=description)
        return var.number_value if kind == "number" else var.string_value

    updates: dict[str, Any] = {
        "project": variable("project", env.project, "Name prefix of every resource (`<project>-<environment>-…`)"),
        "name": variable("environment", env.name, "Environment part of every resource name"),
    }
    if layer != "observability":
        updates["foundation"] = env.foundation.model_copy(update={"log_retention_days": variable(
            "log_retention_days", env.foundation.log_retention_days, "Retention of every log group (days)")})
    if layer == "edge":
        updates["edge"] = env.edge.model_copy(update={"certificate_arn": variable(
            "certificate_arn", env.edge.certificate_arn, "ACM certificate of the HTTPS listeners (same region)")})
    if layer == "llm":
        updates["llm"] = env.llm.model_copy(update={"certificate_arn": variable(
            "certificate_arn", env.llm.certificate_arn,
            "ACM certificate of the internal model listener: must cover the private name (same region)")})
    if layer == "gateway":
        capacity = env.gateway.capacity.model_construct(**{
            bound: variable(f"gateway_{bound}_tasks", getattr(env.gateway.capacity, bound),
                            f"{bound} number of LiteLLM tasks") for bound in ("min", "desired", "max")})
        updates["gateway"] = env.gateway.model_copy(update={
            "image": variable("gateway_image", env.gateway.image, "LiteLLM image (pinned tag or digest)"),
            "capacity": capacity})
    # model_copy does not validate: the tokens stand in for values validated at export.
    return env.model_copy(update=updates)


def build_module(app: App, env: Environment, layer: str) -> TerraformStack:
    stack = TerraformStack(app, layer)
    ProviderRequirement(stack, "aws", *AWS_PROVIDER)
    env = with_settings(stack, env, layer)

    def inputs(name: str) -> Any:
        return Inputs(stack, name, env)

    if layer == "foundation":
        construct: Any = Foundation(stack, layer, env=env)
    elif layer == "network":
        construct = Network(stack, layer, env=env, kms_key_arn=inputs("foundation").kms_key_arn)
    elif layer == "edge":
        construct = Edge(stack, layer, env=env, network=inputs("network"), foundation=inputs("foundation"))
    elif layer == "data":
        construct = Data(stack, layer, env=env, network=inputs("network"), foundation=inputs("foundation"))
    elif layer == "gateway":
        construct = Gateway(stack, layer, env=env, network=inputs("network"), foundation=inputs("foundation"),
                            data=inputs("data"), edge=inputs("edge"), llm=inputs("llm"))
    elif layer == "llm":
        construct = Llm(stack, layer, env=env, network=inputs("network"), foundation=inputs("foundation"))
    elif layer == "realtime":
        construct = Realtime(stack, layer, env=env, network=inputs("network"), foundation=inputs("foundation"),
                             data=inputs("data"))
    else:
        construct = Observability(stack, layer, env=env, foundation=inputs("foundation"), watched=Watched(
            edge=inputs("edge"), gateway=inputs("gateway"), data=inputs("data"), llm=inputs("llm"),
            realtime=inputs("realtime")))
    outputs = getattr(construct, "outputs", None)
    if outputs is not None:
        published = {c.node.id for c in construct.node.children if isinstance(c, TerraformOutput)}
        for field in dataclasses.fields(outputs):
            if field.name not in published:
                TFModuleOutput(stack, field.name, value=getattr(outputs, field.name),
                               description=f"{field.name} of the {layer} layer")
    return stack


def export_modules(env: Environment, target: Path, layers: tuple[str, ...] = EXPORTED_LAYERS) -> list[Path]:
    """Write one module directory per layer under `target`; nothing is written on error."""
    unknown = [layer for layer in layers if layer not in EXPORTED_LAYERS]
    if unknown:
        raise ExportError(f"unknown layer(s) {', '.join(unknown)}. Fix: choose from {', '.join(EXPORTED_LAYERS)}.")
    if env.data.dynamodb_replica_regions:
        raise ExportError(f"environment '{env.name}': data.dynamodb_replica_regions needs an aliased provider per "
                          "region, which a provider-less module cannot declare. Fix: export an environment "
                          "without replicas (e.g. --environment prod).")
    with tempfile.TemporaryDirectory() as scratch:
        app = App(outdir=scratch, context=APP_CONTEXT)
        for layer in layers:
            build_module(app, env, layer)
        app.synth()
        written = []
        staged = Path(scratch) / "modules"
        for layer in layers:
            source = Path(scratch) / "stacks" / layer
            doc = json.loads((source / "cdk.tf.json").read_text())
            doc.get("terraform", {}).pop("backend", None)
            module = staged / layer
            module.mkdir(parents=True)
            if (source / "assets").is_dir():
                shutil.copytree(source / "assets", module / "assets")
            # Terraform resolves file paths from the caller's directory; a module's own files
            # are found through path.module.
            text = json.dumps(doc, indent=2, sort_keys=True).replace('"assets/', '"${path.module}/assets/')
            (module / "main.tf.json").write_text(text + "\n")
            (module / "README.md").write_text(module_readme(env, layer, json.loads(text)))
            written.append(target / layer)
        for layer in layers:
            if (target / layer).exists():
                shutil.rmtree(target / layer)
            target.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staged / layer), target / layer)
    return written


def blocks(doc: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """`variable`/`output` blocks by name (Terraform JSON allows a block or a list of one)."""
    return {name: body[0] if isinstance(body, list) else body for name, body in doc.get(kind, {}).items()}


def module_readme(env: Environment, layer: str, doc: dict[str, Any]) -> str:
    variables, outputs = blocks(doc, "variable"), blocks(doc, "output")
    lines = [f"# {layer} module", "",
             f"The `{layer}` layer of the LLM platform as a plain Terraform module, exported from the "
             f"`{env.name}` environment (`python main.py --export-modules --environment {env.name}`). Do not "
             "edit: regenerate.", "",
             "Settings with a default below (names, log retention, certificate, gateway image and task "
             f"counts) may be changed by the caller. Fixed at export from `{env.name}`: region {env.region}, "
             f"zones {', '.join(env.network.availability_zones)}, every other size and switch of "
             f"`environments/{env.name}/environment.toml`, protection {'on' if env.protect_stateful else 'off'}; "
             "ECR pull rights follow the exported image's registry.", "",
             "## Requirements", "", "| name | version |", "|---|---|",
             "| terraform | >= 1.11 |", f"| aws | {AWS_PROVIDER[0]} |", "",
             "## Inputs", "", "| name | description | type | required |", "|---|---|---|---|"]
    lines += [f"| {name} | {v.get('description', '')} | `{v.get('type', 'any')}` | "
              + ("yes |" if "default" not in v else f"no (`{json.dumps(v['default'])}`) |")
              for name, v in sorted(variables.items())] or ["| — | none | | |"]
    lines += ["", "## Outputs", "", "| name | description |", "|---|---|"]
    lines += [f"| {name} | {v.get('description', '')} |" for name, v in sorted(outputs.items())]
    return "\n".join(lines) + "\n"
