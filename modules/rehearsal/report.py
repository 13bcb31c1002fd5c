"""Results of a rehearsal: one summary line per stack, and a JUnit file for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class StackResult:
    stack: str
    resources: int = 0
    drift: str = "not planned"
    destroy: str = "not run"
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # unexplained: each fails the rehearsal
    notes: list[str] = field(default_factory=list)  # rewrites, emulator differences, expected refusals

    @property
    def ok(self) -> bool:
        return not self.failures

    def line(self) -> str:
        status = "ok" if self.ok else "FAILED"
        text = (f"{self.stack:<24} {status:<6} created {self.resources:>3}  drift: {self.drift:<24} "
                f"destroy: {self.destroy:<28} {self.seconds:>5.0f} s")
        return text + "".join(f"\n    ! {f}" for f in self.failures)


@dataclass
class EnvironmentResult:
    environment: str
    stacks: list[StackResult]
    smoke: list[Any] = field(default_factory=list)  # SmokeStep: after apply, the platform answers

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.stacks) and all(step.passed for step in self.smoke)


def write_junit(results: list[EnvironmentResult], path: Path) -> None:
    suites = ET.Element("testsuites", name="rehearsal")
    for env in results:
        suite = ET.SubElement(suites, "testsuite", name=f"rehearsal.{env.environment}", tests=str(len(env.stacks)),
                              failures=str(sum(not s.ok for s in env.stacks)),
                              time=f"{sum(s.seconds for s in env.stacks):.1f}")
        for stack in env.stacks:
            case = ET.SubElement(suite, "testcase", classname=f"rehearsal.{env.environment}", name=stack.stack,
                                 time=f"{stack.seconds:.1f}")
            if stack.failures:
                failure = ET.SubElement(case, "failure", message=stack.failures[0])
                failure.text = "\n".join(stack.failures)
            ET.SubElement(case, "system-out").text = "\n".join(
                [f"created {stack.resources}; drift: {stack.drift}; destroy: {stack.destroy}", *stack.notes])
        for step in env.smoke:
            case = ET.SubElement(suite, "testcase", classname=f"rehearsal.{env.environment}.smoke", name=step.name)
            if not step.passed:
                ET.SubElement(case, "failure", message=step.detail)
            ET.SubElement(case, "system-out").text = step.detail
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
