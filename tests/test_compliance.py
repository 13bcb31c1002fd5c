"""SEC-1, SEC-2, SEC-5: the compliance gate over every stack, and that it can fail."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urljoin, urlparse
from urllib.request import url2pathname

import jsonschema
import pytest

from policies.gate import CHECKOV_VERSION, SYNTH_BASE, GateResult, main, run_gate, skip_groups

# The OASIS SARIF 2.1.0 schema (errata 01), shipped so the check runs offline.
SARIF_SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "policies" / "schemas" /
                           "sarif-schema-2.1.0.json").read_text())


def sarif_schema_errors(document: dict) -> list[str]:
    validator = jsonschema.Draft4Validator(SARIF_SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def resolve(location: dict, bases: dict) -> str:
    """An artifactLocation's absolute URI, through the run's originalUriBaseIds (SARIF 3.14.14)."""
    if "uriBaseId" not in location:
        return location["uri"]
    return urljoin(resolve(bases[location["uriBaseId"]], bases), location["uri"])


def test_gate_passes_every_stack_with_zero_unexplained_failures(gate, stacks, account_stacks) -> None:
    """The environments' stacks and the accounts' (whose import and removed blocks the gate
    shows Checkov renamed: Checkov's Terraform-JSON parser fails on them)."""
    result, _ = gate
    assert result.stacks == sorted([*stacks, *account_stacks]) and account_stacks
    assert result.unexplained == [] and result.stale == [] and result.secrets == [] and result.parsing_errors == []
    assert result.passed > 1000
    assert sum(result.passed_by_check.values()) == result.passed


def test_every_skip_has_a_reason_in_the_report(gate) -> None:
    """Every skipped finding appears in report.md under its own check id and reason."""
    result, report_dir = gate
    assert result.skipped
    assert all(len(f.reason.split()) >= 5 for f in result.skipped)
    markdown = (report_dir / "report.md").read_text()
    assert "Verdict: **PASS**" in markdown
    skips = markdown.split("## Skipped checks, by reason", 1)[1].split("\n## ", 1)[0]
    entries = skips.split("\n### ")[1:]
    assert len(entries) == len(skip_groups(result.skipped)) == len({(f.check_id, f.reason) for f in result.skipped})
    for finding in result.skipped:
        entry = next((e for e in entries if e.startswith(f"{finding.check_id} — {finding.check_name}\n")
                      and f"\n> {finding.reason}\n" in e), None)
        assert entry, f"no skip entry for {finding.check_id} with reason {finding.reason!r}"
        assert f"\n- {finding.stack}: `{finding.resource_type}.{finding.resource}`" in entry
        assert finding.resource_type.startswith("aws_")
    junit = (report_dir / "junit.xml").read_text()
    assert junit.count("<skipped ") == len(result.skipped)
    assert json.loads((report_dir / "report.json").read_text())["ok"] is True


def test_report_header_names_commit_checkov_and_time(gate) -> None:
    result, report_dir = gate
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True)
    assert result.commit == (proc.stdout.strip() if proc.returncode == 0 else "unknown")
    assert result.checkov_version == CHECKOV_VERSION
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.run_at)
    markdown = (report_dir / "report.md").read_text()
    for line in (f"- Commit: `{result.commit}`", f"- Checkov: {CHECKOV_VERSION}, offline",
                 f"- Run at (UTC): {result.run_at}",
                 f"- Stacks scanned (the synth's manifest.json): {', '.join(result.stacks)}"):
        assert line in markdown
    for check_id, count in result.passed_by_check.items():
        assert f"| {check_id} | {result.titles[check_id]} | {count} |" in markdown


