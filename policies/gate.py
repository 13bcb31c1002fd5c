"""Compliance gate: Checkov over the stacks of the current synth, with the skips declared in code.

    python -m policies.gate [--outdir cdktf.out] [--report-dir compliance-report]

    python -m policies.gate --no-cache   # rescan every stack

Scans exactly the stacks listed in `<outdir>/manifest.json`, which every synth rewrites, so
a stack directory left over from an earlier synth is never scanned. Runs Checkov offline
(terraform_json + secrets frameworks, plus the custom checks in `policies/checks/`) over
those stack files — a stack unchanged since it was last scanned is read from the cache in
`.build/checkov/` instead, the others are split over one Checkov process per core
(`policies/scan.py`) — then classifies every failed check:

- skipped:     the resource declares a skip for that check id (`modules.parts.compliance.skip`);
- unexplained: no skip is declared — the gate fails;
- stale skip:  a declared skip that matches no failure — the gate fails, so skips are
               removed when the resource is fixed.

Secrets findings can never be skipped. Writes `report.md` (for reviewers), `report.json`,
`junit.xml` and `report.sarif` (for CI) to the report directory; exits 1 on any
unexplained failure, stale skip, secret or parsing error, and 2 if it cannot run at all.
The verdict and the reports are the same whether results came from the cache or not.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from xml.etree import ElementTree as ET

from policies.scan import CACHE_DIR, CHECKOV_VERSION, ScanError, run_checkov, scan

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTDIR = Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))  # where main.py synthesizes by default
SKIP_KEY = "checkov_skip"  # must match modules.parts.compliance.SKIP_KEY (not imported: no jsii load here)


class GateError(Exception):
    """The gate could not run (no synth, Checkov failed): one line on stderr, exit 2."""


@dataclass(frozen=True)
class Stack:
    name: str
    path: Path  # the synthesized cdk.tf.json
    uri: str    # the same file relative to the output directory, as reports name it


@dataclass(frozen=True)
class Finding:
    stack: str
    resource_type: str  # e.g. aws_s3_bucket; "provider" for provider blocks
    resource: str       # the logical id, i.e. the Terraform resource name
    check_id: str
    check_name: str
    reason: str = ""
    file: str = ""      # cdk.tf.json relative to the output directory
    line: int = 0       # first line of the resource in that file; 0 if unknown

    @property
    def address(self) -> str:
        return f"{self.resource_type}.{self.resource}" if self.resource_type else self.resource


@dataclass
class GateResult:
    stacks: list[str] = field(default_factory=list)
    passed: int = 0
    passed_by_check: dict[str, int] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)  # check id -> title, every check that ran
    skipped: list[Finding] = field(default_factory=list)
    unexplained: list[Finding] = field(default_factory=list)
    stale: list[Finding] = field(default_factory=list)
    secrets: list[Finding] = field(default_factory=list)
    parsing_errors: list[str] = field(default_factory=list)
    commit: str = "unknown"
    checkov_version: str = CHECKOV_VERSION
    run_at: str = ""  # UTC, ISO 8601
    outdir: str = ""  # the scanned synth output directory, absolute: findings' files are relative to it

    @property
    def ok(self) -> bool:
        return not (self.unexplained or self.stale or self.secrets or self.parsing_errors)


@dataclass
class StackIndex:
    """What the gate reads from one synthesized stack itself."""
    types: dict[str, str]             # logical id -> resource type
    skips: dict[str, dict[str, str]]  # logical id -> {check id: reason}


def manifest_stacks(outdir: Path) -> list[Stack]:
    """The stacks of the synth that wrote `outdir`, from its manifest; nothing else on disk counts."""
    manifest = outdir / "manifest.json"
    if not manifest.is_file():
        raise GateError(f"no synthesized stacks in {outdir} (no manifest.json); run `python main.py` first")
    entries = json.loads(manifest.read_text()).get("stacks", {})
    if not entries:
        raise GateError(f"no synthesized stacks in {outdir} (manifest.json lists none); run `python main.py` first")
    stacks = [Stack(name, outdir / e["synthesizedStackPath"], e["synthesizedStackPath"])
              for name, e in sorted(entries.items())]
    missing = [s.uri for s in stacks if not s.path.is_file()]
    if missing:
        raise GateError(f"{manifest} lists stacks that are missing on disk ({', '.join(missing)}); "
                        "run `python main.py` again")
    return stacks


def read_stack(path: Path) -> StackIndex:
    index = StackIndex({}, {})
    for type_, blocks in json.loads(path.read_text()).get("resource", {}).items():
        for logical_id, body in blocks.items():
            index.types[logical_id] = type_
            declared = body.get("//", {}).get(SKIP_KEY)
            if declared:
                index.skips[logical_id] = dict(declared)
    return index


def _natural(text: str) -> list:
    """Sort key that puts CKV_AWS_9 before CKV_AWS_10 and subnet_2 before subnet_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _order(f: Finding) -> tuple:
    # Line and reason only break ties, so the order never depends on the order results arrived in.
    return (_natural(f.stack), f.resource_type, _natural(f.resource), _natural(f.check_id), f.line, f.reason)


