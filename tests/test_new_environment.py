"""README, "Adding an environment", followed on a scratch copy of the project: one file written
(a copy of dev in another supported region, with another VPC range), then the section's
commands — synth, gate, pin, README, cost, diagram, and the suite's environment tests for it.

To keep the suite fast it reuses the session's synth and runs each command's code in this
process: the committed environments' output is the session's, the new one is synthesized
here (the jsii kernel is warm), the tools run on that output and write into the copy. Only
the suite's environment tests run as a command, on the copy. The rehearsal is left out
(minutes; `python -m modules.rehearsal <name>`).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from ipaddress import IPv4Network
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS, REUSE_SYNTH
from modules.config import REGION_AZS, available_environments, load_environment, load_environments
from modules.engine.app import build_app
from modules.engine.synth import merge
from modules.tools import cost, diagram, readme
from policies import gate

import pin

ROOT = Path(__file__).resolve().parent.parent
SOURCE = "dev"
NOT_COPIED = shutil.ignore_patterns(".git", ".build", "cdktf.out", "compliance-report", "__pycache__",
                                    ".pytest_cache", "node_modules", "terraform.*.tfstate*")


def new_name() -> str:
    return next(name for name in ("staging", *(f"staging-{i}" for i in range(2, 99))) if name not in ENVIRONMENTS)


def new_environment_file(name: str) -> str:
    """The one file the section asks for: dev's, moved to an unused region and VPC range, its
    account's singletons left to the environment that has them (README: per account, per region)."""
    dev = load_environment(SOURCE)
    others = [load_environment(env) for env in ENVIRONMENTS]
    used = {e.region for e in others}
    region = next((r for r in REGION_AZS if r not in used), next(r for r in REGION_AZS if r != dev.region))
    taken = [e.network.vpc_cidr for e in others]
    cidr = next(c for c in (IPv4Network(f"10.{i}.0.0/16") for i in range(256)) if not any(c.overlaps(t) for t in taken))

    def first_two_octets(network: IPv4Network) -> str:
        return ".".join(str(network).split(".")[:2]) + "."

    text = (ROOT / "environments" / SOURCE / "environment.toml").read_text()
    text = text.replace(dev.region, region).replace(f'"{first_two_octets(dev.network.vpc_cidr)}',
                                                    f'"{first_two_octets(cidr)}')
    text = text.replace(f'Environment = "{SOURCE}"', f'Environment = "{name}"').replace(f".{SOURCE}.", f".{name}.")
    azs = ", ".join(f'"{az}"' for az in REGION_AZS[region][:2])
    text = re.sub(r"(?m)^availability_zones = \[.*\]", f"availability_zones = [{azs}]", text)
    geography = region.split("-")[0]
    text = re.sub(r'bedrock_model_id = "(eu|us|apac)\.', f'bedrock_model_id = "{geography}.', text)
    # per account: the account's one multi-region trail belongs to the environment that has it; the
    # account's singletons (service-linked role, API Gateway logging) are its account stack's
    return re.sub(r"(?m)^cloudtrail = true", "cloudtrail = false", text)


