"""Checkov over stack files: one process per core, each stack's result cached by its inputs.

A stack's result depends on nothing but the Checkov release, the gate's own code (which
frameworks, which flags: `policies/gate.py` and this file), the platform's custom checks
(`policies/checks/`) and the stack file itself, which also holds the skips declared in
code. Those, with the file's path (results name it), make the key of its entry in
`.build/checkov/`; a stack whose key is there is never rescanned. The rest are split over
one Checkov process per core, by size, forked from one process that loaded Checkov once. The cache is outside git and safe to delete;
`python -m policies.gate --no-cache` ignores it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from checkov.version import version as CHECKOV_VERSION  # a plain string: no Checkov runtime loaded here

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CUSTOM_CHECKS = HERE / "checks"
CACHE_DIR = ROOT / ".build" / "checkov"
CODE = (HERE / "gate.py", HERE / "scan.py")
# What the gate reads of each Checkov result (policies.gate.classify); the rest is not kept.
KEPT = ("check_id", "check_name", "resource", "file_abs_path", "file_line_range")
STATUSES = ("passed_checks", "failed_checks")


class ScanError(Exception):
    """Checkov did not run."""


ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}  # offline, no update check


def checkov_args(files: list[Path]) -> list[str]:
    return ["-f", *map(str, files), "--framework", "terraform_json", "secrets", "--skip-download",
            "--external-checks-dir", str(CUSTOM_CHECKS), "-o", "json", "--compact"]


def run_checkov(files: list[Path]) -> list[dict]:
    """One Checkov run over `files` (in the helper process, which reads the `terraform` block as
    the gate does): its JSON reports, one per framework."""
    return run_checkov_groups([files])[0]


def _reports(code: int, stdout: str, stderr: str) -> list[dict]:
    if code not in (0, 1) or not stdout.strip():
        raise ScanError(f"checkov did not run (exit {code}):\n{stderr[-2000:]}")
    reports = json.loads(stdout)
    return reports if isinstance(reports, list) else [reports]


def run_checkov_groups(groups: list[list[Path]]) -> list[list[dict]]:
    """Checkov over each group of files, in parallel, at the start cost of one process: a helper
    process loads Checkov (~2.5 s of CPU) once, then forks one child per group (`_fork_groups`)."""
    with tempfile.TemporaryDirectory() as out:
        spec = json.dumps({"groups": [[str(f) for f in group] for group in groups], "out": out})
        proc = subprocess.run([sys.executable, "-m", "policies.scan", spec], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, **ENV}, check=False)
        if proc.returncode != 0:
            raise ScanError(f"checkov did not run (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
        codes = json.loads(proc.stdout.splitlines()[-1])
        return [_reports(codes[i], Path(out, f"{i}.json").read_text(), proc.stderr) for i in range(len(groups))]


def _fork_groups(groups: list[list[str]], out: str) -> list[int]:
    """In the helper process: Checkov loaded here, each group scanned by a forked child whose
    standard output is `out/<i>.json`; their exit codes by group."""
    import checkov.main

    _read_terraform_block_attributes()
    sys.stdout.flush()
    children: dict[int, int] = {}
    for i, group in enumerate(groups):
        pid = os.fork()
        if pid == 0:  # the child: one Checkov run, then out without running the parent's cleanup
            code = 2
            try:
                with open(Path(out, f"{i}.json"), "w") as report:
                    os.dup2(report.fileno(), sys.stdout.fileno())
                    code = checkov.main.Checkov(checkov_args([Path(f) for f in group])).run() or 0
                    sys.stdout.flush()
            finally:
                os._exit(code)
        children[pid] = i
    codes = {children[pid]: os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in list(children)}
    return [codes[i] for i in range(len(groups))]


def _read_terraform_block_attributes() -> None:
    """Checkov's JSON parser takes every entry of the `terraform` block for a nested block and
    rejects the whole file ("this method receives only dicts") on an attribute such as
    `required_version`. No check reads those attributes: the parser is given the block without them."""
    from checkov.terraform_json import parser

    prepare = parser.prepare_definition

    def without_attributes(definition: dict) -> dict:
        block = definition.get("terraform")
        if isinstance(block, dict):
            definition = {**definition, "terraform": {k: v for k, v in block.items() if isinstance(v, (dict, list))}}
        return prepare(definition)

    parser.prepare_definition = without_attributes


@dataclass(frozen=True)
class Scan:
    reports: list[dict]  # Checkov's JSON reports, stack by stack in the order asked
    scanned: list[Path]  # the files Checkov ran over; the others' results came from the cache


def scan(files: list[Path], cache_dir: Path | None = CACHE_DIR, jobs: int | None = None) -> Scan:
    """Checkov's reports over `files` (absolute paths); `cache_dir=None` rescans every one."""
    keys = {file: stack_key(file) for file in files}
    found = {file: _load(cache_dir, keys[file]) for file in files} if cache_dir else {}
    misses = [file for file in files if found.get(file) is None]
    for file, reports in scan_uncached(misses, jobs).items():
        found[file] = reports
        if cache_dir:
            _save(cache_dir, keys[file], reports)
    return Scan([report for file in files for report in found[file] or []], misses)


