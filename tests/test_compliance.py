"""SEC-1, SEC-2, SEC-5: the compliance gate over every stack, and that it can fail."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policies.gate import run_gate


def test_gate_passes_every_stack_with_zero_unexplained_failures(gate, stacks) -> None:
    result, _ = gate
    assert result.stacks == sorted(stacks)
    assert result.unexplained == [] and result.stale == [] and result.secrets == [] and result.parsing_errors == []
    assert result.passed > 1000


def test_every_skip_has_a_reason_in_the_report(gate) -> None:
    result, report_dir = gate
    assert result.skipped
    assert all(len(f.reason.split()) >= 5 for f in result.skipped)
    markdown = (report_dir / "report.md").read_text()
    assert "Verdict: **PASS**" in markdown
    for finding in result.skipped:
        assert f"| {finding.stack} | `{finding.resource}` | {finding.check_id} | {finding.reason} |" in markdown
    junit = (report_dir / "junit.xml").read_text()
    assert junit.count("<skipped ") == len(result.skipped)
    assert json.loads((report_dir / "report.json").read_text())["ok"] is True


BAD_STACK = {"resource": {
    "aws_kms_key": {"k": {"enable_key_rotation": True}},
    "aws_s3_bucket_policy": {"p": {"bucket": "b", "policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                                                 "Resource": "arn:aws:s3:::b/*"}]})}},
    "aws_wafv2_web_acl_logging_configuration": {"w": {"resource_arn": "x", "log_destination_configs": ["y"]}},
    "aws_lb_listener": {"l": {"load_balancer_arn": "x", "port": 443, "protocol": "HTTPS",
                              "ssl_policy": "ELBSecurityPolicy-2016-08", "certificate_arn": "c",
                              "default_action": [{"type": "forward", "target_group_arn": "t"}]}},
    "aws_ecs_task_definition": {"t": {"family": "f", "container_definitions": json.dumps(
        [{"name": "c", "image": "i", "environment": [{"name": "LITELLM_MASTER_KEY", "value": "x"}],
          "readonlyRootFilesystem": False}])}},
}}


@pytest.fixture(scope="module")
def broken(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One gate run over two broken stacks: a doctored copy of dev-network, and resources
    that each break one of the platform's own policies."""
    root = tmp_path_factory.mktemp("broken-stacks")
    shutil.copytree(synth_dir / "dev-network", root / "dev-network")
    path = root / "dev-network" / "cdk.tf.json"
    doc = json.loads(path.read_text())
    rules = doc["resource"]["aws_vpc_security_group_ingress_rule"]
    port80 = next(lid for lid, r in rules.items() if r.get("from_port") == 80 and r.get("cidr_ipv4"))
    del rules[port80]["//"]["checkov_skip"]                      # the port-80 rule loses its reason
    vpc = next(iter(doc["resource"]["aws_vpc"].values()))
    vpc["//"]["checkov_skip"] = {"CKV2_AWS_11": "Flow logs are configured elsewhere in this test."}  # stale
    vpc["tags"]["aws_access_key_id"] = "AKIAIOSFODNN7EXAMPLX"  # planted, fake
    path.write_text(json.dumps(doc, indent=2))
    (root / "bad-stack").mkdir()
    (root / "bad-stack" / "cdk.tf.json").write_text(json.dumps(BAD_STACK))
    return run_gate(root, root / "report"), root, port80


def test_gate_fails_on_unexplained_failure_stale_skip_and_secret(broken) -> None:
    result, root, port80 = broken
    assert not result.ok
    assert [(f.check_id, f.resource.rsplit(".", 1)[-1]) for f in result.unexplained
            if f.stack == "dev-network"] == [("CKV_AWS_260", port80)]
    assert [f.check_id for f in result.stale] == ["CKV2_AWS_11"]
    assert [f for f in result.secrets if f.stack == "dev-network"]
    assert "Verdict: **FAIL**" in (root / "report" / "report.md").read_text()


def test_custom_policies_catch_what_the_spec_forbids(broken) -> None:
    """Each CKV_LLM check fails on a resource that breaks the platform's own rule."""
    result, _, _ = broken
    failed = {f.check_id for f in result.unexplained if f.stack == "bad-stack"}
    assert {f"CKV_LLM_{n}" for n in range(1, 7)} <= failed


def test_gate_reads_the_key_the_constructs_write() -> None:
    from modules.compliance import SKIP_KEY as written
    from policies.gate import SKIP_KEY as read
    assert written == read


def test_custom_policy_and_constructs_agree_on_what_is_stateful() -> None:
    from modules.storage import STATEFUL_TYPES
    from policies.checks.platform_checks import STATEFUL
    assert sorted(STATEFUL) == sorted(STATEFUL_TYPES)