def cpu_seconds() -> float:
    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def lap(started: float, cpu: float, timings: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """This step's wall and CPU seconds (the totals so far, less the earlier steps')."""
    return (round(time.monotonic() - started - sum(w for w, _ in timings.values()), 1),
            round(cpu_seconds() - cpu - sum(c for _, c in timings.values()), 1))


def run(scratch: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=scratch, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def test_adding_an_environment_is_one_file_and_the_documented_commands(synth_outdir: Path, tmp_path: Path,
                                                                       capsys) -> None:
    started, cpu, timings = time.monotonic(), cpu_seconds(), {}
    section = re.search(r"\n## Adding an environment\n(.*?)\n## ", (ROOT / "README.md").read_text(), re.S).group(1)
    for command in ("python main.py", "python -m policies.gate", "python tests/pin.py <name>",
                    "python -m modules.tools.readme --write", "python -m modules.tools.cost <name>",
                    "python -m modules.tools.diagram <name>", "pytest"):
        assert command in section, command
    scratch = tmp_path / "project"
    shutil.copytree(ROOT, scratch, ignore=NOT_COPIED)
    name = new_name()
    (scratch / "environments" / name).mkdir()
    (scratch / "environments" / name / "environment.toml").write_text(new_environment_file(name))
    environments = scratch / "environments"

    # python main.py: every environment validated, the new one synthesized, the others as the session has them
    (new_env,) = [e for e in load_environments(available_environments(environments), environments) if e.name == name]
    built = tmp_path / "new.out"
    build_app([new_env], outdir=str(built)).synth()
    out = scratch / "cdktf.out"
    merge([synth_outdir, built], out)
    timings["synth"] = lap(started, cpu, timings)

    # python -m policies.gate (the committed environments' stacks pass in tests/test_compliance.py)
    assert gate.main(["--outdir", str(built), "--report-dir", str(tmp_path / "report"),
                      "--cache-dir", str(tmp_path / "checkov")]) == 0, capsys.readouterr().out
    timings["gate"] = lap(started, cpu, timings)

    # before pinning: one failure, naming the one command; `python tests/pin.py <name>` pins it
    files = (scratch / "tests" / "output_digests.json", scratch / "tests" / "stateful_addresses.json")
    everything = available_environments(environments)
    assert pin.unpinned(everything, files) == [
        f"environment '{name}' is not pinned in tests/output_digests.json, tests/stateful_addresses.json (a new "
        f"environment?). Pin it: python tests/pin.py {name}"]
    committed = [path.read_text() for path in files]
    pin.write(out / "stacks", [name], files)
    assert pin.unpinned(everything, files) == []
    for before, path in zip(committed, files):  # the others' pins untouched
        assert json.loads(before) == {k: v for k, v in json.loads(path.read_text()).items()
                                      if pin.environment_of(k) != name}
    # python -m modules.tools.readme --write: the generated sections were stale and now list it
    text = (scratch / "README.md").read_text()
    sections = readme.generate(out, root=scratch)
    assert set(readme.stale(text, sections)) >= {"synth-output", "layout"}
    (scratch / "README.md").write_text(readme.splice(text, sections))
    assert readme.stale((scratch / "README.md").read_text(), sections) == []
    assert f"`{name}/`" in sections["layout"] and f"  {name}: " in sections["synth-output"]
    timings["pin and README"] = lap(started, cpu, timings)

    # python -m modules.tools.cost / diagram <name>
    capsys.readouterr()
    assert cost.main([name, "--outdir", str(out)]) == 0
    report = capsys.readouterr().out
    if new_env.region in cost.read_prices():
        assert f"{name} ({new_env.region}), traffic profile '{cost.SMALLEST}'" in report
    else:
        assert f"{name} ({new_env.region}): no prices for {new_env.region}" in report
    if shutil.which("dot"):
        assert diagram.main([name, "--outdir", str(out)]) == 0
        assert (out / "diagrams" / f"{name}.svg").is_file()

    # the suite's environment tests, for the new environment, on the copy's synth
    files_with_environment_tests = sorted(f"tests/{p.name}" for p in (scratch / "tests").glob("test_*.py")
                                          if "ENVIRONMENTS" in p.read_text() and p.name != Path(__file__).name)
    suite = run(scratch, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files_with_environment_tests, "-k",
                f"{name} or test_every_environment_is_pinned", env={REUSE_SYNTH: str(out)})
    assert suite.returncode == 0, suite.stdout[-3000:]
    passed = int(re.search(r"(\d+) passed", suite.stdout).group(1))
    assert passed >= 40 and " failed" not in suite.stdout and " error" not in suite.stdout, suite.stdout[-500:]
    timings["tests"] = lap(started, cpu, timings)
    print("adding an environment, seconds (wall, CPU of this process and its children):", timings)
