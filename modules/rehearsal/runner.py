"""The per-stack steps: plan and apply in dependency order; once all are up, a drift plan of each
(no changes expected) beside the smoke; destroy in reverse order."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from threading import Lock
from typing import Any

from modules.rehearsal import terraform as tf
from modules.rehearsal.differences import Seeded, apply_rewrites, destroy_retry
from modules.rehearsal.emulator import MotoServer
from modules.rehearsal.judge import judge
from modules.rehearsal.plan import ROOT, Stack
from modules.rehearsal.report import EnvironmentResult, StackResult, smoke_step
from modules.rehearsal.rewrite import Target, rehearsal_copy
from modules.rehearsal.smoke import LAYERS as SMOKE_LAYERS
from modules.rehearsal.smoke import run as run_smoke
from modules.rehearsal.smoke.deployment import Deployment, SmokeStep
from modules.tools import plan_guard

ALIAS_WARNING = re.compile(r'Only one of the following attributes should be set: (.*)')
REFUSAL = "lifecycle.prevent_destroy"
# Run once every stack applied (the smoke steps): steps with name, passed and detail.
AfterApply = Callable[["Rehearsal"], Iterable[Any]]


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
    planned for drift once all are up (as the drift job plans a deployed environment), then torn
    down in reverse order.

    Per stack it runs the deploy pipeline's own commands (`python -m modules.tools.pipeline`, as
    the workflows do): `plan` writes the saved plan, its summary and the guard's verdict, `apply`
    applies exactly that plan (and runs the proxy's schema migration where the plan says so),
    and the drift job's `plan`, once every stack is up, is judged (judge.py). The rehearsal
    copies are laid out as a synth (synth/manifest.json, synth/stacks/<name>) for those
    commands to read."""

    def __init__(self, env: str, stacks: dict[str, Stack], order: list[str], target: Target, seeded: Seeded,
                 toolchain: tf.Toolchain, cli_config: Path, env_dir: Path, server: MotoServer) -> None:
        self.env, self.stacks, self.order, self.target, self.seeded = env, stacks, order, target, seeded
        self.toolchain, self.cli_config, self.env_dir, self.server = toolchain, cli_config, env_dir, server
        self.results = {name: StackResult(name) for name in order}
        self.applied: set[str] = set()  # something may exist: destroy it
        self.applied_ok: set[str] = set()  # applied without error (drift is reported, dependents still apply)
        self._lock = Lock()
        self._turns = {name: Lock() for name in order}  # one Terraform command at a time per working directory

    def run(self, workers: int = 3, after_apply: AfterApply | None = None) -> EnvironmentResult:
        """Bring up, judge, tear down. An unexpected exception on the way up still tears down what
        was applied; it is the result's `error` (the report says it, the run fails)."""
        self.target.state_dir.mkdir(parents=True, exist_ok=True)
        self.write_manifest()
        needs = {name: {d for d in self.stacks[name].dependencies if d in self.stacks} for name in self.order}
        summary = EnvironmentResult(self.env, [self.results[name] for name in self.order],
                                    provider_version=self.toolchain.provider_version)
        try:
            run_graph(self.order, needs, self.bring_up, workers)
            if not self.server.alive():
                for name in self.order:
                    self.results[name].failures.append("the emulator stopped; see moto.log")
            else:
                summary.smoke = self.check(workers, after_apply)
        except Exception as err:  # noqa: BLE001 - reported as the run's error, after tearing down
            summary.error = f"{type(err).__name__}: {err}"
            print(f"{self.env}: rehearsal error, tearing down what was applied: {summary.error}", flush=True)
        finally:
            # Reverse order: a stack goes once every stack reading its outputs has gone.
            dependents = {name: {other for other in self.order if name in needs[other]} for name in self.order}
            try:
                run_graph(list(reversed(self.order)), dependents, self.tear_down, workers)
            except Exception as err:  # noqa: BLE001 - the report says it; the emulator's stop discards the rest
                summary.error = "; ".join(filter(None, [summary.error, f"teardown: {type(err).__name__}: {err}"]))
        print(f"{self.env}:")
        for stack_result in summary.stacks:
            print("  " + stack_result.line())
        for step in summary.smoke:
            print(f"  smoke {'ok    ' if step['passed'] else 'FAILED'} {step['name']}: {step['detail']}")
        return summary

    def say(self, name: str, text: str) -> None:
        with self._lock:
            print(f"  {name}: {text}", flush=True)

    @property
    def synth_dir(self) -> Path:
        """The rehearsal copies laid out as a synth: what the pipeline's commands read."""
        return self.env_dir / "synth"

    def workdir(self, name: str) -> Path:
        return self.synth_dir / "stacks" / name

    def terraform(self, name: str, args: list[str]) -> Any:
        started = time.monotonic()
        with self._turns[name]:
            done = tf.run(self.toolchain, self.cli_config, args, self.workdir(name),
                          self.workdir(name) / "terraform.log")
        self._took(name, args[0], started)
        return done

    def pipeline(self, name: str, args: list[str]) -> subprocess.CompletedProcess[str]:
        """`python -m modules.tools.pipeline ARGS`, as the deploy workflow runs it, in Terraform's
        rehearsal environment. boto3 (the schema migration) reaches the emulator through
        AWS_ENDPOINT_URL; apply reports its progress as JSON (the report's slowest resources)."""
        if tf.STOPPING.is_set():
            return subprocess.CompletedProcess(args, 130, "", "interrupted before it started")
        started = time.monotonic()
        env = {**self.toolchain.env(self.cli_config), "PYTHONPATH": str(ROOT), "AWS_ENDPOINT_URL": self.server.url,
               "TF_CLI_ARGS_apply": "-json",
               "PATH": os.pathsep.join([str(Path(self.toolchain.terraform).parent), os.environ.get("PATH", "")])}
        try:
            with self._turns[name]:
                done = subprocess.run([sys.executable, "-m", "modules.tools.pipeline", *args], cwd=ROOT, env=env,
                                      capture_output=True, text=True, timeout=3600)
        except subprocess.TimeoutExpired as err:
            done = subprocess.CompletedProcess(err.cmd, 124, str(err.stdout or ""), "timed out after 3600 s")
        with (self.workdir(name) / "terraform.log").open("a") as log:
            log.write(f"$ pipeline {' '.join(args)}  (exit {done.returncode})\n{done.stdout}{done.stderr}\n")
        self._took(name, f"pipeline {args[0]}", started)
        return done

    def pipeline_plan(self, name: str, out: Path) -> subprocess.CompletedProcess[str]:
        """`pipeline plan` of one stack into OUT: its plan, JSON, text and summary (OUT/summary.md)."""
        return self.pipeline(name, ["plan", "--stacks", name, "--out", str(out), "--synth-dir", str(self.synth_dir),
                                    "--markdown", str(out / "summary.md")])

    def _took(self, name: str, command: str, started: float) -> None:
        commands = self.results[name].commands
        commands[command] = commands.get(command, 0.0) + time.monotonic() - started

    def write_manifest(self) -> None:
        """synth/manifest.json naming every stack as cdktn's does (their copies follow, one by one)."""
        self.synth_dir.mkdir(parents=True, exist_ok=True)
        stacks = {name: {"synthesizedStackPath": f"stacks/{name}/main.tf.json", "workingDirectory": f"stacks/{name}",
                         "dependencies": list(self.stacks[name].dependencies)} for name in self.order}
        (self.synth_dir / "manifest.json").write_text(json.dumps({"stacks": stacks}, indent=1))

    def bring_up(self, name: str) -> bool:
        stack, result = self.stacks[name], self.results[name]
        started = time.monotonic()
        try:
            missing = [d for d in stack.dependencies if d in self.results and d not in self.applied_ok]
            if missing:
                result.failures.append(f"not applied: {', '.join(missing)} did not apply")
                return False
            self._write_workdir(name)
            if not self._plan_and_apply(name):
                return False
            with self._lock:
                self.applied_ok.add(name)
            self.say(name, f"{result.created} resources applied ({time.monotonic() - started:.0f} s)")
            return True
        finally:
            result.seconds += time.monotonic() - started

    def check(self, workers: int, after_apply: AfterApply | None) -> list[dict[str, Any]]:
        """Once every stack is up, as the drift job and a first user meet them: each applied
        stack's drift plan (judged), while `after_apply` (the smoke) drives a request through.
        Both only read, so they run side by side; a stack's Terraform commands take turns."""
        applied = [name for name in self.order if name in self.applied_ok]
        with ThreadPoolExecutor(max_workers=1) as pool:
            smoke = pool.submit(after_apply, self) if after_apply and set(applied) == set(self.order) else None
            run_graph(applied, {name: set() for name in applied}, self.check_drift, workers)
            return [smoke_step(step) for step in smoke.result()] if smoke else []

    def check_drift(self, name: str) -> bool:
        result, started = self.results[name], time.monotonic()
        self.say(name, "pipeline plan again (the drift job's: no changes expected)")
        try:
            self._replan(name)
        finally:
            result.seconds += time.monotonic() - started
        self.say(name, f"drift: {result.drift} ({time.monotonic() - started:.0f} s)")
        return True

    def _write_workdir(self, name: str) -> dict[str, Any]:
        """The stack's rehearsal copy (pointed at the emulator, differences applied) in its own directory."""
        stack, result = self.stacks[name], self.results[name]
        workdir = self.workdir(name)
        workdir.mkdir(parents=True)
        doc, notes = rehearsal_copy(stack.doc, name, self.target)
        notes += apply_rewrites(doc, self.seeded)
        result.notes += notes
        left_out = _left_out(stack.doc, doc)
        result.removed_by_rows += left_out
        result.planned += len(left_out)  # planned for AWS, not rehearsed: created = planned fails on them
        (workdir / "main.tf.json").write_text(json.dumps(doc, indent=1))
        if (stack.directory / "assets").is_dir():
            (workdir / "assets").symlink_to(stack.directory / "assets")
        for note in notes:
            self.say(name, note)
        return doc

    def _plan_and_apply(self, name: str) -> bool:
        """The deploy workflow's two jobs for this stack: `pipeline plan` (the saved plan, its
        summary and the plan guard), then `pipeline apply` of exactly that plan."""
        result, plans = self.results[name], self.env_dir / "plans" / name
        self.say(name, "pipeline plan")
        plan = self.pipeline_plan(name, plans)
        if plan.returncode not in (0, 2):
            result.failures += [f"plan: {e}" for e in _plan_errors(plans, name, plan)]
            return False
        result.planned += _planned_resources(json.loads((plans / f"{name}.json").read_text()))
        self.say(name, f"pipeline apply ({result.planned} planned)")
        with self._lock:
            self.applied.add(name)
        apply = self.pipeline(name, ["apply", str(plans)])
        messages = tf.json_messages(apply.stdout)
        result.slowest = tf.slowest_resources(messages)
        result.created = _resource_count(self.target.state_dir / f"{name}.tfstate")
        if apply.returncode != 0:
            result.failures += [f"apply: {e}" for e in tf.json_errors(messages)] or [
                f"apply: exit {apply.returncode}: {_pipeline_error(apply)}"]
            self.say(name, f"apply FAILED ({result.created} resources created)")
            return False
        return True

    def _replan(self, name: str) -> None:
        result, workdir = self.results[name], self.workdir(name)
        shown = _plan_after_apply(self, name, self.stacks[name].protected_resources)
        if shown is None:
            return
        verdict = judge(shown)
        guarded = {f.address for f in plan_guard.check(name, shown, allowances=[])}
        for replacement in verdict.replaced:
            replacement["plan_guard"] = "refused" if replacement["address"] in guarded else "not stateful"
        result.explained, result.knock_on = verdict.explained, len(verdict.knock_on)
        result.replaced, result.unexplained = verdict.replaced, len(verdict.unexplained)
        present = _addresses(self.target.state_dir / f"{name}.tfstate", instances=True)
        result.clean_replan = len(present - verdict.changed)
        result.notes += verdict.notes
        for r in verdict.replaced:
            why = "explained by " + ", ".join(r["rows"]) if r["explained"] else "UNEXPLAINED"
            result.notes.append(f"replaced on re-plan ({why}; plan guard: {r['plan_guard']}): {r['address']} "
                                f"({', '.join(r['attributes'][:6])})")
        result.failures += [f"drift: {line}" for line in verdict.unexplained]
        parts = [f"{sum(verdict.explained.values())} explained"] if verdict.explained else []
        parts += [f"{len(verdict.replaced)} replaced"] if verdict.replaced else []
        parts += [f"{len(verdict.knock_on)} knock-on"] if verdict.knock_on else []
        parts += [f"{len(verdict.unexplained)} UNEXPLAINED"] if verdict.unexplained else []
        result.drift = ", ".join(parts) or "none"
        (workdir / "replan.json").write_text(json.dumps(shown))

    def tear_down(self, name: str) -> bool:
        if name not in self.applied:
            return True
        started = time.monotonic()
        result = self.results[name]
        state = self.target.state_dir / f"{name}.tfstate"
        # Only protected resources that exist can refuse (a failed apply may not have made them).
        present = _addresses(state)
        protected = [a for a in self.stacks[name].protected_resources if a in present]
        self.say(name, "destroy" + (f" (refusal expected: {len(protected)} protected resources)" if protected else ""))
        before = _resource_count(state)
        # The plan after apply has just refreshed every resource: a second refresh only costs time
        # (the provider's own waits, e.g. 10 s per S3 lifecycle configuration read).
        destroy = ["destroy", "-auto-approve", "-input=false", "-refresh=false"]
        done = self.terraform(name, destroy)
        output, errors = done.stdout + done.stderr, tf.errors(done.stdout + done.stderr)
        retry = None if protected or done.returncode == 0 else destroy_retry(errors, output)
        if retry:
            result.notes.append(f"emulator difference {retry.name}: destroy run once more after {'; '.join(errors)}")
            done = self.terraform(name, destroy)
            output = done.stdout + done.stderr
        result.destroyed_by_terraform = before - _resource_count(state)
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


