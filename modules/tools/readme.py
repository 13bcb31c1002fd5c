"""The README's generated sections, from the code and the synth so they cannot drift.

    python main.py && python -m modules.tools.readme [--write] [--outdir cdktf.out]

Each section sits between `<!-- generated: NAME … -->` and `<!-- end generated: NAME -->`
in README.md; everything else in the README is written by hand. Without `--write` the
command only says which sections differ (exit 1); a test does the same over the test
session's synth. The sections and their sources:

- `synth-output`: a sample of what `python main.py` prints, from the synth's manifest and
  the benchmark's last cold synth time;
- `layout`: the project tree, each entry described by its own docstring or leading comment
  (a moved or new module needs only a regeneration);
- `custom-policies`: the platform's Checkov policies, from the checks themselves;
- `skips`: every Checkov skip declared in the synthesized stacks, with its reason;
- `performance`: the benchmark's last run (`docs/benchmark.json`, written by
  `tests/benchmark.py`), with its date and machine: cold and warm figures, each target's
  figure and PASS or MISS;
- `rehearsal`: the offline rehearsal's committed reports (`docs/rehearsal/<env>.json`, saved by
  `python -m modules.rehearsal ENV ... --save`): per environment its counts and result.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modules.tools.synthesized import DEFAULT_OUTDIR, SynthError, plural, synth_summary

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BENCHMARK = ROOT / "docs" / "benchmark.json"
REHEARSALS = ROOT / "docs" / "rehearsal"
COMMAND = "python -m modules.tools.readme --write"
SKIP_KEY = "checkov_skip"  # as modules.parts.compliance writes it (not imported: no jsii here)

# Entries that cannot describe themselves (no room for a docstring or comment). A path here
# that no longer exists is an error, so a move shows up as a failing test, not a stale row.
NOTES = {
    "cdktf.json": "The cdktn CLI's config: `cdktn synth|diff|deploy` run `pipenv run python main.py`.",
    "Pipfile": "Dependencies; `Pipfile.lock` pins every version and hash.",
    "environments": "One folder per environment, holding its `environment.toml`",
    "docs": "Generated documents, committed",
    "terraform-modules": "Every layer as a plain Terraform module (generated: `python main.py --export-modules`)",
    "examples": "Plain Terraform roots that use `terraform-modules/`",
    "policies/schemas": "JSON schemas the tests validate the gate's reports against (SARIF 2.1.0, from OASIS)",
    "tests/stateful_addresses.json": "The pinned Terraform addresses of stateful resources (`tests/test_addresses.py`).",
}
# Not rows of their own: described by a neighbour (the package, the Pipfile) or this README.
HIDDEN = ("README.md", "Pipfile.lock", "__init__.py")
SHOWN_DOTDIRS = (".ci",)  # hidden entries worth a row


# --- sections ----------------------------------------------------------------------------------

def synth_output(stacks: list[str], bench: dict[str, Any]) -> str:
    environments = sorted({s.rsplit("-", 1)[0] for s in stacks if not s.startswith("account-")})
    seconds = bench["rows"]["synth_cold"]["wall_s"]
    return "\n".join(["```", "$ python main.py", synth_summary(environments, stacks, seconds, "cdktf.out/stacks"),
                      "```"])


def custom_policies() -> str:
    from policies.checks.platform_checks import checks  # Checkov's base classes: imported only here

    rows = ["| id | rule | resources |", "|---|---|---|"]
    for check in sorted(checks, key=lambda c: int(c.id.rsplit("_", 1)[1])):
        note = _first_sentence(type(check).__doc__ or "")  # a class docstring, where the rule needs a word more
        rule = check.name + (f" — {note}" if note else "")
        resources = ", ".join(f"`{r}`" for r in check.supported_resources)
        rows.append(f"| {check.id} | {_cell(rule)} | {resources} |")
    return "\n".join(rows)


def skips(stack_docs: dict[str, dict[str, Any]]) -> str:
    """Every declared skip, one row per check and reason, with where it applies."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    for stack, doc in stack_docs.items():
        env = stack.rsplit("-", 1)[0]
        for blocks in doc.get("resource", {}).values():
            for body in blocks.values():
                for check_id, reason in (body.get("//", {}).get(SKIP_KEY) or {}).items():
                    where = found.setdefault((check_id, reason), {})
                    where[env] = where.get(env, 0) + 1
    environments = sorted({s.rsplit("-", 1)[0] for s in stack_docs})
    rows = ["| check | where | reason |", "|---|---|---|"]
    for (check_id, reason), where in sorted(found.items(), key=lambda item: (_natural(item[0][0]), item[0][1])):
        envs = "every environment" if sorted(where) == environments else ", ".join(f"`{e}`" for e in sorted(where))
        count = plural(sum(where.values()), "resource")
        rows.append(f"| {check_id} | {envs} ({count}) | {_cell(reason)} |")
    return "\n".join(rows)