def scan_uncached(files: list[Path], jobs: int | None = None) -> dict[Path, list[dict]]:
    """Each file's reports, from one Checkov process per core over a share of the files."""
    if not files:
        return {}
    with tempfile.TemporaryDirectory(prefix="scannable-") as work:
        scanned = {_scannable(file, Path(work) / str(i)): file for i, file in enumerate(files)}
        groups = _balanced(list(scanned), max(1, min(jobs or os.cpu_count() or 1, len(files))))
        outputs = run_checkov_groups(groups)
    per_file: dict[Path, list[dict]] = {}
    for group, reports in zip(groups, outputs):
        for copy, found in split(reports, group).items():
            per_file[scanned[copy]] = _renamed(found, copy, scanned[copy])
    return per_file


# Top-level blocks that move state rather than declare resources (Terraform >= 1.5/1.7).
# Checkov's terraform_json parser reads every top-level key as `type: {name: body}` and
# reports a parsing error on their plain values, so it is shown a copy in which they are
# renamed to the comment key "//" (a later duplicate wins), keeping every line where it is.
STATE_BLOCKS = ("import", "removed", "moved")


def _scannable(file: Path, work: Path) -> Path:
    text = file.read_text()
    hidden = text
    for block in STATE_BLOCKS:
        hidden = hidden.replace(f'\n  "{block}": [', '\n  "//": [')
    if hidden == text:
        return file
    work.mkdir(parents=True)
    copy = work / file.name
    copy.write_text(hidden)
    return copy


def _renamed(reports: list[dict], copy: Path, original: Path) -> list[dict]:
    """`copy`'s reports as `original`'s (results name the file they are about)."""
    if copy == original:
        return reports
    text = json.dumps(reports).replace(json.dumps(str(copy.resolve()))[1:-1], json.dumps(str(original))[1:-1])
    return json.loads(text)


def _balanced(files: list[Path], count: int) -> list[list[Path]]:
    """`count` groups of about equal total size, largest files first (Checkov's time follows size)."""
    groups: list[list[Path]] = [[] for _ in range(count)]
    sizes = [0] * count
    for file in sorted(files, key=lambda f: (-f.stat().st_size, str(f))):
        smallest = sizes.index(min(sizes))
        groups[smallest].append(file)
        sizes[smallest] += file.stat().st_size
    return [sorted(group) for group in groups if group]


def split(reports: list[dict], files: list[Path]) -> dict[Path, list[dict]]:
    """One process's reports as each file's own: per framework, the results naming that file."""
    owner = {str(file.resolve()): file for file in files}
    per_file: dict[Path, list[dict]] = {file: [] for file in files}
    for report in reports:
        if "results" not in report:  # a framework that finds nothing prints a bare summary
            continue
        parts = {file: {status: [] for status in STATUSES} | {"parsing_errors": []} for file in files}
        for status in STATUSES:
            for check in report["results"].get(status, []):
                file = owner[str(Path(check["file_abs_path"]).resolve())]
                parts[file][status].append({k: check[k] for k in KEPT})
        for error in report["results"].get("parsing_errors", []):
            parts[owner.get(str(Path(error).resolve()), files[0])]["parsing_errors"].append(error)
        for file, results in parts.items():
            if any(results.values()):
                per_file[file].append({"check_type": report["check_type"], "results": results})
    return per_file


def stack_key(file: Path) -> str:
    """Hex digest of everything a stack's result depends on (see the module's docstring)."""
    digest = hashlib.sha256(code_key().encode())
    digest.update(f"{file.resolve()}\0".encode())
    digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


@cache
def code_key() -> str:
    digest = hashlib.sha256(f"checkov {CHECKOV_VERSION}\n".encode())
    checks = sorted(p for p in CUSTOM_CHECKS.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in (*CODE, *checks):
        digest.update(f"{path.relative_to(ROOT).as_posix()}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _load(cache_dir: Path, key: str) -> list[dict] | None:
    try:
        return json.loads((cache_dir / f"{key}.json").read_text())
    except (OSError, ValueError):  # absent or unreadable: a miss, scanned again
        return None


def _save(cache_dir: Path, key: str, reports: list[dict]) -> None:
    """Written whole or not at all, so concurrent gates never read half an entry."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=cache_dir, suffix=".tmp", delete=False) as tmp:
        json.dump(reports, tmp, separators=(",", ":"))
    os.replace(tmp.name, cache_dir / f"{key}.json")


if __name__ == "__main__":  # the helper process of run_checkov_groups
    if len(sys.argv) != 2 or not sys.argv[1].startswith("{"):
        print("usage: python -m policies.scan REQUEST_JSON\n\nThe compliance gate's helper process, not a command: "
              "run python -m policies.gate.", file=sys.stderr)
        sys.exit(0 if sys.argv[1:] in (["-h"], ["--help"]) else 2)
    request = json.loads(sys.argv[1])
    print(json.dumps(_fork_groups(request["groups"], request["out"])))