def _addresses(state: Path, instances: bool = False) -> set[str]:
    """Managed resources in a state: `type.name`, or with `instances` each instance's address."""
    if not state.is_file():
        return set()
    doc = json.loads(state.read_text())
    found = set()
    for r in doc.get("resources", []):
        if r.get("mode") != "managed" or r.get("module") is not None or not r.get("instances"):
            continue
        base = f"{r['type']}.{r['name']}"
        if not instances:
            found.add(base)
            continue
        for instance in r["instances"]:
            key = instance.get("index_key")
            found.add(base if key is None else f"{base}[{json.dumps(key)}]")
    return found


def _resource_count(state: Path) -> int:
    if not state.is_file():
        return 0
    doc = json.loads(state.read_text())
    return sum(len(r.get("instances", [])) for r in doc.get("resources", []) if r.get("mode") == "managed")


def _left_out(synthesized: dict[str, Any], copy: dict[str, Any]) -> list[str]:
    """Resources of the stack that the rows' rewrites left out of the rehearsal copy."""
    return [f"{type_}.{name}" for type_, blocks in synthesized.get("resource", {}).items() for name in blocks
            if name not in copy.get("resource", {}).get(type_, {})]


def smoke_after_apply(rehearsal: Rehearsal) -> list[SmokeStep]:
    """The smoke (modules/rehearsal/smoke) on the applied stacks' states, before anything is destroyed."""
    env = rehearsal.env
    layers = [f"{env}-{layer}" for layer in SMOKE_LAYERS if f"{env}-{layer}" in rehearsal.stacks]
    states = {}
    for name in layers:
        shown = rehearsal.terraform(name, ["show", "-json"])
        if shown.returncode != 0:
            return [SmokeStep("smoke", False, f"not run: terraform show of {name} failed")]
        states[name] = json.loads(shown.stdout)
    rehearsal.say("smoke", f"one request through {', '.join(layers)}")
    return run_smoke(Deployment(env, states, {name: rehearsal.workdir(name) for name in layers},
                                rehearsal.server.url))


