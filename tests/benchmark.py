"""Benchmark (not a test): synth and compliance-gate cost, so regressions show.

    pipenv run python tests/benchmark.py [--runs 3]

Reports, each as the median of --runs fresh processes:
- full synth of every environment (`python main.py`), wall time and peak memory of the whole
  process tree (Python and the jsii Node process, sampled from /proc);
- the eager floor: one provider resource synthesized without the on-demand loading (jsii's
  own runtime and the provider's eager JavaScript entry point), the cost every
  process paid before the on-demand provider loading;
- their ratio (target: synth <= 0.3 x floor, peak <= 300 MB for the whole tree; Python's
  own peak is shown beside it);
- the compliance gate over that output.

It says what it runs as it goes (on stderr: which run of what, and each run's figures) and
prints each row of the table as soon as its runs are done. The result, with the date and a
description of the machine, is saved to `docs/benchmark.json` (`--save`), which the README's
performance table is generated from (`python -m modules.tools.readme --write`): commit both.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
SAVED = ROOT / "docs" / "benchmark.json"


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mb: float  # the whole process tree: Python plus the jsii Node kernel
    python_peak_mb: float  # the Python process alone


def _tree_rss_bytes(root_pid: int) -> tuple[int, int]:
    """Resident memory of `root_pid` and all its descendants, and of `root_pid` alone."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            statm = Path(f"/proc/{entry}/statm").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
        rss[int(entry)] = int(statm.split()[1]) * PAGE
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total, rss.get(root_pid, 0)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Sample:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = root_peak = 0

    def sample() -> None:
        nonlocal peak, root_peak
        while proc.poll() is None:
            tree, root = _tree_rss_bytes(proc.pid)
            peak, root_peak = max(peak, tree), max(root_peak, root)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, stderr = proc.communicate()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode()[-2000:]}")
    return Sample(seconds, peak / 2**20, root_peak / 2**20)


def median(samples: list[Sample]) -> Sample:
    return Sample(statistics.median(s.seconds for s in samples), statistics.median(s.peak_mb for s in samples),
                  statistics.median(s.python_peak_mb for s in samples))


def machine() -> str:
    """One line: CPU model and count, memory, OS, Python."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or platform.machine())
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = next((int(line.split()[1]) for line in meminfo.splitlines() if line.startswith("MemTotal:")), 0)
    return (f"{os.cpu_count()} × {model}, {mem_kb / 2**20:.0f} GiB, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def progress(text: str, end: str = "\n") -> None:
    print(text, end=end, file=sys.stderr, flush=True)


def runs_of(label: str, cmd: list[str], env: dict[str, str], runs: int) -> Sample:
    """`runs` fresh processes of `cmd`, saying each as it goes; their median."""
    samples = []
    for i in range(1, runs + 1):
        progress(f"  {label}: run {i}/{runs} … ", end="")
        sample = measure(cmd, env)
        progress(f"{sample.seconds:.1f} s, {sample.peak_mb:.0f} MB")
        samples.append(sample)
    return median(samples)


def row(label: str, s: Sample) -> None:
    print(f"{label:44} {s.seconds:7.2f}s {s.peak_mb:8.0f} MB {s.python_peak_mb:9.0f} MB", flush=True)


EAGER_FLOOR = """
import tempfile
from cdktn import App, TerraformStack
from cdktn_provider_aws.provider import AwsProvider
from cdktn_provider_aws.vpc import Vpc
with tempfile.TemporaryDirectory() as out:
    app = App(outdir=out)
    stack = TerraformStack(app, "floor")
    AwsProvider(stack, "aws", region="eu-west-2")
    Vpc(stack, "vpc", cidr_block="10.0.0.0/16")
    app.synth()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--save", type=Path, default=SAVED, help=f"where to save the result (default: {SAVED.name} "
                        "in docs/); --save '' saves nothing")
    args = parser.parse_args()
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CHECKPOINT_DISABLE": "1"}
    load = os.getloadavg()[0]  # other work on the machine inflates every figure: say how much there was
    progress(f"benchmark: {args.runs} fresh processes each of the synth, the eager floor and the gate "
             f"(a few minutes); machine: {machine()}")
    print(f"{'':44} {'wall':>8} {'peak total':>11} {'peak python':>12}", flush=True)
    with tempfile.TemporaryDirectory() as out:
        synth = runs_of("full synth", [sys.executable, "main.py", "--outdir", out], env, args.runs)
        stacks = len(list(Path(out, "stacks").glob("*/cdk.tf.json")))
        environments = sorted({p.parent.name.rsplit("-", 1)[0] for p in Path(out, "stacks").glob("*/cdk.tf.json")})
        row(f"full synth, all environments ({stacks} stacks)", synth)
        # The floor imports neither `modules` nor its kernel settings.
        eager = {k: v for k, v in env.items() if k not in ("NODE_OPTIONS", "JSII_RUNTIME", "LLM_PLATFORM_JSII_EMBEDDED")}
        floor = runs_of("eager floor", [sys.executable, "-c", EAGER_FLOOR], eager, args.runs)
        row("eager floor (one resource, no on-demand loading)", floor)
        gate = runs_of("compliance gate", [sys.executable, "-m", "policies.gate", "--outdir", out,
                                           "--report-dir", f"{out}/report"], env, args.runs)
        row("compliance gate (checkov, all stacks)", gate)
    ratio = synth.seconds / floor.seconds
    print(f"synth / floor: {ratio:.2f} (target <= 0.30: {'met' if ratio <= 0.3 else 'MISSED'}); "
          f"synth peak {synth.peak_mb:.0f} MB total, {synth.python_peak_mb:.0f} MB Python "
          f"(target <= 300 MB: {'met' if synth.peak_mb <= 300 else 'MISSED'}); median of {args.runs} runs")
    if str(args.save) not in ("", "."):
        saved = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(), "runs": args.runs,
                 "load_average": round(load, 1), "stacks": stacks, "environments": environments,
                 "rows": {name: {"wall_s": round(s.seconds, 1), "peak_total_mb": round(s.peak_mb),
                                 "peak_python_mb": round(s.python_peak_mb)}
                          for name, s in (("synth", synth), ("floor", floor), ("gate", gate))}}
        args.save.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
        progress(f"saved to {args.save}; regenerate the README's figures: python -m modules.tools.readme --write")
    return 0


if __name__ == "__main__":
    sys.exit(main())
