"""Results of a rehearsal: one summary line per stack, `report.json` per environment, JUnit for CI.

The report's counts (README, "Rehearsing a deployment offline", says what each means):
planned, created, clean_replan, explained (row -> resources), knock_on, replaced, unexplained,
destroyed_by_terraform, removed_by_rows, seconds; per stack and in `total`.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROW_NOTE = re.compile(r"emulator difference ([\w, -]+?):")
COUNTS = ("planned", "created", "clean_replan", "knock_on", "replaced", "unexplained", "destroyed_by_terraform",
          "removed_by_rows")


@dataclass
class StackResult:
    stack: str
    planned: int = 0  # resource instances of the saved plan, plus those rows left out of the copy
    created: int = 0  # resource instances in the state after apply
    clean_replan: int = 0  # created, and neither changed by the plan after apply nor drifted on its refresh
    explained: dict[str, int] = field(default_factory=dict)  # row -> resources whose change it explains
    knock_on: int = 0
    replaced: list[dict[str, Any]] = field(default_factory=list)  # {address, rows, attributes, explained}
    unexplained: int = 0
    destroyed_by_terraform: int = 0
    removed_by_rows: list[str] = field(default_factory=list)  # left out of the copy or dropped from state
    drift: str = "not planned"
    destroy: str = "not run"
    seconds: float = 0.0
    commands: dict[str, float] = field(default_factory=dict)  # terraform command -> seconds
    slowest: list[tuple[str, float]] = field(default_factory=list)  # the apply's slowest resources
    failures: list[str] = field(default_factory=list)  # unexplained: each fails the rehearsal
    notes: list[str] = field(default_factory=list)  # rewrites, emulator differences, expected refusals

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def rows(self) -> list[str]:
        """The difference rows this stack's rehearsal applied (every such note names its rows)."""
        return sorted({name.strip() for note in self.notes for found in ROW_NOTE.finditer(note)
                       for name in found.group(1).split(",")})

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        text = (f"{self.stack:<24} {status:<6} created {self.created:>3}/{self.planned:<3} drift: {self.drift:<24} "
                f"destroy: {self.destroy:<28} {self.seconds:>5.0f} s")
        return text + "".join(f"\n    ! {f}" for f in self.failures)

    def counts(self) -> dict[str, Any]:
        return {"planned": self.planned, "created": self.created, "clean_replan": self.clean_replan,
                "explained": dict(sorted(self.explained.items())), "knock_on": self.knock_on,
                "replaced": len(self.replaced), "unexplained": self.unexplained,
                "destroyed_by_terraform": self.destroyed_by_terraform, "removed_by_rows": len(self.removed_by_rows),
                "seconds": round(self.seconds, 1)}

    def to_json(self) -> dict[str, Any]:
        return {**self.counts(), "ok": self.ok, "drift": self.drift, "destroy": self.destroy,
                "replacements": self.replaced, "removed": self.removed_by_rows, "rows": self.rows,
                "commands": {k: round(v, 1) for k, v in self.commands.items()},
                "slowest": [[a, round(s, 1)] for a, s in self.slowest], "failures": self.failures, "notes": self.notes}


@dataclass
class EnvironmentResult:
    environment: str
    stacks: list[StackResult]
    provider_version: str = ""
    seconds: float = 0.0
    error: str = ""  # an unexpected failure of the rehearsal itself
    smoke: list[dict[str, Any]] = field(default_factory=list)  # {name, passed, detail} per step run after apply
    usage_error: bool = False  # the error is a missing tool or an invalid configuration (exit 2)
    date: str = ""  # when the run started (UTC, minutes)
    load_average: list[float] = field(default_factory=list)  # the machine's 1-minute load at start and end
    earlier_attempts: list[list[str]] = field(default_factory=list)  # per failed earlier attempt: why it failed

    @property
    def ok(self) -> bool:
        return not self.error and all(s.ok for s in self.stacks) and all(s["passed"] for s in self.smoke)

    def total(self) -> dict[str, Any]:
        total: dict[str, Any] = {key: sum(s.counts()[key] for s in self.stacks) for key in COUNTS}
        explained: dict[str, int] = {}
        for stack in self.stacks:
            for row, n in stack.explained.items():
                explained[row] = explained.get(row, 0) + n
        return {**total, "explained": dict(sorted(explained.items())), "seconds": round(self.seconds, 1)}

    def to_json(self) -> dict[str, Any]:
        return {"environment": self.environment, "ok": self.ok, "error": self.error, "date": self.date,
                "load_average": self.load_average, "earlier_attempts": self.earlier_attempts,
                "provider_version": self.provider_version,
                "rows": sorted({r for s in self.stacks for r in s.rows}),
                "total": self.total(), "stacks": {s.stack: s.to_json() for s in self.stacks},
                "smoke": {"steps": self.smoke, "passed": bool(self.smoke) and all(s["passed"] for s in self.smoke)}}


def smoke_step(step: Any) -> dict[str, Any]:
    """A smoke step (a mapping or an object with name, passed, detail) as the report records it."""
    get = step.get if isinstance(step, dict) else lambda key, default=None: getattr(step, key, default)
    return {"name": str(get("name")), "passed": bool(get("passed")), "detail": str(get("detail", "") or "")}


def report_path(work_dir: Path, env: str) -> Path:
    return work_dir / env / "report.json"


def write_report(result: EnvironmentResult, path: Path, work_dir: Path | None = None) -> None:
    """Atomically: a reader sees the old file or the whole new one, never half of it. With
    `work_dir`, its path reads `<work-dir>` (a report to commit names no machine's directories)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result.to_json(), indent=1) + "\n"
    if work_dir is not None:
        text = text.replace(str(work_dir), "<work-dir>")
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def write_junit(results: list[EnvironmentResult], path: Path) -> None:
    suites = ET.Element("testsuites", name="rehearsal")
    for env in results:
        suite = ET.SubElement(suites, "testsuite", name=f"rehearsal.{env.environment}", tests=str(len(env.stacks)),
                              failures=str(sum(not s.ok for s in env.stacks) + bool(env.error)),
                              time=f"{sum(s.seconds for s in env.stacks):.1f}")
        if env.error:
            case = ET.SubElement(suite, "testcase", classname=f"rehearsal.{env.environment}", name="rehearsal")
            ET.SubElement(case, "failure", message=env.error).text = env.error
        for stack in env.stacks:
            case = ET.SubElement(suite, "testcase", classname=f"rehearsal.{env.environment}", name=stack.stack,
                                 time=f"{stack.seconds:.1f}")
            if stack.failures:
                failure = ET.SubElement(case, "failure", message=stack.failures[0])
                failure.text = "\n".join(stack.failures)
            ET.SubElement(case, "system-out").text = "\n".join(
                [f"created {stack.created}; drift: {stack.drift}; destroy: {stack.destroy}", *stack.notes])
        for step in env.smoke:
            case = ET.SubElement(suite, "testcase", classname=f"rehearsal.{env.environment}.smoke", name=step["name"])
            if not step["passed"]:
                ET.SubElement(case, "failure", message=step["detail"])
            ET.SubElement(case, "system-out").text = step["detail"]
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
