"""The rehearsal copy of a synthesized stack, and the checks that keep it on the loopback emulator.

Pure functions over the stack's JSON (`cdk.tf.json`): what they change is returned as notes,
which the command prints. Nothing here runs a process.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

FAKE_CREDENTIALS = {"access_key": "test", "secret_key": "test"}


@dataclass(frozen=True)
class Gap:
    """A 6.x-only argument the mirror's 5.x provider rejects, stripped from rehearsal copies."""

    resource_type: str
    path: str  # dotted; `[]` steps into every element of a list of blocks
    why: str


# The synth targets provider 6.x (cdktf-cdktf-provider-aws 21.x); the local mirror has 5.100.0.
PROVIDER_GAP: tuple[Gap, ...] = (
    Gap("aws_dynamodb_table", "replica[].deletion_protection_enabled",
        "Per-replica deletion protection arrived in provider 6.x; 5.100.0 rejects the argument "
        "(\"Extraneous JSON object property\"). The table's own deletion_protection_enabled stays."),
    *(Gap("aws_elasticache_replication_group", path,
          "The write-only AUTH token arrived in provider 6.x; 5.100.0 rejects the argument, and its auth_token "
          "cannot take the ephemeral value instead: the rehearsal group has no AUTH token (the emulator checks "
          "none), while the secret is still written and read by ARN.")
      for path in ("auth_token_wo", "auth_token_wo_version")),
)


class UnsafeCopy(Exception):
    """A rehearsal copy that could reach something other than the loopback emulator."""


@dataclass(frozen=True)
class Target:
    """Where and as whom rehearsal copies run."""

    endpoint: str  # http://127.0.0.1:PORT
    endpoint_keys: tuple[str, ...]  # every service of the provider's `endpoints` block
    account_id: str
    state_dir: Path
    provider_version: str


def rehearsal_copy(doc: dict[str, Any], stack: str, target: Target) -> tuple[dict[str, Any], list[str]]:
    """The stack made safe to apply to the emulator, with a note per change. Raises UnsafeCopy."""
    out = copy.deepcopy(doc)
    notes = [*pin_provider(out, target.provider_version), *close_provider_gap(out, target.provider_version)]
    notes += local_state(out, stack, target.state_dir)
    notes += emulated_providers(out, target)
    check_loopback(out, target)
    return out, notes


def pin_provider(doc: dict[str, Any], version: str) -> list[str]:
    required = doc.get("terraform", {}).get("required_providers", {})
    notes = []
    for name, spec in required.items():
        if name == "aws" and spec.get("version") != version:
            notes.append(f"provider constraint {spec.get('version')!r} -> {version!r} (the local mirror's)")
            spec["version"] = version
    return notes


def close_provider_gap(doc: dict[str, Any], provider_version: str) -> list[str]:
    """Strip the 6.x-only arguments when the local provider is older than 6 (else nothing to do)."""
    if int(provider_version.split(".")[0]) >= 6:
        return []
    notes = []
    for gap in PROVIDER_GAP:
        for address, block in doc.get("resource", {}).get(gap.resource_type, {}).items():
            if _strip(block, gap.path.split(".")):
                notes.append(f"provider gap: removed {gap.resource_type}.{address}.{gap.path} ({gap.why})")
    return notes


def _strip(node: Any, steps: list[str]) -> bool:
    step, rest = steps[0], steps[1:]
    if step.endswith("[]"):
        items = node.get(step[:-2], []) if isinstance(node, dict) else []
        return any([_strip(item, rest) for item in items]) if isinstance(items, list) else False
    if not isinstance(node, dict) or step not in node:
        return False
    if not rest:
        del node[step]
        return True
    return _strip(node[step], rest)


def producer(name: str, remote: dict[str, Any]) -> str:
    """The stack whose state a `terraform_remote_state` reads (cdktn names it after that stack)."""
    if name.startswith("cross-stack-reference-input-"):
        return name.removeprefix("cross-stack-reference-input-")
    raise UnsafeCopy(f"remote state {name!r} is not a cdktn cross-stack reference; cannot map it to a local state")


def local_state(doc: dict[str, Any], stack: str, state_dir: Path) -> list[str]:
    """State in the rehearsal's own files: the backend and every remote state it reads."""
    terraform = doc.setdefault("terraform", {})
    before = next(iter(terraform.get("backend", {"local": {}})))
    terraform["backend"] = {"local": {"path": str(state_dir / f"{stack}.tfstate")}}
    notes = [f"backend {before} -> local {state_dir / f'{stack}.tfstate'}"] if before != "local" else []
    for name, remote in doc.get("data", {}).get("terraform_remote_state", {}).items():
        remote["backend"] = "local"
        remote["config"] = {"path": str(state_dir / f"{producer(name, remote)}.tfstate")}
        remote.pop("workspace", None)
    return notes