def _plan_after_apply(rehearsal: Rehearsal, name: str, protected: list[str]) -> dict[str, Any] | None:
    """The drift job's command right after apply (`pipeline plan`), as `terraform show -json`
    gives its plan; None when it failed to plan (a plan the guard refuses is still judged)."""
    result, workdir = rehearsal.results[name], rehearsal.workdir(name)
    # prevent_destroy would turn a planned replacement into an error and hide the plan; an
    # override file lifts it for this plan only (the destroy step checks the protection).
    override = workdir / "drift_override.tf.json"
    if protected:
        lifted: dict[str, Any] = {}
        for address in protected:
            type_, resource = address.split(".", 1)
            lifted.setdefault(type_, {})[resource] = {"lifecycle": {"prevent_destroy": False}}
        override.write_text(json.dumps({"resource": lifted}))
    out = rehearsal.env_dir / "drift" / name
    try:
        plan = rehearsal.pipeline_plan(name, out)
    finally:
        override.unlink(missing_ok=True)
    shown = out / f"{name}.json"
    if plan.returncode not in (0, 1, 2) or not shown.is_file():
        result.failures += [f"plan: {e}" for e in _plan_errors(out, name, plan)]
        result.drift = "plan failed"
        return None
    return dict(json.loads(shown.read_text()))


