"""The plan guard: refuse a saved plan that deletes or replaces a resource holding data.

Reads a plan's JSON (`terraform show -json <plan>`): every `resource_changes` entry whose
actions include "delete" (a destroy, or either kind of replacement) is refused when the
resource holds data — its address is pinned in tests/stateful_addresses.json for its stack,
or its type is one of DATA_TYPES — unless the committed allow-file (ALLOW_FILE) names that
stack and address with a reason and an expiry date not yet passed. `removed` blocks with
`destroy = false` plan a "forget", which deletes nothing and passes.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
STATEFUL_ADDRESSES = ROOT / "tests" / "stateful_addresses.json"
ALLOW_FILE = ROOT / "plan-guard-allow.toml"
# Types that hold data whatever their address (modules.parts.storage.STATEFUL_TYPES and more:
# a test keeps them in step).
DATA_TYPES = frozenset({
    "aws_s3_bucket", "aws_kms_key", "aws_kms_replica_key", "aws_db_instance", "aws_rds_cluster",
    "aws_dynamodb_table", "aws_elasticache_replication_group", "aws_elasticache_cluster",
    "aws_secretsmanager_secret", "aws_cognito_user_pool", "aws_cloudwatch_log_group", "aws_efs_file_system",
    "aws_ebs_volume", "aws_sqs_queue", "aws_iam_service_linked_role", "aws_backup_vault",
})


@dataclass(frozen=True)
class Allowance:
    stack: str
    address: str
    reason: str
    expires: dt.date


@dataclass(frozen=True)
class Finding:
    stack: str
    address: str
    actions: tuple[str, ...]
    allowed_by: Allowance | None

    @property
    def line(self) -> str:
        what = "replaces" if "create" in self.actions else "deletes"
        if self.allowed_by:
            return (f"- allowed: `{self.stack}` {what} `{self.address}` ({self.allowed_by.reason}; "
                    f"allowed until {self.allowed_by.expires})")
        return (f"- **refused**: `{self.stack}` {what} `{self.address}`, which holds data. To mean it, add "
                f"`[[allow]] stack/address/reason/expires` for it to {ALLOW_FILE.name}.")


class AllowFileError(Exception):
    pass


def load_allowances(path: Path = ALLOW_FILE, today: dt.date | None = None) -> list[Allowance]:
    """The allow-file's entries still in force; a malformed entry is an error, an expired one is ignored."""
    if not path.is_file():
        return []
    today = today or dt.date.today()
    entries, problems = [], []
    for i, raw in enumerate(tomllib.loads(path.read_text()).get("allow", [])):
        missing = [k for k in ("stack", "address", "reason", "expires") if not raw.get(k)]
        if missing or not isinstance(raw.get("expires"), dt.date):
            problems.append(f"allow[{i}]: needs stack, address, a reason and expires = YYYY-MM-DD "
                            f"(missing or wrong: {', '.join(missing) or 'expires'})")
            continue
        if raw["expires"] >= today:
            entries.append(Allowance(raw["stack"], raw["address"], raw["reason"], raw["expires"]))
    if problems:
        raise AllowFileError(f"{path.name}: " + "; ".join(problems))
    return entries


def stateful_addresses(path: Path = STATEFUL_ADDRESSES) -> dict[str, set[str]]:
    return {stack: set(addresses) for stack, addresses in json.loads(path.read_text()).items()}


def check(stack: str, plan: dict[str, Any], allowances: list[Allowance],
          pinned: dict[str, set[str]] | None = None) -> list[Finding]:
    """Every delete or replace of a data-holding resource in `plan` (a `terraform show -json`)."""
    pinned = stateful_addresses() if pinned is None else pinned
    findings = []
    for change in plan.get("resource_changes", []):
        actions = tuple(change["change"]["actions"])
        if "delete" not in actions or change.get("mode") == "data":
            continue
        address = change["address"]
        if change["type"] not in DATA_TYPES and address not in pinned.get(stack, set()):
            continue
        allowed = next((a for a in allowances if a.stack == stack and a.address == address), None)
        findings.append(Finding(stack, address, actions, allowed))
    return findings


def refused(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.allowed_by is None]


def report(findings: list[Finding]) -> str:
    """The guard's part of the plan summary (markdown)."""
    if not findings:
        return "Plan guard: no resource holding data is deleted or replaced."
    head = (f"Plan guard: {len(refused(findings))} refused, {len(findings) - len(refused(findings))} allowed "
            "deletions or replacements of resources holding data.")
    return "\n".join([head, "", *(f.line for f in findings)])