def performance(bench: dict[str, Any]) -> str:
    rows = bench["rows"]
    envs = plural(len(bench["environments"]), "environment")
    edited = bench["environments"][0]
    load = f", load average {bench['load_average']:.1f} at the start" if "load_average" in bench else ""
    if "load_average_end" in bench:
        load += f" and {bench['load_average_end']:.1f} at the end"
    lines = [f"Last run: {bench['date']}, on {bench['machine']}; median of {plural(bench['runs'], 'run')}{load}.",
             "", "| | wall | peak total | peak Python | largest process |", "|---|---|---|---|---|"]
    for key, label in (("floor", "eager floor (one resource, no on-demand loading)"),
                       ("synth_serial", f"today's path: serial synth, {envs} ({bench['stacks']} stacks), type checks on"),
                       ("gate_serial", "today's path: gate, one Checkov process"),
                       ("synth_cold", "cold synth: a worker per core, no type checks, empty cache"),
                       ("gate_cold", "cold gate: a Checkov process per core, empty cache"),
                       ("synth_warm", "warm synth, nothing changed"),
                       ("gate_warm", "warm gate, nothing changed"),
                       ("synth_edit", f"synth after editing {edited}'s file"),
                       ("gate_edit", f"gate after editing {edited}'s file")):
        row = rows[key]
        lines.append(f"| {label} | {row['wall_s']:.2f} s | {row['peak_total_mb']} MB | {row['peak_python_mb']} MB | "
                     f"{row['peak_process_mb']} MB |")
    lines += ["", "| target | figure | |", "|---|---|---|"]
    lines += [f"| {_cell(t['name'])} | {_cell(t['figure'])} | {'PASS' if t['met'] else 'MISS'} |"
              for t in bench["targets"]]
    if "rehearsal" in bench:
        run = bench["rehearsal"]
        lines += ["", f"The offline rehearsal (`tests/benchmark.py --rehearsal`), last run {run['date']}, load "
                      f"average {run['load_average']:.1f} at the start and {run['load_average_end']:.1f} at the end:",
                  "", "| target | figure | |", "|---|---|---|"]
        lines += [f"| {_cell(t['name'])} | {_cell(t['figure'])} | {'PASS' if t['met'] else 'MISS'} |"
                  for t in run["targets"]]
    return "\n".join(lines)


def rehearsal(reports: list[dict[str, Any]]) -> str:
    """The committed rehearsal reports as a status table; the counts are the reports' own."""
    if not reports:
        return "No rehearsal report is committed (`python -m modules.rehearsal dev --save`)."
    lines = ["| environment | result | stacks | planned | created | clean re-plan | explained | knock-on | replaced "
             "| unexplained | destroyed by Terraform | refused (protected) | removed by rows | smoke | seconds | run |",
             "|" + "---|" * 16]
    for report in reports:
        total, stacks = report["total"], report["stacks"].values()
        clean = f"{total['clean_replan']} ({100 * total['clean_replan'] / max(total['created'], 1):.0f} %)"
        smoke = report["smoke"]
        smoked = ("passed" if smoke["passed"] else "FAILED") if smoke["steps"] else "not run"
        refused = sum(s["destroy"].startswith("refused") for s in stacks)
        earlier = report.get("earlier_attempts", [])
        result = ("passed" if report["ok"] else "FAILED") + (f" (attempt {len(earlier) + 1})" if earlier else "")
        lines.append(f"| {report['environment']} | {result} | {len(report['stacks'])} "
                     f"| {total['planned']} | {total['created']} | {clean} | {sum(total['explained'].values())} "
                     f"| {total['knock_on']} | {total['replaced']} | {total['unexplained']} "
                     f"| {total['destroyed_by_terraform']} | {refused} | {total['removed_by_rows']} | {smoked} "
                     f"| {total['seconds']:.0f} | {report.get('date', '?')}, load {report.get('load_average', '?')} |")
    for report in reports:
        problems = ([report["error"]] if report["error"] else []) + [
            f"{name}: {failure}" for name, s in report["stacks"].items() for failure in s["failures"]]
        if problems:
            shown = problems[:5] + ([f"… and {len(problems) - 5} more"] if len(problems) > 5 else [])
            lines += ["", f"{report['environment']} failed: " + "; ".join(_cell(p) for p in shown)]
        for number, reasons in enumerate(report.get("earlier_attempts", []), 1):
            lines += ["", f"{report['environment']} attempt {number} failed: "
                      + "; ".join(_cell(r.strip()) for r in reasons)]
        replaced = [f"`{r['address']}` ({', '.join(r['rows']) or 'UNEXPLAINED'})"
                    for s in report["stacks"].values() for r in s["replacements"]]
        if replaced:
            lines += ["", f"{report['environment']} replaced on re-plan: " + ", ".join(replaced)]
    provider = sorted({r["provider_version"] for r in reports})
    lines += ["", f"AWS provider {', '.join(provider)}; rows applied: "
              + ", ".join(f"`{row}`" for row in sorted({row for r in reports for row in r["rows"]})) + "."]
    return "\n".join(lines)


