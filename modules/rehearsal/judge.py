"""Judging the plan made right after apply (`terraform show -json`): what a clean stack must show.

Every changed resource lands in exactly one category:
- explained: each changed attribute is a row's (differences.explain_drift), counted by row;
- replaced: a delete and create, never accepted silently: counted on its own, with the rows
  that explain it (its evidence) or as unexplained;
- knock-on: an update with no change of its own (only values known after apply), accepted only
  when it depends (configuration reference, depends_on, or the state's recorded dependencies)
  on an explained or accepted change;
- unexplained: anything else. Each fails the stack.
Refresh-only drift (`resource_drift` of a resource the plan leaves alone) and output changes
are judged the same way: drift needs a row for its attributes, an output change a changed
resource it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modules.rehearsal.differences import changes as attribute_changes
from modules.rehearsal.differences import explain_drift

QUIET = (["no-op"], ["read"])


@dataclass
class Judgement:
    explained: dict[str, int] = field(default_factory=dict)  # row name -> resources it explains
    replaced: list[dict[str, Any]] = field(default_factory=list)  # {address, rows, attributes, explained}
    knock_on: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # one readable line each
    notes: list[str] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # every resource address the plan or refresh touches

    @property
    def ok(self) -> bool:
        return not self.unexplained and all(r["explained"] for r in self.replaced)


def _base(address: str) -> str:
    """`aws_x.y[0]` -> `aws_x.y`; `data.aws_x.y` stays; references may name an attribute (`aws_x.y.arn`)."""
    return re.sub(r"\[[^\]]*\]$", "", address)


def _ref_target(reference: str) -> str | None:
    parts = reference.split(".")
    if parts[0] in ("var", "local", "path", "each", "count", "self", "terraform"):
        return None
    return ".".join(parts[:3] if parts[0] == "data" else parts[:2])


def dependencies(plan: dict[str, Any]) -> dict[str, set[str]]:
    """Resource (base address) -> what it depends on: configuration references and depends_on,
    and the dependencies Terraform recorded in the state (those see through locals)."""
    deps: dict[str, set[str]] = {}

    def refs(node: Any) -> set[str]:
        found: set[str] = set()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "references" and isinstance(value, list):
                    found |= {t for t in map(_ref_target, value) if t}
                else:
                    found |= refs(value)
        elif isinstance(node, list):
            for value in node:
                found |= refs(value)
        return found

    for resource in plan.get("configuration", {}).get("root_module", {}).get("resources", []):
        deps.setdefault(resource["address"], set()).update(
            refs(resource.get("expressions", {})) | {_base(d) for d in resource.get("depends_on", [])})
    for resource in plan.get("prior_state", {}).get("values", {}).get("root_module", {}).get("resources", []):
        deps.setdefault(_base(resource["address"]), set()).update(_base(d) for d in resource.get("depends_on", []))
    return deps


def judge(plan: dict[str, Any]) -> Judgement:
    verdict = Judgement()
    knock_on: list[str] = []
    accepted: set[str] = set()
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        if actions in QUIET:
            continue
        verdict.changed.add(change["address"])
        before, after = change["change"].get("before") or {}, change["change"].get("after") or {}
        changed = attribute_changes(before, after, change["change"].get("after_unknown") or {})
        rows = explain_drift(change["type"], changed, before) if changed else ()
        names = [row.name for row in rows]
        if "delete" in actions and "create" in actions:
            verdict.replaced.append({"address": change["address"], "rows": names, "explained": bool(rows),
                                     "attributes": sorted(changed) or sorted(
                                         "/".join(map(str, p)) for p in change.get("replace_paths") or [])})
            if rows:
                accepted.add(_base(change["address"]))
            else:
                verdict.unexplained.append(f"{change['address']} would be REPLACED ({', '.join(sorted(changed)[:6])})")
        elif not changed and actions == ["update"]:
            knock_on.append(change["address"])
        elif rows:
            for name in names:
                verdict.explained[name] = verdict.explained.get(name, 0) + 1
            accepted.add(_base(change["address"]))
            verdict.notes.append(f"emulator difference {', '.join(names)}: {change['address']} "
                                 f"({'/'.join(actions)}) is a false drift")
        else:
            keys = list(changed) or sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            verdict.unexplained.append(f"{change['address']} would {'/'.join(actions)} ({', '.join(keys[:6])})")
    _judge_knock_on(verdict, knock_on, accepted, dependencies(plan))
    _judge_refresh_drift(verdict, plan)
    _judge_outputs(verdict, plan, accepted)
    return verdict


def _judge_knock_on(verdict: Judgement, knock_on: list[str], accepted: set[str],
                    deps: dict[str, set[str]]) -> None:
    """Accept, to a fixed point, each update that depends on an accepted change."""
    pending = list(knock_on)
    while True:
        follows = [a for a in pending if deps.get(_base(a), set()) & accepted]
        if not follows:
            break
        for address in follows:
            pending.remove(address)
            verdict.knock_on.append(address)
            accepted.add(_base(address))
    if verdict.knock_on:
        verdict.notes.append(f"updates that follow from the explained ones: {', '.join(verdict.knock_on)}")
    for address in pending:
        verdict.unexplained.append(f"{address} would update with values known only after apply, "
                                   f"and depends on no explained change")


def _judge_refresh_drift(verdict: Judgement, plan: dict[str, Any]) -> None:
    """Drift the refresh found on a resource the plan itself leaves alone. Drift of an attribute
    the configuration sets, or that a change of the plan reads (`relevant_attributes`), needs a
    row; drift of one only other resources set (a bucket's `versioning` after its
    aws_s3_bucket_versioning, a security group's rules after its rule resources) is what AWS
    shows too, and is only noted."""
    configured = {r["address"]: set(r.get("expressions", {}))
                  for r in plan.get("configuration", {}).get("root_module", {}).get("resources", [])}
    relevant = {(r["resource"], str(r["attribute"][0])) for r in plan.get("relevant_attributes", [])
                if r.get("attribute")}
    computed = []
    for drift in plan.get("resource_drift", []):
        address = drift["address"]
        if address in verdict.changed or drift.get("mode") == "data":
            continue
        before, after = drift["change"].get("before") or {}, drift["change"].get("after") or {}
        changed = {k: v for k, v in attribute_changes(before, after, {}).items()
                   if k in configured.get(_base(address), set()) or (address, k) in relevant}
        if not changed:
            computed += [address] if attribute_changes(before, after, {}) else []
            continue
        verdict.changed.add(address)
        rows = explain_drift(drift["type"], changed, before)
        if rows:
            for row in rows:
                verdict.explained[row.name] = verdict.explained.get(row.name, 0) + 1
            verdict.notes.append(f"emulator difference {', '.join(r.name for r in rows)}: {address} "
                                 f"drifted on refresh ({', '.join(sorted(changed))})")
        else:
            verdict.unexplained.append(f"{address} drifted on refresh ({', '.join(sorted(changed)[:6])})")
    if computed:
        verdict.notes.append(f"refresh read attributes other resources set (not drift): {', '.join(computed)}")


def _judge_outputs(verdict: Judgement, plan: dict[str, Any], accepted: set[str]) -> None:
    """An output may change only because a resource it reads changed acceptably."""
    outputs = plan.get("configuration", {}).get("root_module", {}).get("outputs", {})
    for name, change in (plan.get("output_changes") or {}).items():
        if change.get("actions") in QUIET:
            continue
        reads = {t for t in map(_ref_target, outputs.get(name, {}).get("expression", {}).get("references", [])) if t}
        if not reads & accepted:
            verdict.unexplained.append(f"output {name} would {'/'.join(change.get('actions', []))} "
                                       f"though nothing it reads changed acceptably")