def _planned_resources(plan: dict[str, Any]) -> int:
    """Managed resources a plan creates, changes or imports (what its apply brings under Terraform)."""
    return sum(1 for c in plan.get("resource_changes", []) if c.get("mode") == "managed" and (
        c["change"]["actions"] not in (["no-op"], ["read"]) or c["change"].get("importing")))


def _plan_errors(out: Path, name: str, done: subprocess.CompletedProcess[str]) -> list[str]:
    """Why `pipeline plan` failed: Terraform's errors (its text is kept in OUT/NAME.txt), the
    plan guard's refusals (the summary), else the command's last words."""
    text = (out / f"{name}.txt").read_text() if (out / f"{name}.txt").is_file() else ""
    summary = (out / "summary.md").read_text() if (out / "summary.md").is_file() else ""
    refusals = [line.strip("- ") for line in summary.splitlines() if "**refused**" in line]
    return tf.errors(text) or refusals or [f"exit {done.returncode}: {_pipeline_error(done)}"]


def _pipeline_error(done: subprocess.CompletedProcess[str]) -> str:
    """The `::error::` a pipeline command printed, else Terraform's first error."""
    said = [line.removeprefix("::error::") for line in (done.stdout + done.stderr).splitlines()
            if line.startswith("::error::")]
    return said[0] if said else tf.first_error(done.stdout + done.stderr)