def emulated_providers(doc: dict[str, Any], target: Target) -> list[str]:
    """Every AWS provider block: fake credentials, all endpoints on the emulator, the account pinned."""
    for block in doc.get("provider", {}).get("aws", []):
        for key in ("profile", "shared_config_files", "shared_credentials_files", "assume_role",
                    "assume_role_with_web_identity", "token"):
            block.pop(key, None)
        block.update(FAKE_CREDENTIALS)
        block.update(skip_credentials_validation=True, skip_metadata_api_check=True, skip_region_validation=True,
                     s3_use_path_style=True, max_retries=3, sts_region=block.get("region", "us-east-1"),
                     endpoints=[{key: target.endpoint for key in target.endpoint_keys}])
        block.setdefault("allowed_account_ids", [target.account_id])
    return []


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_loopback(doc: dict[str, Any], target: Target) -> None:
    """Refuse a copy that could send an AWS call (or read state) anywhere but the local emulator."""
    if not is_loopback(target.endpoint):
        raise UnsafeCopy(f"emulator endpoint {target.endpoint} is not a loopback address")
    providers = set(doc.get("terraform", {}).get("required_providers", {})) | set(doc.get("provider", {}))
    if providers - {"aws"}:
        raise UnsafeCopy(f"providers other than aws ({', '.join(sorted(providers - {'aws'}))}) are not rehearsed")
    blocks = doc.get("provider", {}).get("aws", [])
    if not blocks:
        raise UnsafeCopy("no aws provider block: the provider would use the caller's environment")
    for block in blocks:
        label = f"provider aws{'.' + block['alias'] if 'alias' in block else ''}"
        endpoints = (block.get("endpoints") or [{}])[0]
        missing = [k for k in target.endpoint_keys if k not in endpoints]
        if missing or not target.endpoint_keys:
            raise UnsafeCopy(f"{label}: no emulator endpoint for {', '.join(missing[:5]) or 'any service'}")
        outside = sorted(k for k, url in endpoints.items() if not is_loopback(url))
        if outside:
            raise UnsafeCopy(f"{label}: endpoints not on loopback: {', '.join(outside)}")
        if {k: block.get(k) for k in FAKE_CREDENTIALS} != FAKE_CREDENTIALS:
            raise UnsafeCopy(f"{label}: credentials are not the rehearsal's fake ones")
        for key in ("profile", "assume_role", "assume_role_with_web_identity", "shared_credentials_files"):
            if block.get(key):
                raise UnsafeCopy(f"{label}: {key} would use a real identity")
        if target.account_id not in block.get("allowed_account_ids", [target.account_id]):
            raise UnsafeCopy(f"{label}: allowed_account_ids {block['allowed_account_ids']} exclude the "
                             f"emulator's account {target.account_id}")
    backend = doc.get("terraform", {}).get("backend", {})
    if list(backend) != ["local"]:
        raise UnsafeCopy(f"backend {', '.join(backend) or 'none'} is not local")
    for name, remote in doc.get("data", {}).get("terraform_remote_state", {}).items():
        if remote.get("backend") != "local":
            raise UnsafeCopy(f"remote state {name} reads backend {remote.get('backend')}, not a local file")


def account_of(docs: list[dict[str, Any]], default: str) -> str:
    """The account the stacks pin (`allowed_account_ids` of their provider blocks), else `default`."""
    accounts = {a for doc in docs for block in doc.get("provider", {}).get("aws", [])
                for a in block.get("allowed_account_ids", [])}
    if len(accounts) > 1:
        raise UnsafeCopy(f"the stacks allow different accounts ({', '.join(sorted(accounts))}); rehearse one "
                         "environment's account at a time")
    return accounts.pop() if accounts else default


def replace_strings(node: Any, old: str, new: str) -> tuple[Any, int]:
    """`node` with every occurrence of `old` inside its strings replaced; and how many were."""
    if isinstance(node, str):
        return node.replace(old, new), node.count(old)
    if isinstance(node, list):
        pairs = [replace_strings(x, old, new) for x in node]
        return [p[0] for p in pairs], sum(p[1] for p in pairs)
    if isinstance(node, dict):
        pairs = {k: replace_strings(v, old, new) for k, v in node.items()}
        return {k: p[0] for k, p in pairs.items()}, sum(p[1] for p in pairs.values())
    return node, 0


ACM_ARN = re.compile(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+")


def certificate_arns(doc: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, str):
            found.update(ACM_ARN.findall(node))
        elif isinstance(node, list):
            for x in node:
                walk(x)
        elif isinstance(node, dict):
            for x in node.values():
                walk(x)

    walk(doc)
    return found
