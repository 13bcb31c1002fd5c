"""The pipeline's own commands (plan, guard, apply of saved plans) against Terraform and moto.

Small roots stand in for a synth (a manifest and stacks/<name>/cdk.tf.json, like cdktn's),
planned and applied by `python -m modules.tools.pipeline` with real Terraform and the AWS
provider of the local mirror, against moto_server on loopback: the plan guard reads real
`terraform show -json` output, and a two-stack run changes an upstream output between plan
and apply.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modules.parts.storage import STATEFUL_TYPES
from modules.rehearsal.emulator import MotoServer
from modules.rehearsal.terraform import MIRROR, ToolError, find_toolchain
from modules.tools import plan_guard

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "eu-west-2"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory):
    try:
        toolchain = find_toolchain()
    except ToolError as err:
        pytest.skip(str(err))
    work = tmp_path_factory.mktemp("pipeline-moto")
    cli = work / "terraform.rc"
    (work / "plugin-cache").mkdir()
    cli.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n'
                   f'plugin_cache_dir = "{work / "plugin-cache"}"\n')
    with MotoServer(ACCOUNT, work / "moto.log") as server:
        yield server, toolchain.provider_version, cli


def provider(url: str, version: str) -> dict[str, Any]:
    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": version}}},
        "provider": {"aws": [{"region": REGION, "access_key": "test", "secret_key": "test",
                              "skip_credentials_validation": True, "skip_metadata_api_check": True,
                              "skip_requesting_account_id": True, "s3_use_path_style": True,
                              "endpoints": [{k: url for k in ("rds", "s3", "ssm", "sts", "iam")}]}]},
    }


def write_synth(root: Path, stacks: dict[str, dict[str, Any]], dependencies: dict[str, list[str]]) -> Path:
    """A synth-shaped directory: manifest.json and stacks/<name>/cdk.tf.json."""
    entries = {}
    for name, doc in stacks.items():
        (root / "stacks" / name).mkdir(parents=True, exist_ok=True)
        (root / "stacks" / name / "cdk.tf.json").write_text(json.dumps(doc, indent=1))
        entries[name] = {"synthesizedStackPath": f"stacks/{name}/cdk.tf.json", "workingDirectory": f"stacks/{name}",
                         "dependencies": dependencies.get(name, [])}
    (root / "manifest.json").write_text(json.dumps({"stacks": entries, "version": "test"}))
    return root


def pipeline(cli: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(cli), "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1",
           "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "modules.tools.pipeline", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def database(url: str, version: str, username: str, tags: dict[str, str], state: Path) -> dict[str, Any]:
    doc = provider(url, version)
    # Outside the synth: the apply runs in the plan directory's copy (as S3 state would be).
    doc["terraform"]["backend"] = {"local": {"path": str(state)}}
    doc["resource"] = {"aws_db_instance": {"data_postgres": {
        "identifier": "guard-db", "engine": "postgres", "engine_version": "16.3", "instance_class": "db.t4g.micro",
        "allocated_storage": 20, "username": username, "password": "not-a-real-secret-1",
        "skip_final_snapshot": True, "tags": tags}}}
    return doc


@pytest.mark.pipeline_rehearsal
def test_the_plan_guard_refuses_replacing_a_database_and_passes_a_tag_change(moto, tmp_path: Path) -> None:
    server, version, cli = moto
    synth = tmp_path / "synth"
    write_synth(synth, {"t-data": database(server.url, version, "platform", {"Owner": "a"}, tmp_path / "data.tfstate")}, {})
    first = pipeline(cli, "plan", "--stacks", "t-data", "--out", str(tmp_path / "p1"), "--synth-dir", str(synth),
                     cwd=ROOT)
    assert first.returncode == 2, first.stdout + first.stderr
    assert pipeline(cli, "apply", str(tmp_path / "p1"), cwd=ROOT).returncode == 0

    # only tags: passes, exit 2 (changes), the guard says so in the summary
    write_synth(synth, {"t-data": database(server.url, version, "platform", {"Owner": "b"}, tmp_path / "data.tfstate")}, {})
    tags = pipeline(cli, "plan", "--stacks", "t-data", "--out", str(tmp_path / "p2"), "--synth-dir", str(synth),
                    "--markdown", str(tmp_path / "tags.md"), cwd=ROOT)
    assert tags.returncode == 2, tags.stdout + tags.stderr
    assert "| t-data | changes | 1 to update |" in (tmp_path / "tags.md").read_text()
    assert "Plan guard: no resource holding data is deleted or replaced." in (tmp_path / "tags.md").read_text()
    # the readable plan is the plan's own output, without the refresh's progress lines
    readable = (tmp_path / "p2" / "t-data.txt").read_text()
    assert "aws_db_instance.data_postgres will be updated in-place" in readable and "Refreshing state" not in readable

    # a new master user name replaces the instance (the provider's ForceNew): refused (exit 1), named in the summary
    write_synth(synth, {"t-data": database(server.url, version, "owner", {"Owner": "a"}, tmp_path / "data.tfstate")}, {})
    replace = pipeline(cli, "plan", "--stacks", "t-data", "--out", str(tmp_path / "p3"), "--synth-dir", str(synth),
                       "--markdown", str(tmp_path / "replace.md"), cwd=ROOT)
    assert replace.returncode == 1, replace.stdout + replace.stderr
    summary = (tmp_path / "replace.md").read_text()
    assert "**refused**: `t-data` replaces `aws_db_instance.data_postgres`" in summary
    plan = json.loads((tmp_path / "p3" / "t-data.json").read_text())
    assert not plan_guard.refused(plan_guard.check("t-data", json.loads((tmp_path / "p2" / "t-data.json").read_text()),
                                                   [], {}))
    # allowed with a reason until a date: passes; once expired it is refused again
    allow = plan_guard.Allowance("t-data", "aws_db_instance.data_postgres", "rename", dt.date(2999, 1, 1))
    assert not plan_guard.refused(plan_guard.check("t-data", plan, [allow], {}))
    (tmp_path / "allow.toml").write_text('[[allow]]\nstack = "t-data"\naddress = "aws_db_instance.data_postgres"\n'
                                         'reason = "rename"\nexpires = 2020-01-01\n')
    assert plan_guard.load_allowances(tmp_path / "allow.toml") == []
    # the pinned addresses count whatever their type
    pinned = {"change": {"actions": ["delete"]}, "address": "aws_iam_role.x", "type": "aws_iam_role", "mode": "managed"}
    assert plan_guard.check("s", {"resource_changes": [pinned]}, [], {"s": {"aws_iam_role.x"}})


def parameter_stack(url: str, version: str, value: str, state: Path) -> dict[str, Any]:
    doc = provider(url, version)
    doc["terraform"]["backend"] = {"local": {"path": str(state)}}
    doc["resource"] = {"aws_ssm_parameter": {"upstream": {"name": "/t/upstream", "type": "String", "insecure_value": value}}}
    doc["output"] = {"value": {"value": "${aws_ssm_parameter.upstream.insecure_value}"}}
    return doc


def reader_stack(url: str, version: str, upstream_state: Path, state: Path) -> dict[str, Any]:
    """Reads the upstream's output as cdktn's cross-stack references do (terraform_remote_state)."""
    doc = provider(url, version)
    doc["terraform"]["backend"] = {"local": {"path": str(state)}}
    doc["data"] = {"terraform_remote_state": {"up": {"backend": "local", "config": {"path": str(upstream_state)}}}}
    doc["resource"] = {"aws_ssm_parameter": {"downstream": {
        "name": "/t/downstream", "type": "String", "insecure_value": "${data.terraform_remote_state.up.outputs.value}"}}}
    return doc


@pytest.mark.pipeline_rehearsal
def test_apply_stops_when_an_upstream_output_changes_what_a_later_stack_would_do(moto, tmp_path: Path) -> None:
    server, version, cli = moto
    synth = tmp_path / "synth"

    def stacks(value: str) -> dict[str, dict[str, Any]]:
        return {"t-up": parameter_stack(server.url, version, value, tmp_path / "up.tfstate"),
                "t-down": reader_stack(server.url, version, tmp_path / "up.tfstate", tmp_path / "down.tfstate")}

    def plan(out: str) -> subprocess.CompletedProcess[str]:
        return pipeline(cli, "plan", "--stacks", "t-up", "t-down", "--out", str(tmp_path / out),
                        "--synth-dir", str(synth), "--markdown", str(tmp_path / f"{out}.md"), cwd=ROOT)

    deps = {"t-down": ["t-up"]}
    # First deploy: the reader cannot be planned before its producer exists. It is deferred,
    # and the apply stops after the producer for a review of the reader's own plan.
    write_synth(synth, stacks("one"), deps)
    assert plan("p1").returncode == 2
    assert "| t-down | deferred |" in (tmp_path / "p1.md").read_text()
    stopped = pipeline(cli, "apply", str(tmp_path / "p1"), cwd=ROOT)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    assert "t-down: once the stacks it reads were applied, its plan differs" in stopped.stdout
    # the re-run plans the reader against what is deployed; reviewed, it is applied
    assert plan("p2").returncode == 2
    assert "| t-up | no changes |" in (tmp_path / "p2.md").read_text()
    applied = pipeline(cli, "apply", str(tmp_path / "p2"), cwd=ROOT)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert server.client("ssm", REGION).get_parameter(Name="/t/downstream")["Parameter"]["Value"] == "one"

    # The producer's output changes. At plan time the reader still reads the old value, so its
    # reviewed plan is "no changes"; once the producer is applied it would change: stop.
    write_synth(synth, stacks("two"), deps)
    assert plan("p3").returncode == 2
    assert "| t-down | no changes |" in (tmp_path / "p3.md").read_text()
    stopped = pipeline(cli, "apply", str(tmp_path / "p3"), cwd=ROOT)
    assert stopped.returncode == 3, stopped.stdout + stopped.stderr
    ssm = server.client("ssm", REGION)
    assert ssm.get_parameter(Name="/t/upstream")["Parameter"]["Value"] == "two"
    assert ssm.get_parameter(Name="/t/downstream")["Parameter"]["Value"] == "one"  # nothing unreviewed applied


def test_the_guard_knows_every_type_the_project_protects() -> None:
    assert set(STATEFUL_TYPES) <= plan_guard.DATA_TYPES


def test_the_guard_passes_a_forget_and_refuses_a_malformed_allowance(tmp_path: Path) -> None:
    """A `removed` block with destroy = false plans "forget": nothing is deleted."""
    forget = {"address": "aws_iam_service_linked_role.x", "type": "aws_iam_service_linked_role", "mode": "managed",
              "change": {"actions": ["forget"]}}
    delete = {**forget, "change": {"actions": ["delete"]}}
    assert plan_guard.check("s", {"resource_changes": [forget]}, [], {}) == []
    assert plan_guard.refused(plan_guard.check("s", {"resource_changes": [delete]}, [], {}))
    (tmp_path / "allow.toml").write_text('[[allow]]\nstack = "s"\naddress = "aws_iam_service_linked_role.x"\n'
                                         'expires = 2999-01-01\n')
    with pytest.raises(plan_guard.AllowFileError, match="reason"):
        plan_guard.load_allowances(tmp_path / "allow.toml")


def test_drift_plans_the_account_stack_with_the_environment_whose_bucket_holds_its_state() -> None:
    from modules.tools.pipeline import account_stack
    assert account_stack("dev") == "account-dev" and account_stack("prod") == "account-prod"
    assert account_stack("prod-us") is None  # its plan role cannot read prod's bucket


BOOTSTRAP_TERRAFORM = """#!/bin/sh
# Records each call, with whether the local-backend override was in place, and exits 0.
dir=""; for arg in "$@"; do case "$arg" in -chdir=*) dir="${arg#-chdir=}";; esac; done
override=no; [ -f "$dir/bootstrap_override.tf.json" ] && override=yes
echo "override=$override $*" >> "$CALLS"
case "$*" in *" apply "*) echo '{"version": 4}' > "$dir/bootstrap.tfstate";; esac
exit 0
"""


def test_bootstrap_creates_the_state_bucket_locally_then_moves_its_state_into_it(tmp_path: Path) -> None:
    """One command: apply <env>-state on a local backend (an override file), then init against
    the bucket it made and push the state there; nothing local is left."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "terraform").write_text(BOOTSTRAP_TERRAFORM)
    (stubs / "terraform").chmod(0o755)
    synth = write_synth(tmp_path / "synth", {"dev-state": {"terraform": {"backend": {"s3": {"bucket": "b"}}}}}, {})
    calls = tmp_path / "calls"
    done = subprocess.run([sys.executable, "-m", "modules.tools.pipeline", "bootstrap", "dev", "--synth-dir", str(synth)],
                          cwd=ROOT, capture_output=True, text=True, env={
                              **os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "CALLS": str(calls)})
    assert done.returncode == 0, done.stdout + done.stderr
    stack = synth / "stacks" / "dev-state"
    assert [line.split(f"-chdir={stack} ")[1] for line in calls.read_text().splitlines()] == [
        "init -input=false -reconfigure", "apply -input=false -auto-approve",
        "init -input=false -reconfigure", "state push bootstrap.tfstate"]
    assert [line.split()[0] for line in calls.read_text().splitlines()] == [
        "override=yes", "override=yes", "override=no", "override=no"]
    assert sorted(p.name for p in stack.iterdir()) == ["cdk.tf.json"]