def assert_valid_sarif(report_dir: Path, outdir: Path, result: GateResult) -> dict:
    """The SARIF 2.1.0 shape code-scanning tools need, and counts that match the gate's result."""
    sarif = json.loads((report_dir / "report.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["$schema"] == SARIF_SCHEMA["id"]
    assert sarif_schema_errors(sarif) == []
    [run] = sarif["runs"]
    bases = run["originalUriBaseIds"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "checkov" and driver["version"] == CHECKOV_VERSION
    rules = {r["id"]: r for r in driver["rules"]}
    assert len(rules) == len(driver["rules"])
    for rule in rules.values():
        assert rule["name"] and rule["shortDescription"]["text"] == rule["name"]
    for res in run["results"]:
        assert res["ruleId"] in rules and res["level"] == "error" and res["message"]["text"]
        [location] = res["locations"]
        artifact = location["physicalLocation"]["artifactLocation"]
        uri = artifact["uri"]
        assert not Path(uri).is_absolute() and (outdir / uri).is_file() and uri.endswith("/cdk.tf.json")
        assert artifact["uriBaseId"] == SYNTH_BASE  # resolvable: the base says where the synth output is
        absolute = urlparse(resolve(artifact, bases))
        assert absolute.scheme == "file" and Path(url2pathname(absolute.path)) == (outdir / uri).resolve()
        assert location["logicalLocations"][0]["fullyQualifiedName"]
    suppressed = [r for r in run["results"] if "suppressions" in r]
    assert len(suppressed) == len(result.skipped)
    assert sorted(r["suppressions"][0]["justification"] for r in suppressed) == sorted(f.reason for f in result.skipped)
    assert all(r["suppressions"][0]["kind"] == "inSource" for r in suppressed)
    assert len(run["results"]) - len(suppressed) == len(result.unexplained) + len(result.secrets) + len(result.stale)
    return run


def test_sarif_report_is_valid_and_matches_the_result(gate, synth_outdir) -> None:
    result, report_dir = gate
    run = assert_valid_sarif(report_dir, synth_outdir, result)
    assert {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in run["results"]} == \
        {f"{f.resource_type}.{f.resource}" for f in result.skipped}


def test_the_sarif_schema_check_catches_a_broken_report(gate) -> None:
    """The shipped schema is live: the same report without a result's message, or with a bad level, fails it."""
    _, report_dir = gate
    sarif = json.loads((report_dir / "report.sarif").read_text())
    result = sarif["runs"][0]["results"][0]
    del result["message"]
    result["level"] = "fatal"
    errors = sarif_schema_errors(sarif)
    assert any("'message' is a required property" in e for e in errors) and any("'fatal'" in e for e in errors)


def test_the_synth_directory_inside_the_project_is_named_relative_to_its_root() -> None:
    from policies.gate import PROJECT_BASE, ROOT, uri_bases
    bases = uri_bases(str(ROOT / "cdktf.out"))
    assert bases[SYNTH_BASE]["uri"] == "cdktf.out/" and bases[SYNTH_BASE]["uriBaseId"] == PROJECT_BASE
    assert bases[PROJECT_BASE]["uri"] == ROOT.as_uri() + "/"


def test_gate_before_any_synth_says_so_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--outdir", str(tmp_path / "cdktf.out"), "--report-dir", str(tmp_path / "report")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"compliance gate: no synthesized stacks in {tmp_path / 'cdktf.out'} (no manifest.json); "
                   "run `python main.py` first\n")
    assert not (tmp_path / "report").exists()


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
    "aws_sqs_queue_policy": {"q": {"queue_url": "u", "policy": json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
                                                 "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:x:1:q"}]})}},
    "aws_sqs_queue": {"nodlq": {"name": "requests", "kms_master_key_id": "k"}},
    "aws_cognito_user_pool": {"weak": {"name": "users", "mfa_configuration": "OFF",
                                       "password_policy": {"minimum_length": 8, "require_symbols": False}}},
}}