def _entity(entity: str, types: dict[str, str]) -> tuple[str, str]:
    """Checkov names `resource.<id>` (resource checks), `<type>.<id>` (graph checks) or `provider.aws`."""
    prefix, _, name = entity.partition(".")
    if not name:
        return "", prefix
    return (types.get(name, prefix) if prefix == "resource" else prefix), name


def classify(reports: list[dict], stacks: list[Stack]) -> GateResult:
    by_file = {s.path.resolve(): s for s in stacks}
    index = {s.name: read_stack(s.path) for s in stacks}
    result = GateResult(stacks=[s.name for s in stacks])
    checks = [(report["check_type"], status, by_file[Path(c["file_abs_path"]).resolve()], c)
              for report in reports if "results" in report  # a framework that finds nothing prints a bare summary
              for status in ("passed_checks", "failed_checks") for c in report["results"].get(status, [])]
    result.parsing_errors = sorted(e for r in reports for e in r.get("results", {}).get("parsing_errors", []))
    # Where each checked resource sits: places secrets (reported by line) and stale skips.
    spans = {(stack.name, _entity(c["resource"], index[stack.name].types)): c["file_line_range"]
             for kind, _, stack, c in checks if kind != "secrets"}
    passed: Counter[str] = Counter()
    used: set[tuple[str, str, str]] = set()
    for kind, status, stack, c in checks:
        check_id, title = c["check_id"], c["check_name"]
        result.titles[check_id] = title
        if status == "passed_checks":
            passed[check_id] += 1
            continue
        line = c["file_line_range"][0]
        if kind == "secrets":
            around = [(end - start, entity) for (name, entity), (start, end) in spans.items()
                      if name == stack.name and start <= line <= end]
            type_, resource = min(around)[1] if around else ("", f"line {line}")
            result.secrets.append(Finding(stack.name, type_, resource, check_id, title, file=stack.uri, line=line))
            continue
        type_, resource = _entity(c["resource"], index[stack.name].types)
        finding = Finding(stack.name, type_, resource, check_id, title, file=stack.uri, line=line)
        reason = index[stack.name].skips.get(resource, {}).get(check_id)
        if reason:
            used.add((stack.name, resource, check_id))
            result.skipped.append(Finding(**{**asdict(finding), "reason": reason}))
        else:
            result.unexplained.append(finding)
    for stack in stacks:
        types = index[stack.name].types
        for resource, declared in index[stack.name].skips.items():
            for check_id, reason in declared.items():
                if (stack.name, resource, check_id) not in used:
                    line = spans.get((stack.name, (types[resource], resource)), [0])[0]
                    title = result.titles.get(check_id, "(no such check ran in this scan)")
                    result.stale.append(Finding(stack.name, types[resource], resource, check_id, title, reason,
                                                stack.uri, line))
    result.passed = sum(passed.values())
    result.passed_by_check = {k: passed[k] for k in sorted(passed, key=_natural)}
    result.titles = {k: result.titles[k] for k in sorted(result.titles, key=_natural)}
    for findings in (result.skipped, result.unexplained, result.stale, result.secrets):
        findings.sort(key=_order)
    return result


def _git_commit() -> str:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


def run_gate(outdir: Path = DEFAULT_OUTDIR, report_dir: Path | None = None, *, cache_dir: Path | None = None,
             run_at: str | None = None, jobs: int | None = None) -> GateResult:
    return gate(outdir, report_dir, cache_dir=cache_dir, run_at=run_at, jobs=jobs)[0]


def gate(outdir: Path = DEFAULT_OUTDIR, report_dir: Path | None = None, *, cache_dir: Path | None = None,
         run_at: str | None = None, jobs: int | None = None) -> tuple[GateResult, list[str]]:
    """Scan the stacks listed in `outdir/manifest.json`; write the reports if `report_dir` is given.
    Results are kept in and read from `cache_dir` if given (the command line's default: CACHE_DIR);
    `run_at` (UTC, ISO 8601) defaults to now; `jobs` Checkov processes (default: one per core)."""
    run_at = run_at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    stacks = manifest_stacks(outdir)
    try:
        scanned = scan([s.path.resolve() for s in stacks], cache_dir, jobs)
    except ScanError as err:
        raise GateError(str(err)) from err
    result = classify(scanned.reports, stacks)
    result.commit, result.run_at, result.outdir = _git_commit(), run_at, str(outdir.resolve())
    if report_dir:
        write_reports(result, report_dir)
    return result, [s.name for s in stacks if s.path.resolve() in scanned.scanned]


