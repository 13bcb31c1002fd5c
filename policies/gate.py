"""Compliance gate: Checkov over every synthesized stack, with the skips declared in code.

    python -m policies.gate [--stacks cdktf.out/stacks] [--report-dir compliance-report]

Runs Checkov offline (terraform_json + secrets frameworks, plus the custom checks in
`policies/checks/`) in one process over all stacks, then classifies every failed check:

- skipped:     the resource declares a skip for that check id (`modules.compliance.skip`);
- unexplained: no skip is declared — the gate fails;
- stale skip:  a declared skip that matches no failure — the gate fails, so skips are
               removed when the resource is fixed.

Secrets findings can never be skipped. Writes `report.json`, `report.md` (for people) and
`junit.xml` (for CI) to the report directory; exits 1 on any unexplained failure or stale skip.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

ROOT = Path(__file__).resolve().parent.parent
CUSTOM_CHECKS = Path(__file__).resolve().parent / "checks"
SKIP_KEY = "checkov_skip"  # must match modules.compliance.SKIP_KEY (not imported: no jsii load here)


@dataclass(frozen=True)
class Finding:
    stack: str
    resource: str
    check_id: str
    check_name: str
    reason: str = ""


@dataclass
class GateResult:
    passed: int = 0
    skipped: list[Finding] = field(default_factory=list)
    unexplained: list[Finding] = field(default_factory=list)
    stale: list[Finding] = field(default_factory=list)
    secrets: list[Finding] = field(default_factory=list)
    parsing_errors: list[str] = field(default_factory=list)
    stacks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.unexplained or self.stale or self.secrets or self.parsing_errors)


def declared_skips(stacks_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """(stack, logical id) -> {check id: reason}, read from the synthesized JSON."""
    skips: dict[tuple[str, str], dict[str, str]] = {}
    for path in sorted(stacks_dir.glob("*/cdk.tf.json")):
        resources = json.loads(path.read_text()).get("resource", {})
        for blocks in resources.values():
            for logical_id, body in blocks.items():
                declared = body.get("//", {}).get(SKIP_KEY)
                if declared:
                    skips[(path.parent.name, logical_id)] = dict(declared)
    return skips


def run_checkov(stacks_dir: Path) -> list[dict]:
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}
    cmd = [sys.executable, "-m", "checkov.main", "-d", str(stacks_dir), "--framework", "terraform_json", "secrets",
           "--skip-download", "--external-checks-dir", str(CUSTOM_CHECKS), "-o", "json", "--compact"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"checkov did not run (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    reports = json.loads(proc.stdout)
    return reports if isinstance(reports, list) else [reports]


def classify(reports: list[dict], skips: dict[tuple[str, str], dict[str, str]]) -> GateResult:
    result = GateResult()
    used: set[tuple[str, str, str]] = set()
    for report in reports:
        if "results" not in report:  # checkov prints a bare summary when a framework finds nothing
            continue
        result.passed += len(report["results"].get("passed_checks", []))
        result.parsing_errors += report["results"].get("parsing_errors", [])
        for failed in report["results"].get("failed_checks", []):
            stack = Path(failed["file_path"]).parent.name
            logical_id = failed["resource"].rsplit(".", 1)[-1]
            finding = Finding(stack, failed["resource"], failed["check_id"], failed["check_name"])
            if report["check_type"] == "secrets":
                result.secrets.append(finding)
                continue
            reason = skips.get((stack, logical_id), {}).get(failed["check_id"])
            if reason:
                used.add((stack, logical_id, failed["check_id"]))
                result.skipped.append(Finding(**{**asdict(finding), "reason": reason}))
            else:
                result.unexplained.append(finding)
    for (stack, logical_id), checks in skips.items():
        for check_id, reason in checks.items():
            if (stack, logical_id, check_id) not in used:
                result.stale.append(Finding(stack, logical_id, check_id, "declared skip matches no failure", reason))
    return result


def run_gate(stacks_dir: Path, report_dir: Path | None = None) -> GateResult:
    stacks = sorted(p.parent.name for p in stacks_dir.glob("*/cdk.tf.json"))
    if not stacks:
        raise RuntimeError(f"no synthesized stacks under {stacks_dir}; run `python main.py` first")
    result = classify(run_checkov(stacks_dir), declared_skips(stacks_dir))
    result.stacks = stacks
    if report_dir:
        write_reports(result, report_dir)
    return result


# --- reports -------------------------------------------------------------------------------

def write_reports(result: GateResult, report_dir: Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps({**asdict(result), "ok": result.ok}, indent=2))
    (report_dir / "report.md").write_text(_markdown(result))
    _junit(result).write(report_dir / "junit.xml", encoding="utf-8", xml_declaration=True)


def _markdown(result: GateResult) -> str:
    lines = [
        "# Compliance report", "",
        f"Verdict: **{'PASS' if result.ok else 'FAIL'}** — {len(result.stacks)} stacks, "
        f"{result.passed} checks passed, {len(result.skipped)} skipped with a reason, "
        f"{len(result.unexplained)} unexplained failures, {len(result.stale)} stale skips, "
        f"{len(result.secrets)} secrets.", "",
    ]
    for title, findings in (("Unexplained failures", result.unexplained), ("Secrets", result.secrets),
                            ("Stale skips", result.stale)):
        if findings:
            lines += [f"## {title}", "", "| stack | resource | check | name |", "|---|---|---|---|"]
            lines += [f"| {f.stack} | `{f.resource}` | {f.check_id} | {f.check_name} |" for f in findings]
            lines.append("")
    lines += ["## Skipped checks and their reasons", "", "| stack | resource | check | reason |",
              "|---|---|---|---|"]
    lines += [f"| {f.stack} | `{f.resource}` | {f.check_id} | {f.reason} |" for f in result.skipped]
    return "\n".join(lines) + "\n"


def _junit(result: GateResult) -> ET.ElementTree:
    suite = ET.Element("testsuite", name="checkov", tests=str(
        result.passed + len(result.skipped) + len(result.unexplained) + len(result.stale) + len(result.secrets)),
        failures=str(len(result.unexplained) + len(result.stale) + len(result.secrets)),
        skipped=str(len(result.skipped)))
    for kind, findings in (("unexplained", result.unexplained), ("stale", result.stale),
                           ("secret", result.secrets)):
        for f in findings:
            case = ET.SubElement(suite, "testcase", classname=f.stack, name=f"{f.check_id} {f.resource}")
            ET.SubElement(case, "failure", message=f"{kind}: {f.check_name}").text = f.reason or None
    for f in result.skipped:
        case = ET.SubElement(suite, "testcase", classname=f.stack, name=f"{f.check_id} {f.resource}")
        ET.SubElement(case, "skipped", message=f.reason)
    return ET.ElementTree(suite)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", type=Path, default=ROOT / "cdktf.out" / "stacks")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "compliance-report")
    args = parser.parse_args(argv)
    result = run_gate(args.stacks, args.report_dir)
    print(f"compliance gate: {'PASS' if result.ok else 'FAIL'} — {len(result.stacks)} stacks, "
          f"{result.passed} passed, {len(result.skipped)} skipped with reasons, "
          f"{len(result.unexplained)} unexplained, {len(result.stale)} stale skips, {len(result.secrets)} secrets; "
          f"report: {args.report_dir / 'report.md'}")
    for f in result.unexplained + result.stale + result.secrets:
        print(f"  {f.stack}: {f.check_id} {f.resource} — {f.check_name}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
