"""The per-stack steps: init, validate, apply, plan (no changes expected); destroy in reverse order."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from threading import Lock
from typing import Any

from modules.rehearsal import terraform as tf
from modules.rehearsal.differences import Seeded, apply_rewrites, destroy_retry, explain_drift
from modules.rehearsal.differences import changes as attribute_changes
from modules.rehearsal.emulator import MotoServer
from modules.rehearsal.plan import Stack
from modules.rehearsal.report import EnvironmentResult, StackResult
from modules.rehearsal.rewrite import Target, rehearsal_copy
from modules.rehearsal.smoke import LAYERS as SMOKE_LAYERS
from modules.rehearsal.smoke import run as run_smoke
from modules.rehearsal.smoke.deployment import Deployment, SmokeStep

ALIAS_WARNING = re.compile(r'Only one of the following attributes should be set: (.*)')
REFUSAL = "lifecycle.prevent_destroy"


def endpoint_keys(toolchain: tf.Toolchain, cli_config: Path, probe_dir: Path) -> tuple[str, ...]:
    """One key per service of the provider's `endpoints` block (aliases of a service dropped).

    The schema lists every key; the provider warns when two names of one service are set
    ("Only one of the following attributes should be set"), so a probe plan finds the aliases.
    Cached per provider version."""
    cache = probe_dir / f"endpoints-{toolchain.provider_version}.json"
    if cache.is_file():
        return tuple(json.loads(cache.read_text()))
    probe_dir.mkdir(parents=True, exist_ok=True)
    log = probe_dir / "terraform.log"
    config: dict[str, Any] = {"terraform": {"required_providers": {"aws": {
        "source": "hashicorp/aws", "version": toolchain.provider_version}}}}
    (probe_dir / "main.tf.json").write_text(json.dumps(config))
    tf.init(toolchain, cli_config, probe_dir, log, backend=False)
    keys = tf.provider_endpoint_keys(toolchain, cli_config, probe_dir)
    config["provider"] = {"aws": [{"region": "us-east-1", "access_key": "test", "secret_key": "test",
                                   "skip_credentials_validation": True, "skip_requesting_account_id": True,
                                   "skip_metadata_api_check": True,
                                   "endpoints": [{k: "http://127.0.0.1:9" for k in keys}]}]}
    config["data"] = {"aws_partition": {"probe": {}}}  # makes Terraform configure the provider, no API call
    config["output"] = {"partition": {"value": "${data.aws_partition.probe.partition}"}}
    (probe_dir / "main.tf.json").write_text(json.dumps(config))
    done = tf.run(toolchain, cli_config, ["plan", "-json", "-input=false", "-refresh=false"], probe_dir, log)
    aliases: set[str] = set()
    for line in done.stdout.splitlines():
        found = ALIAS_WARNING.search(json.loads(line).get("diagnostic", {}).get("detail", "")) if line.startswith(
            "{") else None
        if found:
            names = re.findall(r'endpoints\[0\]\.(\w+)', found.group(1))
            aliases.update(names[1:])  # the first name is the service's own
    if done.returncode not in (0, 2) and not aliases:
        raise tf.ToolError(f"probing the provider's endpoints failed: {tf.first_error(done.stdout + done.stderr)}")
    chosen = sorted(set(keys) - aliases)
    cache.write_text(json.dumps(chosen))
    return tuple(chosen)


def run_graph(order: list[str], needs: dict[str, set[str]], step: Callable[[str], bool], workers: int) -> None:
    """Run `step` on every node once all it `needs` are done, up to `workers` at a time.

    A node whose step returned False still counts as done: the caller decides what its
    dependents do about it (they can read the results)."""
    pending, running = list(order), {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        try:
            while pending or running:
                ready = [n for n in pending if not (needs[n] & (set(pending) | set(running)))]
                for name in ready[:workers - len(running)]:
                    pending.remove(name)
                    running[name] = pool.submit(step, name)
                finished, _ = wait(running.values(), return_when=FIRST_COMPLETED)
                for name in [n for n, f in running.items() if f in finished]:
                    running.pop(name).result()
        except KeyboardInterrupt:
            tf.STOPPING.set()  # the running steps end at their next Terraform command
            raise


class Rehearsal:
    """One environment's stacks brought up in dependency order (up to `workers` at a time),
    planned for drift, then torn down in reverse order."""

    def __init__(self, env: str, stacks: dict[str, Stack], order: list[str], target: Target, seeded: Seeded,
                 toolchain: tf.Toolchain, cli_config: Path, env_dir: Path, server: MotoServer,
                 smoke: bool = False) -> None:
        self.env, self.stacks, self.order, self.target, self.seeded = env, stacks, order, target, seeded
        self.toolchain, self.cli_config, self.env_dir, self.server = toolchain, cli_config, env_dir, server
        self.smoke = smoke  # after apply and re-plan, one request through what was deployed
        self.results = {name: StackResult(name) for name in order}
        self.applied: set[str] = set()  # something may exist: destroy it
        self.applied_ok: set[str] = set()  # applied without error (drift is reported, dependents still apply)
        self._lock = Lock()

    def run(self, workers: int = 3) -> EnvironmentResult:
        self.target.state_dir.mkdir(parents=True, exist_ok=True)
        needs = {name: {d for d in self.stacks[name].dependencies if d in self.stacks} for name in self.order}
        run_graph(self.order, needs, self.bring_up, workers)
        if not self.server.alive():
            for name in self.order:
                self.results[name].failures.append("the emulator stopped; see moto.log")
        smoke = self.run_smoke() if self.smoke else []
        # Reverse order: a stack goes once every stack reading its outputs has gone.
        dependents = {name: {other for other in self.order if name in needs[other]} for name in self.order}
        run_graph(list(reversed(self.order)), dependents, self.tear_down, workers)
        summary = EnvironmentResult(self.env, [self.results[name] for name in self.order], smoke)
        print(f"{self.env}:")
        for stack_result in summary.stacks:
            print("  " + stack_result.line())
        for step in smoke:
            print("  smoke " + step.line())
        return summary

    def run_smoke(self) -> list[SmokeStep]:
        """The smoke (modules/rehearsal/smoke) on the applied stacks' states, before anything is destroyed."""
        layers = [f"{self.env}-{layer}" for layer in SMOKE_LAYERS if f"{self.env}-{layer}" in self.stacks]
        missing = [name for name in layers if name not in self.applied_ok]
        if missing or not self.server.alive():
            return [SmokeStep("smoke", False, f"not run: {', '.join(missing) or 'the emulator'} "
                                              f"{'did not apply' if missing else 'stopped'}")]
        states = {}
        for name in layers:
            shown = self.terraform(name, ["show", "-json"])
            if shown.returncode != 0:
                return [SmokeStep("smoke", False, f"not run: terraform show of {name} failed")]
            states[name] = json.loads(shown.stdout)
        self.say("smoke", f"one request through {', '.join(layers)}")
        return run_smoke(Deployment(self.env, states, {name: self.env_dir / name for name in layers}, self.server.url))

    def say(self, name: str, text: str) -> None:
        with self._lock:
            print(f"  {name}: {text}", flush=True)

    def terraform(self, name: str, args: list[str]) -> Any:
        return tf.run(self.toolchain, self.cli_config, args, self.env_dir / name, self.env_dir / name / "terraform.log")

    def bring_up(self, name: str) -> bool:
        stack, result = self.stacks[name], self.results[name]
        started = time.monotonic()
        missing = [d for d in stack.dependencies if d in self.results and d not in self.applied_ok]
        if missing:
            result.failures.append(f"not applied: {', '.join(missing)} did not apply")
            return False
        self._write_workdir(name)
        if not self._init_and_validate(name):
            return False
        self.say(name, "apply")
        apply = self.terraform(name, ["apply", "-auto-approve", "-input=false"])
        with self._lock:
            self.applied.add(name)
        result.resources = _resource_count(self.target.state_dir / f"{name}.tfstate")
        if apply.returncode != 0:
            result.failures += [f"apply: {e}" for e in tf.errors(apply.stdout + apply.stderr)] or [
                f"apply: exit {apply.returncode}"]
            result.seconds += time.monotonic() - started
            self.say(name, f"apply FAILED ({result.resources} resources created)")
            return False
        with self._lock:
            self.applied_ok.add(name)
        self.say(name, "plan (no changes expected)")
        workdir = self.env_dir / name
        result.drift = _drift(self.toolchain, self.cli_config, workdir, workdir / "terraform.log", result,
                              stack.protected_resources)
        result.seconds += time.monotonic() - started
        self.say(name, f"{result.resources} resources, drift: {result.drift} ({result.seconds:.0f} s)")
        return True

    def _write_workdir(self, name: str) -> dict[str, Any]:
        """The stack's rehearsal copy (pointed at the emulator, differences applied) in its own directory."""
        stack, result = self.stacks[name], self.results[name]
        workdir = self.env_dir / name
        workdir.mkdir(parents=True)
        doc, notes = rehearsal_copy(stack.doc, name, self.target)
        notes += apply_rewrites(doc, self.seeded)
        result.notes += notes
        (workdir / "main.tf.json").write_text(json.dumps(doc, indent=1))
        if (stack.directory / "assets").is_dir():
            (workdir / "assets").symlink_to(stack.directory / "assets")
        for note in notes:
            self.say(name, note)
        return doc

    def _init_and_validate(self, name: str) -> bool:
        result, workdir = self.results[name], self.env_dir / name
        self.say(name, "init, validate")
        try:
            tf.init(self.toolchain, self.cli_config, workdir, workdir / "terraform.log")
        except tf.ToolError as err:
            result.failures.append(str(err))
            return False
        validate = self.terraform(name, ["validate"])
        if validate.returncode != 0:
            result.failures += [f"validate: {e}" for e in tf.errors(validate.stdout + validate.stderr)]
            return False
        return True

    def tear_down(self, name: str) -> bool:
        if name not in self.applied:
            return True
        started = time.monotonic()
        result = self.results[name]
        # Only protected resources that exist can refuse (a failed apply may not have made them).
        present = _addresses(self.target.state_dir / f"{name}.tfstate")
        protected = [a for a in self.stacks[name].protected_resources if a in present]
        self.say(name, "destroy" + (f" (refusal expected: {len(protected)} protected resources)" if protected else ""))
        destroy = ["destroy", "-auto-approve", "-input=false"]
        done = self.terraform(name, destroy)
        output, errors = done.stdout + done.stderr, tf.errors(done.stdout + done.stderr)
        retry = None if protected or done.returncode == 0 else destroy_retry(errors, output)
        if retry:
            result.notes.append(f"emulator difference {retry.name}: destroy run once more after {'; '.join(errors)}")
            done = self.terraform(name, destroy)
            output = done.stdout + done.stderr
        self._judge_destroy(result, protected, done.returncode, output)
        result.seconds += time.monotonic() - started
        return True

    @staticmethod
    def _judge_destroy(result: StackResult, protected: list[str], returncode: int, output: str) -> None:
        """Protected stacks must refuse (prevent_destroy); every other stack must go."""
        if protected:
            if returncode != 0 and REFUSAL in output:
                result.destroy = "refused (prevent_destroy)"
                result.notes.append(f"destroy refused as required by {len(protected)} protected resources")
            else:
                result.destroy = "NOT REFUSED"
                result.failures.append(f"destroy was not refused although {protected[0]} "
                                       f"(+{len(protected) - 1}) has prevent_destroy")
        elif returncode == 0:
            result.destroy = "destroyed"
        else:
            result.destroy = "FAILED"
            result.failures += [f"destroy: {e}" for e in tf.errors(output)] or [f"destroy: exit {returncode}"]