# --- reports -------------------------------------------------------------------------------

def write_reports(result: GateResult, report_dir: Path) -> None:
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.json").write_text(json.dumps({**asdict(result), "ok": result.ok}, indent=2))
    (report_dir / "report.md").write_text(markdown(result))
    (report_dir / "report.sarif").write_text(json.dumps(sarif(result), indent=2))
    junit(result).write(report_dir / "junit.xml", encoding="utf-8", xml_declaration=True)


def summary(result: GateResult) -> str:
    return (f"{len(result.stacks)} stacks; {result.passed} checks passed; {len(result.skipped)} failed checks "
            f"skipped with a declared reason; {len(result.unexplained)} unexplained failures; "
            f"{len(result.stale)} stale skips; {len(result.secrets)} secrets; "
            f"{len(result.parsing_errors)} parsing errors")


def skip_groups(skipped: list[Finding]) -> dict[tuple[str, str], list[Finding]]:
    """One entry per distinct (check id, reason), with the findings it covers, both sorted."""
    groups: dict[tuple[str, str], list[Finding]] = {}
    for f in sorted(skipped, key=lambda f: (_natural(f.check_id), f.reason, _order(f))):
        groups.setdefault((f.check_id, f.reason), []).append(f)
    return groups


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(findings: list[Finding], with_reason: bool = False) -> list[str]:
    if not findings:
        return ["None.", ""]
    head = "| stack | resource type | resource | check | title |" + (" declared reason |" if with_reason else "")
    rows = [head, "|---" * (head.count("|") - 1) + "|"]
    for f in findings:
        row = f"| {f.stack} | `{f.resource_type}` | `{f.resource}` | {f.check_id} | {_cell(f.check_name)} |"
        rows.append(row + (f" {_cell(f.reason)} |" if with_reason else ""))
    return rows + [""]


def markdown(result: GateResult) -> str:
    groups = skip_groups(result.skipped)
    lines = [
        "# Compliance report", "",
        f"Verdict: **{'PASS' if result.ok else 'FAIL'}** — {summary(result)}.", "",
        f"- Commit: `{result.commit}`",
        f"- Checkov: {result.checkov_version}, offline; frameworks terraform_json and secrets, "
        "plus the platform's policies in `policies/checks/`",
        f"- Run at (UTC): {result.run_at}",
        f"- Stacks scanned (the synth's manifest.json): {', '.join(result.stacks)}", "",
        "## Unexplained failures", "", "Failed checks without a declared skip; each fails the gate.", "",
        *_table(result.unexplained),
        "## Secrets", "", "Secrets can never be skipped; each fails the gate.", "",
        *_table(result.secrets),
        "## Stale skips", "", "Declared skips that match no failure; each fails the gate until removed.", "",
        *_table(result.stale, with_reason=True),
    ]
    if result.parsing_errors:
        lines += ["## Parsing errors", "", *[f"- `{p}`" for p in result.parsing_errors], ""]
    lines += ["## Skipped checks, by reason", "",
              f"{len(result.skipped)} failed checks are skipped under {len(groups)} declared reasons. "
              "Each reason is declared in code on the construct that owns the resource.", ""]
    for (check_id, reason), findings in groups.items():
        lines += [f"### {check_id} — {findings[0].check_name}", "", f"> {reason}", "",
                  *[f"- {f.stack}: `{f.address}`" for f in findings], ""]
    lines += ["## Passed checks", "", f"{result.passed} passed results, by check.", "",
              "| check | title | passed |", "|---|---|---|",
              *[f"| {k} | {_cell(result.titles[k])} | {n} |" for k, n in result.passed_by_check.items()]]
    return "\n".join(lines) + "\n"


def junit(result: GateResult) -> ET.ElementTree:
    suite = ET.Element("testsuite", name="checkov", tests=str(
        result.passed + len(result.skipped) + len(result.unexplained) + len(result.stale) + len(result.secrets)),
        failures=str(len(result.unexplained) + len(result.stale) + len(result.secrets)),
        skipped=str(len(result.skipped)))
    for kind, findings in (("unexplained", result.unexplained), ("stale", result.stale),
                           ("secret", result.secrets)):
        for f in findings:
            case = ET.SubElement(suite, "testcase", classname=f.stack, name=f"{f.check_id} {f.address}")
            ET.SubElement(case, "failure", message=f"{kind}: {f.check_name}").text = f.reason or None
    for f in result.skipped:
        case = ET.SubElement(suite, "testcase", classname=f.stack, name=f"{f.check_id} {f.address}")
        ET.SubElement(case, "skipped", message=f.reason)
    return ET.ElementTree(suite)