def layout(root: Path = ROOT) -> str:
    missing = [path for path in NOTES if not (root / path).exists()]
    if missing:
        raise SynthError(f"modules/tools/readme.py NOTES names paths that do not exist: {', '.join(missing)}. "
                         "Fix: move or remove their entries.")
    ignored = _ignored(root)
    rows = ["| path | what |", "|---|---|"]
    rows += [f"| `{path}` | {_cell(text)} |" for path, text in _rows(root, root, ignored, top=True)]
    return "\n".join(rows)


# --- layout: the tree, described by itself -----------------------------------------------------

def _ignored(root: Path) -> list[str]:
    """Patterns of `.gitignore` plus hidden entries: what is not part of the project."""
    patterns = ["__pycache__", "*.pyc"]
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        patterns += [line.strip().rstrip("/") for line in gitignore.read_text().splitlines()
                     if line.strip() and not line.startswith("#")]
    return patterns


def _children(directory: Path, ignored: list[str]) -> list[Path]:
    return sorted((p for p in directory.iterdir() if not any(fnmatch.fnmatch(p.name, pat) for pat in ignored)
                   and (not p.name.startswith(".") or p.name in SHOWN_DOTDIRS)),
                  key=lambda p: (p.is_dir(), p.name.lstrip(".").lower()))


def _rows(root: Path, directory: Path, ignored: list[str], top: bool = False) -> list[tuple[str, str]]:
    """Rows for the entries of `directory`: files by their own description; below the top level
    a folder is one row (its package docstring and modules, or its one file)."""
    rows: list[tuple[str, str]] = []
    children = _children(directory, ignored)
    tests = [p for p in children if p.is_file() and fnmatch.fnmatch(p.name, "test_*.py")]
    for child in children:
        rel = child.relative_to(root).as_posix()
        if child in tests[1:] or child.name in HIDDEN:
            continue
        if child in tests:
            names = ", ".join(p.stem.removeprefix("test_") for p in tests)
            rows.append((f"{child.parent.relative_to(root).as_posix()}/test_*.py",
                         f"The pytest suite, {plural(len(tests), 'file')}: {names}."))
        elif child.is_file():
            text = NOTES.get(rel) or _describe_file(child)
            if text:
                rows.append((rel, text))
        elif rel in NOTES or not _holds_code(child):
            rows.append((f"{rel}/", _describe_data_dir(child, rel, ignored)))
        elif top:
            package = child / "__init__.py"
            if package.is_file() and (text := _describe_file(package)):
                rows.append((f"{rel}/", text))
            rows += _rows(root, child, ignored)
        else:
            rows.append(_describe_code_dir(root, child, ignored))
    return rows


def _holds_code(directory: Path) -> bool:
    """Python, JavaScript or shell, the last also as an executable script without a suffix."""
    return any(p.suffix in (".py", ".js", ".sh") or (p.is_file() and not p.suffix and p.read_bytes()[:2] == b"#!")
               for p in directory.rglob("*"))


def _describe_code_dir(root: Path, directory: Path, ignored: list[str]) -> tuple[str, str]:
    rel = directory.relative_to(root).as_posix()
    files = [p for p in _children(directory, ignored) if p.is_file()]
    if (directory / "__init__.py").is_file():
        modules = ", ".join(p.stem for p in files if p.suffix == ".py" and p.name != "__init__.py")
        return f"{rel}/", f"{_describe_file(directory / '__init__.py')} Modules: {modules}."
    if len(files) == 1:
        return files[0].relative_to(root).as_posix(), _describe_file(files[0])
    return f"{rel}/", ", ".join(f"`{p.name}`" for p in files)