@pytest.fixture(scope="module")
def broken(synth_outdir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One gate run over a copy of the synth output whose manifest lists two broken stacks: a
    doctored dev-network, and resources that each break one of the platform's own policies.
    Every other stack directory in the copy is a leftover the gate must ignore, among them
    `old-network`, a copy of the doctored dev-network under a name the manifest does not list."""
    root = tmp_path_factory.mktemp("broken-synth") / "cdktf.out"
    shutil.copytree(synth_outdir, root)
    path = root / "stacks" / "dev-network" / "cdk.tf.json"
    doc = json.loads(path.read_text())
    rules = doc["resource"]["aws_vpc_security_group_ingress_rule"]
    port80 = next(lid for lid, r in rules.items() if r.get("from_port") == 80 and r.get("cidr_ipv4"))
    del rules[port80]["//"]["checkov_skip"]                      # the port-80 rule loses its reason
    vpc = next(iter(doc["resource"]["aws_vpc"].values()))
    vpc["//"]["checkov_skip"] = {"CKV2_AWS_11": "Flow logs are configured elsewhere in this test."}  # stale
    vpc["tags"]["aws_access_key_id"] = "AKIAIOSFODNN7EXAMPLX"  # planted, fake
    path.write_text(json.dumps(doc, indent=2))
    shutil.copytree(path.parent, root / "stacks" / "old-network")
    (root / "stacks" / "bad-stack").mkdir()
    (root / "stacks" / "bad-stack" / "cdk.tf.json").write_text(json.dumps(BAD_STACK))
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["stacks"] = {name: {**manifest["stacks"]["dev-network"], "name": name,
                                 "synthesizedStackPath": f"stacks/{name}/cdk.tf.json",
                                 "workingDirectory": f"stacks/{name}"} for name in ("dev-network", "bad-stack")}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return run_gate(root, root.parent / "report"), root, port80


def test_gate_scans_only_the_stacks_in_the_manifest(broken) -> None:
    result, root, _ = broken
    assert (root / "stacks" / "old-network" / "cdk.tf.json").is_file() and (root / "stacks" / "prod-data").is_dir()
    assert result.stacks == ["bad-stack", "dev-network"]
    findings = result.skipped + result.unexplained + result.stale + result.secrets
    assert {f.stack for f in findings} == {"bad-stack", "dev-network"}
    assert {f.file for f in findings} == {"stacks/bad-stack/cdk.tf.json", "stacks/dev-network/cdk.tf.json"}
    assert len(result.secrets) == 1  # the planted key once, not again from the leftover copy


def test_gate_fails_on_unexplained_failure_stale_skip_and_secret(broken) -> None:
    result, root, port80 = broken
    assert not result.ok
    assert [(f.check_id, f.resource.rsplit(".", 1)[-1]) for f in result.unexplained
            if f.stack == "dev-network"] == [("CKV_AWS_260", port80)]
    assert [f.check_id for f in result.stale] == ["CKV2_AWS_11"]
    [secret] = [f for f in result.secrets if f.stack == "dev-network"]
    assert (secret.resource_type, secret.line > 0) == ("aws_vpc", True)  # placed in the resource that holds it
    report_dir = root.parent / "report"
    markdown = (report_dir / "report.md").read_text()
    assert "Verdict: **FAIL**" in markdown
    assert f"| dev-network | `aws_vpc_security_group_ingress_rule` | `{port80}` | CKV_AWS_260 | " in markdown
    def natural(text: str) -> list:
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]
    for findings in (result.unexplained, result.stale, result.secrets, result.skipped):
        assert findings == sorted(findings, key=lambda f: (natural(f.stack), f.resource_type, natural(f.resource),
                                                           natural(f.check_id)))
    run = assert_valid_sarif(report_dir, root, result)
    assert [r["ruleId"] for r in run["results"] if r["message"]["text"].startswith("Declared skip")] == ["CKV2_AWS_11"]


def test_custom_policies_catch_what_the_spec_forbids(broken) -> None:
    """Each CKV_LLM check fails on a resource that breaks the platform's own rule."""
    result, _, _ = broken
    failed = {f.check_id for f in result.unexplained if f.stack == "bad-stack"}
    assert {f"CKV_LLM_{n}" for n in range(1, 10)} <= failed


def test_gate_reads_the_key_the_constructs_write() -> None:
    from modules.parts.compliance import SKIP_KEY as written
    from policies.gate import SKIP_KEY as read
    assert written == read


def test_custom_policy_and_constructs_agree_on_what_is_stateful() -> None:
    from modules.parts.storage import STATEFUL_TYPES
    from policies.checks.platform_checks import STATEFUL
    assert sorted(STATEFUL) == sorted(STATEFUL_TYPES)