# SARIF 2.1.0 (OASIS); policies/schemas/ holds the schema the tests validate against.
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
SYNTH_BASE, PROJECT_BASE = "CDKTF_OUT", "PROJECTROOT"  # uriBaseIds of the findings' files


def uri_bases(outdir: str) -> dict:
    """`originalUriBaseIds`: the synth output directory, relative to the project root when it lies
    inside it (as `cdktf.out/` does), so a code-scanning tool can map findings to files."""
    def directory(path: Path) -> str:
        return path.as_uri().rstrip("/") + "/"

    out = Path(outdir or DEFAULT_OUTDIR).resolve()
    bases = {PROJECT_BASE: {"uri": directory(ROOT), "description": {"text": "The project root."}}}
    try:
        relative = out.relative_to(ROOT)
        synth = {"uri": f"{relative.as_posix()}/", "uriBaseId": PROJECT_BASE}
    except ValueError:
        synth = {"uri": directory(out)}
    return {**bases, SYNTH_BASE: {**synth, "description": {
        "text": "The synth output directory (python main.py --outdir); each stack is stacks/<stack>/cdk.tf.json."}}}


def sarif(result: GateResult) -> dict:
    """SARIF 2.1.0: failures, secrets and stale skips are errors; skipped findings carry their reason
    as an in-source suppression, so code-scanning tools show them as justified, not open."""
    def entry(f: Finding, message: str, suppressed: bool = False) -> dict:
        physical: dict = {"artifactLocation": {"uri": f.file, "uriBaseId": SYNTH_BASE}}
        if f.line:
            physical["region"] = {"startLine": f.line}
        out = {"ruleId": f.check_id, "level": "error", "message": {"text": message},
               "locations": [{"physicalLocation": physical, "logicalLocations": [
                   {"name": f.resource, "fullyQualifiedName": f.address, "kind": "resource"}]}]}
        if suppressed:
            out["suppressions"] = [{"kind": "inSource", "justification": f.reason}]
        return out

    results = [entry(f, f"{f.check_name}: {f.address} ({f.stack}) fails and declares no skip.")
               for f in result.unexplained]
    results += [entry(f, f"{f.check_name} in {f.stack} at {f.address}.") for f in result.secrets]
    results += [entry(f, f"Declared skip of {f.check_id} on {f.address} ({f.stack}) matches no failure; "
                         f"remove it. Declared reason: {f.reason}") for f in result.stale]
    results += [entry(f, f"{f.check_name}: {f.address} ({f.stack}) fails; skipped with a declared reason.", True)
                for f in result.skipped]
    findings = result.unexplained + result.secrets + result.stale + result.skipped
    titles = {**result.titles, **{f.check_id: f.check_name for f in findings if f.check_id not in result.titles}}
    rules = [{"id": k, "name": titles[k], "shortDescription": {"text": titles[k]}}
             for k in sorted({f.check_id for f in findings}, key=_natural)]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [{
        "tool": {"driver": {"name": "checkov", "version": result.checkov_version,
                            "informationUri": "https://www.checkov.io", "rules": rules}},
        "originalUriBaseIds": uri_bases(result.outdir),
        "results": results,
    }]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR,
                        help="synth output directory holding manifest.json (default: cdktf.out, or $CDKTF_OUTDIR)")
    parser.add_argument("--report-dir", type=Path, default=ROOT / "compliance-report",
                        help="where report.md, report.json, junit.xml and report.sarif go (default: compliance-report/)")
    parser.add_argument("--no-cache", action="store_true",
                        help="rescan every stack, ignoring (and not writing) the results kept in the cache")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="where each stack's result is kept "
                        "(default: .build/checkov/; safe to delete)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="Checkov processes scanning stacks in parallel (default: one per core)")
    args = parser.parse_args(argv)
    try:
        result, scanned = gate(args.outdir, args.report_dir, cache_dir=None if args.no_cache else args.cache_dir,
                               jobs=args.jobs)
    except GateError as err:
        print(f"compliance gate: {err}", file=sys.stderr)
        return 2
    print(f"compliance gate: {'PASS' if result.ok else 'FAIL'} — {summary(result)}; "
          f"report: {args.report_dir / 'report.md'}")
    print(f"  scanned: {' '.join(scanned) or 'none'}; {len(result.stacks) - len(scanned)} unchanged, from the cache")
    for f in result.unexplained + result.stale + result.secrets:
        print(f"  {f.stack}: {f.check_id} {f.address} — {f.check_name}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
