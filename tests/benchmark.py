"""Benchmark (not a test): synth and compliance-gate cost, so regressions show.

    pipenv run python tests/benchmark.py [--runs 3]

Reports, each as the median of --runs fresh processes:
- full synth of every environment (`python main.py`): wall time, CPU time (less sensitive to
  a busy machine than wall time) and peak memory of the whole process tree (Python and the
  jsii Node process, sampled from /proc);
- the eager floor: one provider resource synthesized without the on-demand loading (jsii's
  own runtime, the provider's eager JavaScript entry point), the cost every process would pay
  without modules/provider.py;
- the compliance gate over that output.
Target: synth peak <= 300 MB for the whole tree (Python's own peak is shown beside it).
"""

from __future__ import annotations

import argparse
import os
import resource
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


@dataclass(frozen=True)
class Sample:
    seconds: float
    cpu_seconds: float  # user + system time of the whole process tree
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
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the tree: Python waits for its Node kernel
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode()[-2000:]}")
    return Sample(seconds, cpu, peak / 2**20, root_peak / 2**20)


def median(samples: list[Sample]) -> Sample:
    return Sample(statistics.median(s.seconds for s in samples), statistics.median(s.cpu_seconds for s in samples),
                  statistics.median(s.peak_mb for s in samples), statistics.median(s.python_peak_mb for s in samples))


EAGER_FLOOR = """
import sys, tempfile
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
    args = parser.parse_args()
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CHECKPOINT_DISABLE": "1"}
    # The floor imports neither `modules` nor its kernel settings.
    eager = {k: v for k, v in env.items() if k not in ("NODE_OPTIONS", "JSII_RUNTIME", "LLM_PLATFORM_JSII_EMBEDDED")}
    with tempfile.TemporaryDirectory() as out:
        synth = median([measure([sys.executable, "main.py", "--outdir", out], env) for _ in range(args.runs)])
        floor = median([measure([sys.executable, "-c", EAGER_FLOOR], eager) for _ in range(args.runs)])
        gate = median([measure([sys.executable, "-m", "policies.gate", "--outdir", out,
                                "--report-dir", f"{out}/report"], env) for _ in range(args.runs)])
        stacks = len(list(Path(out, "stacks").glob("*/cdk.tf.json")))
    rows = [(f"full synth, all environments ({stacks} stacks)", synth),
            ("eager floor (one resource, no on-demand loading)", floor),
            ("compliance gate (checkov, all stacks)", gate)]
    print(f"{'':50} {'wall':>8} {'cpu':>8} {'peak total':>11} {'peak python':>12}")
    for label, s in rows:
        print(f"{label:50} {s.seconds:7.2f}s {s.cpu_seconds:7.2f}s {s.peak_mb:8.0f} MB {s.python_peak_mb:9.0f} MB")
    print(f"synth peak {synth.peak_mb:.0f} MB total, {synth.python_peak_mb:.0f} MB Python "
          f"(target <= 300 MB: {'met' if synth.peak_mb <= 300 else 'MISSED'}); synth / floor {synth.seconds / floor.seconds:.2f} "
          f"wall, {synth.cpu_seconds / floor.cpu_seconds:.2f} cpu; median of {args.runs} runs, load average "
          f"{os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
