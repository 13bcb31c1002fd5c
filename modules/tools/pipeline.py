"""The deploy pipeline's commands (.github/workflows/): plan, guard, apply exactly what was reviewed.

    python -m modules.tools.pipeline order ENV [--synth-dir cdktf.out]        # deploy order, one stack a line
    python -m modules.tools.pipeline changed BASE_SYNTH HEAD_SYNTH [ENV] [--all]  # stacks whose Terraform differs
    python -m modules.tools.pipeline plan (ENV [--with-account] | --stacks S ...) --out DIR  # saved plans, summary, guard
    python -m modules.tools.pipeline apply DIR                                # apply DIR's saved plans, in order
    python -m modules.tools.pipeline bootstrap ENV                            # create <env>-state, move its state in

Exit codes (a workflow step fails on anything but 0, or 0 and 2 where changes are expected):
`plan` 0 no changes, 2 changes, 1 a stack failed to plan or the plan guard refused one;
`apply` 0 applied, 1 failed, 3 stopped: a later stack's plan changed once an earlier one
was applied, and needs a new review (re-run the workflow: it plans against what is deployed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modules.rehearsal.plan import dependency_order, load_stacks
from modules.rehearsal.terraform import ToolError
from modules.config import ENVIRONMENTS_DIR, ConfigError, account_of, load_accounts, load_environment
from modules.tools import migrate, plan_guard

STATE_LAYER = "state"  # modules.engine.stacks.STATE_LAYER; not imported here, it would load cdktn
LOCK_TIMEOUT = "-lock-timeout=10m"  # wait for another run's lock rather than fail at once
MANIFEST = "plans.json"
SYNTH = "synth"  # the plan directory's copy of the synth it was made from (apply runs there)
SUMMARY_LIMIT = 60_000  # below GitHub's 65,536 characters for a comment; the full plans are an artifact
CHANGED, UNCHANGED, FAILED, DEFERRED = "changes", "no changes", "failed", "deferred"


def deploy_order(synth_dir: Path, env: str) -> list[str]:
    """Every stack of `env`, producers first (the `<env>-state` stack too: it is in S3 once bootstrapped)."""
    return dependency_order(load_stacks(synth_dir, env))


def account_stack(env: str, root: Path | None = None) -> str | None:
    """`account-<name>` of the account `env` deploys to, when that stack's state lives in `env`'s
    state bucket (so `env`'s plan role may read it: modules/layers/account.py)."""
    root = root or ENVIRONMENTS_DIR
    environment, accounts = load_environment(env, root), load_accounts(root)
    name = account_of(environment, accounts)
    bucket = accounts[name].state_bucket
    return f"account-{name}" if bucket and bucket == environment.backend.bucket else None


def _fingerprints(synth_dir: Path) -> dict[str, str]:
    """Stack -> hash of its Terraform JSON without cdktn's metadata (paths, versions)."""
    prints = {}
    for name, entry in json.loads((synth_dir / "manifest.json").read_text())["stacks"].items():
        doc = json.loads((synth_dir / entry["synthesizedStackPath"]).read_text())
        doc.pop("//", None)
        prints[name] = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
    return prints


def changed_stacks(base: Path, head: Path, env: str | None = None, everything: bool = False) -> list[str]:
    """Stacks of `head` whose Terraform differs from `base` (all with `everything`: a new lock file,
    Terraform or provider changes what every plan does). State stacks are never listed: a pull
    request's read-only role cannot plan them usefully and they change only by bootstrap."""
    before = _fingerprints(base) if (base / "manifest.json").is_file() and not everything else {}
    after = _fingerprints(head)
    changed = sorted(s for s, h in after.items() if before.get(s) != h)
    return [s for s in changed if not s.endswith(f"-{STATE_LAYER}") and (env is None or s.rsplit("-", 1)[0] == env)]


def _terraform(stack_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["terraform", f"-chdir={stack_dir}", *args], text=True, capture_output=True)


@dataclass
class Planned:
    stack: str
    status: str            # CHANGED, UNCHANGED, FAILED or DEFERRED (its producer changes first)
    outputs_change: bool   # a later stack may read what changes
    plan_sha256: str = ""
    counts: str = ""


def _counts(plan: dict[str, Any]) -> str:
    tally: dict[str, int] = {}
    for change in plan.get("resource_changes", []):
        actions = change["change"]["actions"]
        key = "replace" if "delete" in actions and "create" in actions else actions[0]
        tally[key] = tally.get(key, 0) + 1
    return ", ".join(f"{n} to {k}" for k, n in sorted(tally.items()) if k not in ("no-op", "read")) or "nothing"


REFRESH_LINE = re.compile(r": (Refreshing state\.\.\.|Reading\.\.\.|Read complete after )")


def plan_stack(synth_dir: Path, stack: str, out: Path, lock: bool) -> tuple[int, dict[str, Any] | None, str]:
    """init, plan -out and show -json: the plan's exit code, its JSON and its text (the plan's
    own output without the refresh lines: what `terraform show` would print, one provider start fewer)."""
    stack_dir = (synth_dir / "stacks" / stack).resolve()
    plan_file = (out / f"{stack}.tfplan").resolve()
    done = _terraform(stack_dir, "init", "-input=false", "-no-color", LOCK_TIMEOUT)
    if done.returncode == 0:
        done = _terraform(stack_dir, "plan", "-input=false", "-no-color", "-detailed-exitcode",
                          LOCK_TIMEOUT if lock else "-lock=false", f"-out={plan_file}")
    if done.returncode not in (0, 2):
        return 1, None, done.stdout + done.stderr
    shown = _terraform(stack_dir, "show", "-json", str(plan_file))
    if shown.returncode:
        return 1, None, shown.stderr
    text = "\n".join(line for line in done.stdout.splitlines() if not REFRESH_LINE.search(line)).strip() + "\n"
    (out / f"{stack}.json").write_text(shown.stdout)
    (out / f"{stack}.txt").write_text(text)
    return done.returncode, json.loads(shown.stdout), text


def plan(synth_dir: Path, stacks: list[str], out: Path, markdown: Path | None, lock: bool = True,
         allow_file: Path = plan_guard.ALLOW_FILE) -> int:
    """Plan `stacks` (in order) into `out`; write the summary; 2 when any would change."""
    out.mkdir(parents=True, exist_ok=True)
    allowances = plan_guard.load_allowances(allow_file)
    dependencies = _dependencies(synth_dir)
    results: list[Planned] = []
    findings: list[plan_guard.Finding] = []
    details = []
    for stack in stacks:
        code, doc, text = plan_stack(synth_dir, stack, out, lock)
        upstream_changes = any(r.outputs_change or r.status == DEFERRED for r in results
                               if r.stack in dependencies.get(stack, ()))
        if doc is None:
            status = DEFERRED if upstream_changes else FAILED
            (out / f"{stack}.txt").write_text(text)
            results.append(Planned(stack, status, outputs_change=True))
        else:
            outputs = any(c["actions"] != ["no-op"] for c in doc.get("output_changes", {}).values())
            plan_bytes = (out / f"{stack}.tfplan").read_bytes()
            results.append(Planned(stack, CHANGED if code == 2 else UNCHANGED, outputs,
                                   hashlib.sha256(plan_bytes).hexdigest(), _counts(doc)))
            findings += plan_guard.check(stack, doc, allowances)
        if results[-1].status != UNCHANGED:
            details.append((stack, "\n".join(text.splitlines()[-400:])))
    _copy_synth(synth_dir, stacks, out / SYNTH)
    (out / MANIFEST).write_text(json.dumps({"stacks": [asdict(r) for r in results]}, indent=2))
    summary = _summary(results, findings, details)
    if markdown:
        markdown.write_text(summary)
    print(summary.split("\n\n<details>")[0])
    if any(r.status == FAILED for r in results) or plan_guard.refused(findings):
        return 1
    return 2 if any(r.status in (CHANGED, DEFERRED) for r in results) else 0


def _copy_synth(synth_dir: Path, stacks: list[str], target: Path) -> None:
    """The planned stacks' configuration (not their .terraform): what the apply job initialises."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    shutil.copy2(synth_dir / "manifest.json", target / "manifest.json")
    for stack in stacks:
        shutil.copytree(synth_dir / "stacks" / stack, target / "stacks" / stack,
                        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", "errored.tfstate"))


def _dependencies(synth_dir: Path) -> dict[str, tuple[str, ...]]:
    manifest = json.loads((synth_dir / "manifest.json").read_text())["stacks"]
    return {name: tuple(entry.get("dependencies", ())) for name, entry in manifest.items()}


def _summary(results: list[Planned], findings: list[plan_guard.Finding], details: list[tuple[str, str]]) -> str:
    """Markdown for the step summary and the pull request: a table, the guard, then each changed
    plan's text, cut to stay below SUMMARY_LIMIT (the full plans are the artifact)."""
    rows = ["| stack | plan | changes |", "|---|---|---|"]
    rows += [f"| {r.stack} | {r.status} | {r.counts or '-'} |" for r in results]
    head = "\n".join([*rows, "", plan_guard.report(findings)])
    if any(r.status == DEFERRED for r in results):
        head += ("\n\nDeferred: a stack it reads changes first; it is planned again once that one is applied, "
                 "and applied only after a new review.")
    body = ""
    for stack, text in details:
        block = f"\n\n<details><summary>{stack}</summary>\n\n```\n{text}\n```\n</details>"
        if len(head) + len(body) + len(block) > SUMMARY_LIMIT:
            body += "\n\n(further plans cut to stay below GitHub's limit: see the plans artifact)"
            break
        body += block
    return head + body + "\n"


def _changes(plan: dict[str, Any]) -> list[str]:
    """What a plan would do, comparable between two plans of one stack."""
    return sorted(json.dumps([c["address"], c["change"]["actions"], c["change"].get("after"),
                              c["change"].get("after_unknown")], sort_keys=True)
                  for c in plan.get("resource_changes", []) if c["change"]["actions"] not in (["no-op"], ["read"]))


def apply(plans: Path) -> int:
    """Apply the saved plans of `plans` (a `plan --out` directory, with the synth they were made
    from) in their order. A stack whose producer changed outputs in this run is planned again;
    it is applied only if that plan makes the same changes as the reviewed one, else the run
    stops (exit 3) for a new review."""
    manifest = json.loads((plans / MANIFEST).read_text())
    synth_dir = plans / SYNTH
    dependencies = _dependencies(synth_dir)
    moved: set[str] = set()  # stacks applied in this run whose outputs changed
    for entry in manifest["stacks"]:
        stack, status = entry["stack"], entry["status"]
        stack_dir = synth_dir / "stacks" / stack
        plan_file = (plans / f"{stack}.tfplan").resolve()
        if status == FAILED:
            print(f"::error::{stack} failed to plan; nothing after it is applied")
            return 1
        if moved & set(dependencies.get(stack, ())) or status == DEFERRED:
            verdict = _replan(synth_dir, stack, plans, status)
            if verdict == SKIP:
                continue
            if verdict != APPLY:
                return int(verdict)
        elif status == UNCHANGED:
            continue
        elif hashlib.sha256(plan_file.read_bytes()).hexdigest() != entry["plan_sha256"]:
            print(f"::error::{stack}: the saved plan is not the one reviewed")
            return 1
        migration = _migrate_before(plans, stack)
        if migration == 1:
            return 1
        print(f"::group::apply {stack}", flush=True)
        done = _terraform_shown(stack_dir, "init", "-input=false", LOCK_TIMEOUT)
        if done == 0:
            done = _terraform_shown(stack_dir, "apply", "-input=false", LOCK_TIMEOUT, str(plan_file))
        print("::endgroup::", flush=True)
        if done != 0:
            _keep_errored_state(stack_dir, plans, stack)
            print(f"::error::{stack}: terraform apply failed; later stacks not applied")
            return 1
        if migration == 2 and migrate.migrate(load_environment(stack.rsplit("-", 1)[0])) != 0:
            return 1  # a first deploy: the definition exists now
        if entry["outputs_change"]:
            moved.add(stack)
    return 0


def _migrate_before(plans: Path, stack: str) -> int | None:
    """Where the reviewed plan changes the proxy's migration task, LiteLLM's schema migrations
    run before the stack is applied (0 done, 1 failed, 2 after the apply); None: no migration."""
    shown = plans / f"{stack}.json"
    change = migrate.planned_definition(json.loads(shown.read_text())) if shown.is_file() else None
    if change is None:
        return None
    return migrate.migrate(load_environment(stack.rsplit("-", 1)[0]), reviewed=change)


def _terraform_shown(stack_dir: Path, *args: str) -> int:
    """Terraform with its output in the log (an apply's progress is worth watching)."""
    return subprocess.run(["terraform", f"-chdir={stack_dir}", *args]).returncode


APPLY, SKIP = "apply", "skip"


def _replan(synth_dir: Path, stack: str, plans: Path, status: str) -> str | int:
    """Plan `stack` again after its producers changed: APPLY the fresh plan (written over the
    reviewed one: it makes the same changes), SKIP it (no changes either way), or an exit code:
    1 failed, 3 stop for a new review."""
    fresh_dir = plans / "replanned"
    fresh_dir.mkdir(exist_ok=True)
    code, fresh, text = plan_stack(synth_dir, stack, fresh_dir, lock=True)
    if fresh is None:
        print(f"::error::{stack}: planning again after its producers were applied failed:\n{text[-3000:]}")
        return 1
    reviewed_json = plans / f"{stack}.json"
    reviewed = json.loads(reviewed_json.read_text()) if status != DEFERRED else {}
    if code == 0 and not _changes(reviewed):
        return SKIP
    if status != DEFERRED and _changes(reviewed) == _changes(fresh):
        shutil.copy(fresh_dir / f"{stack}.tfplan", plans / f"{stack}.tfplan")
        return APPLY
    print(f"::error::{stack}: once the stacks it reads were applied, its plan differs from the reviewed one. "
          f"Stopped: re-run the workflow to review the new plan ({fresh_dir / (stack + '.txt')}).")
    return 3


def _keep_errored_state(stack_dir: Path, plans: Path, stack: str) -> None:
    """Terraform writes errored.tfstate when it cannot save state after an apply: keep it for the
    workflow to encrypt and upload (it holds what was created; `terraform state push` restores it)."""
    errored = stack_dir / "errored.tfstate"
    if errored.is_file():
        (plans / "errored").mkdir(exist_ok=True)
        shutil.move(errored, plans / "errored" / f"{stack}.tfstate")
        print(f"::warning::{stack}: errored.tfstate kept (see the README's force-unlock and recovery runbook)")


def bootstrap(synth_dir: Path, env: str) -> int:
    """Create `<env>-state` (the bucket every other stack's state lives in) with a local state
    file, then push that state into the bucket it created: one command, run once per environment."""
    stack = f"{env}-{STATE_LAYER}"
    stack_dir = synth_dir / "stacks" / stack
    local = stack_dir / "bootstrap.tfstate"
    override = stack_dir / "bootstrap_override.tf.json"  # Terraform merges *_override files over the stack
    override.write_text(json.dumps({"terraform": {"backend": {"local": {"path": local.name}}}}))
    try:
        for args in (["init", "-input=false", "-reconfigure"], ["apply", "-input=false", "-auto-approve"]):
            if subprocess.run(["terraform", f"-chdir={stack_dir}", *args]).returncode:
                print(f"bootstrap: terraform {args[0]} of {stack} failed; its state is in {local}", file=sys.stderr)
                return 1
    finally:
        override.unlink()
    for args in (["init", "-input=false", "-reconfigure"], ["state", "push", local.name]):
        if subprocess.run(["terraform", f"-chdir={stack_dir}", *args]).returncode:
            print(f"bootstrap: terraform {args[0]} into the new bucket failed; the state is in {local}",
                  file=sys.stderr)
            return 1
    local.unlink()
    print(f"bootstrap: {stack} created and its state moved into its own bucket")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m modules.tools.pipeline", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=text, description=text)

    order = command("order", "an environment's stacks in deploy order")
    order.add_argument("environment", help="the environment whose stacks to list")
    changed = command("changed", "stacks whose synthesized Terraform differs")
    changed.add_argument("base", type=Path, help="the base branch's synth output (missing: every stack changed)")
    changed.add_argument("head", type=Path, help="this change's synth output")
    changed.add_argument("environment", nargs="?", help="only this environment's stacks (default: all)")
    changed.add_argument("--all", action="store_true", help="every stack (the toolchain changed)")
    planned = command("plan", "saved plans of an environment's (or the given) stacks")
    planned.add_argument("environment", nargs="?", help="the environment whose stacks to plan")
    planned.add_argument("--stacks", nargs="*", help="these stacks, in this order, instead of the environment's")
    planned.add_argument("--out", type=Path, required=True, help="the directory the saved plans are written to")
    planned.add_argument("--markdown", type=Path, help="where to write the plans' summary")
    planned.add_argument("--no-lock", action="store_true", help="plan without the state lock (pull requests)")
    planned.add_argument("--with-account", action="store_true",
                         help="also the account's stack, where its state lives in this environment's bucket")
    deploy = command("apply", "apply a plan directory's saved plans")
    deploy.add_argument("plans", type=Path, help="the directory `plan --out` wrote (reviewed)")
    boot = command("bootstrap", "create <env>-state and move its state into it")
    boot.add_argument("environment", help="the environment whose state bucket to create")
    for sub in (order, planned, boot):
        sub.add_argument("--synth-dir", type=Path, default=Path("cdktf.out"), help="the synth output (default: cdktf.out)")
    args = parser.parse_args(argv)
    try:
        if args.command == "apply":
            return apply(args.plans)
        if args.command == "bootstrap":
            return bootstrap(args.synth_dir, args.environment)
        if args.command == "plan":
            stacks = args.stacks if args.stacks is not None else deploy_order(args.synth_dir, args.environment)
            account = account_stack(args.environment) if args.with_account and args.environment else None
            stacks = [account, *stacks] if account else stacks
            return plan(args.synth_dir, stacks, args.out, args.markdown, lock=not args.no_lock)
        names = (deploy_order(args.synth_dir, args.environment) if args.command == "order"
                 else changed_stacks(args.base, args.head, args.environment, args.all))
    except (ToolError, FileNotFoundError, plan_guard.AllowFileError, ConfigError) as err:
        print(f"pipeline: {err}", file=sys.stderr)
        return 1
    print("\n".join(names))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