def cdktn_stack(version: str, resource: dict[str, Any], remote: str | None = None,
                output: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack as cdktn writes it: S3 backend, cross-stack reads through terraform_remote_state."""
    doc: dict[str, Any] = {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": version}},
                      "backend": {"s3": {"bucket": "t-tfstate", "key": "t.tfstate", "region": REGION}}},
        "provider": {"aws": [{"region": REGION, "allowed_account_ids": [ACCOUNT]}]},
        "resource": resource}
    if remote:
        doc["data"] = {"terraform_remote_state": {f"cross-stack-reference-input-{remote}": {
            "backend": "s3", "config": {"bucket": "t-tfstate", "key": f"{remote}.tfstate", "region": REGION}}}}
    if output:
        doc["output"] = output
    return doc


@pytest.mark.pipeline_rehearsal
def test_the_rehearsal_deploys_through_the_pipelines_own_commands(moto, tmp_path: Path) -> None:
    """Each stack goes through `pipeline plan` (saved plan, summary, guard) and `pipeline apply`
    of that plan, and the drift job's `pipeline plan` judges it: no second code path."""
    from modules.rehearsal.differences import Seeded
    from modules.rehearsal.plan import Stack
    from modules.rehearsal.rewrite import Target
    from modules.rehearsal.runner import Rehearsal
    from modules.rehearsal.smoke.deployment import SmokeStep

    server, version, cli = moto
    up = cdktn_stack(version, {"aws_ssm_parameter": {"upstream": {
        "name": "/r/upstream", "type": "String", "insecure_value": "one"}}},
        output={"value": {"value": "${aws_ssm_parameter.upstream.insecure_value}"}})
    down = cdktn_stack(version, {"aws_ssm_parameter": {"downstream": {
        "name": "/r/downstream", "type": "String",
        "insecure_value": "${data.terraform_remote_state.cross-stack-reference-input-t-up.outputs.value}"}}},
        remote="t-up")
    stacks = {"t-up": Stack("t-up", tmp_path, up, ()), "t-down": Stack("t-down", tmp_path, down, ("t-up",))}
    target = Target(endpoint=server.url, endpoint_keys=("iam", "s3", "ssm", "sts"), account_id=ACCOUNT,
                    state_dir=tmp_path / "work" / "state", provider_version=version)

    def read_downstream(rehearsal: Rehearsal) -> list[SmokeStep]:
        value = server.client("ssm", REGION).get_parameter(Name="/r/downstream")["Parameter"]["Value"]
        return [SmokeStep("downstream read the upstream's output", value == "one", value)]

    result = Rehearsal("t", stacks, ["t-up", "t-down"], target, Seeded(account_id=ACCOUNT), find_toolchain(), cli,
                       tmp_path / "work", server).run(workers=2, after_apply=read_downstream)

    assert result.ok, [s.failures for s in result.stacks]
    assert [(s.planned, s.created, s.clean_replan, s.destroyed_by_terraform, s.destroy) for s in result.stacks] == [
        (1, 1, 1, 1, "destroyed")] * 2
    assert result.smoke == [{"name": "downstream read the upstream's output", "passed": True, "detail": "one"}]
    reviewed = (tmp_path / "work" / "plans" / "t-up" / "summary.md").read_text()
    assert "| t-up | changes | 1 to create |" in reviewed and "Plan guard:" in reviewed
    assert "| t-down | no changes |" in (tmp_path / "work" / "drift" / "t-down" / "summary.md").read_text()
    assert set(result.stacks[0].commands) >= {"pipeline plan", "pipeline apply", "destroy"}