def _addresses(state: Path) -> set[str]:
    if not state.is_file():
        return set()
    doc = json.loads(state.read_text())
    return {f"{r['type']}.{r['name']}" for r in doc.get("resources", []) if r.get("mode") == "managed"
            and r.get("module") is None and r.get("instances")}


def _resource_count(state: Path) -> int:
    if not state.is_file():
        return 0
    doc = json.loads(state.read_text())
    return sum(len(r.get("instances", [])) for r in doc.get("resources", []) if r.get("mode") == "managed")


def _drift(toolchain: tf.Toolchain, cli_config: Path, workdir: Path, log: Path, result: StackResult,
           protected: list[str]) -> str:
    # prevent_destroy would turn a planned replacement into an error and hide the plan; an
    # override file lifts it for this plan only (the destroy step checks the protection).
    override = workdir / "drift_override.tf.json"
    if protected:
        lifted: dict[str, Any] = {}
        for address in protected:
            type_, name = address.split(".", 1)
            lifted.setdefault(type_, {})[name] = {"lifecycle": {"prevent_destroy": False}}
        override.write_text(json.dumps({"resource": lifted}))
    try:
        plan = tf.run(toolchain, cli_config, ["plan", "-detailed-exitcode", "-input=false", "-out=drift.tfplan"],
                      workdir, log)
    finally:
        override.unlink(missing_ok=True)
    if plan.returncode == 0:
        return "none"
    if plan.returncode != 2:
        result.failures += [f"plan: {e}" for e in tf.errors(plan.stdout + plan.stderr)] or ["plan failed"]
        return "plan failed"
    shown = tf.run(toolchain, cli_config, ["show", "-json", "drift.tfplan"], workdir, Path("/dev/null"))
    changes = [c for c in json.loads(shown.stdout).get("resource_changes", [])
               if c["change"]["actions"] not in (["no-op"], ["read"])]
    explained, explained_changes, knock_on = [], 0, []
    for change in changes:
        before, after = change["change"].get("before") or {}, change["change"].get("after") or {}
        changed = attribute_changes(before, after, change["change"].get("after_unknown") or {})
        if not changed and change["change"]["actions"] == ["update"]:
            knock_on.append(change["address"])  # only values known after another change: its consequence
            continue
        rows = explain_drift(change["type"], changed, before)
        if rows:
            names = ", ".join(row.name for row in rows)
            explained.extend(row.name for row in rows)
            explained_changes += 1
            result.notes.append(f"emulator difference {names}: {change['address']} "
                                f"({'/'.join(change['change']['actions'])}) is a false drift")
        else:
            keys = list(changed) or sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            result.failures.append(f"drift: {change['address']} would {'/'.join(change['change']['actions'])} "
                                   f"({', '.join(keys[:6])})")
    unexplained = len(changes) - explained_changes - len(knock_on)
    if unexplained:
        return f"{unexplained} UNEXPLAINED"
    if knock_on:
        if not explained:
            result.failures.append(f"drift: {', '.join(knock_on)} would update (values known only after apply)")
            return f"{len(knock_on)} UNEXPLAINED"
        result.notes.append(f"updates that follow from the explained ones: {', '.join(knock_on)}")
    return f"{len(explained)} explained ({', '.join(sorted(set(explained)))})" if explained else "outputs only"