def _describe_data_dir(directory: Path, rel: str, ignored: list[str]) -> str:
    names = ", ".join(f"`{p.name}{'/' if p.is_dir() else ''}`" for p in _children(directory, ignored))
    return f"{NOTES[rel]}: {names}." if rel in NOTES else f"{names}."


def _describe_file(path: Path) -> str:
    """The first sentence of a module's docstring or of a file's leading comment."""
    text = path.read_text(errors="replace")
    if path.suffix == ".py":
        try:
            doc = ast.get_docstring(ast.parse(text)) or ""
        except SyntaxError:
            doc = ""
        return _first_sentence(doc)
    comment = []
    for line in text.splitlines():
        if line.startswith("#!") and not comment:
            continue
        match = re.match(r"^\s*(#|//)\s?(.*)$", line)
        if not match or (comment and not match[2].strip()):
            break
        comment.append(match[2])
    return _first_sentence("\n".join(comment))


def _first_sentence(text: str) -> str:
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    match = re.match(r"^(.+?(?<!e\.g)(?<!i\.e)[.!?])(\s|$)", paragraph)
    sentence = match[1] if match else paragraph
    return (sentence if sentence.endswith((".", "!", "?")) else sentence + ".") if sentence else ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _natural(text: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


# --- the README ---------------------------------------------------------------------------------

def _begin(name: str) -> str:
    return f"<!-- generated: {name} ({COMMAND}; edit the source, not this block) -->"


def _end(name: str) -> str:
    return f"<!-- end generated: {name} -->"


def generate(outdir: Path, benchmark: Path = BENCHMARK, root: Path = ROOT) -> dict[str, str]:
    """Every generated section from the synth in `outdir`, by name (`root`: the project the layout lists)."""
    manifest = outdir / "manifest.json"
    if not manifest.is_file():
        raise SynthError(f"no synth output in {outdir} (no manifest.json). Fix: run `python main.py` first.")
    entries = json.loads(manifest.read_text())["stacks"]
    stack_docs = {name: json.loads((outdir / e["synthesizedStackPath"]).read_text()) for name, e in entries.items()}
    if not benchmark.is_file():
        raise SynthError(f"{benchmark} is missing. Fix: run `python tests/benchmark.py` (it saves its result there).")
    bench = json.loads(benchmark.read_text())
    makers: dict[str, Callable[[], str]] = {
        "synth-output": lambda: synth_output(sorted(entries), bench),
        "layout": lambda: layout(root),
        "custom-policies": custom_policies,
        "skips": lambda: skips(stack_docs),
        "performance": lambda: performance(bench),
        "rehearsal": lambda: rehearsal([json.loads(p.read_text())
                                        for p in sorted(REHEARSALS.glob("*.json"), key=lambda p: p.stem)]),
    }
    return {name: make() for name, make in makers.items()}


def splice(text: str, sections: dict[str, str]) -> str:
    """`text` with each section's block replaced; every section must have its markers once."""
    for name, body in sections.items():
        begin, end = _begin(name), _end(name)
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise SynthError(f"README.md needs the markers of section '{name}' once each, in order:\n  {begin}\n"
                             f"  {end}")
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    return text


def stale(text: str, sections: dict[str, str]) -> list[str]:
    """Names of the sections whose block in `text` differs from what the generator produces."""
    return [name for name in sections if splice(text, {name: sections[name]}) != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check or rewrite the README's generated sections.")
    parser.add_argument("--write", action="store_true", help="rewrite README.md (default: only check)")
    parser.add_argument("--outdir", type=Path, default=DEFAULT_OUTDIR, help="synth output (default: cdktf.out)")
    args = parser.parse_args(argv)
    try:
        sections = generate(args.outdir)
        text = README.read_text()
        changed = stale(text, sections)
        if args.write:
            README.write_text(splice(text, sections))
            print(f"README.md: {', '.join(changed) or 'nothing'} regenerated")
            return 0
    except SynthError as err:
        print(f"readme: {err}", file=sys.stderr)
        return 2
    if changed:
        print(f"README.md: stale sections: {', '.join(changed)}. Fix: python main.py && {COMMAND}", file=sys.stderr)
        return 1
    print("README.md: generated sections are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
