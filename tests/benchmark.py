"""Benchmark (not a test): synth and compliance-gate cost, cold and warm, against their targets.

    pipenv run python tests/benchmark.py [--runs 3]

Measures, each as the median of --runs fresh processes, with wall time and peak memory (of the
whole process tree, of Python, and of the largest single process, sampled from /proc):
- the eager floor: one provider resource synthesized without the on-demand loading (jsii's
  own runtime and the provider's eager JavaScript entry point);
- today's path, the reference: one serial in-process synth of every environment with the
  bindings' type checks on, and the gate as one Checkov process without the cache;
- cold: `python main.py` and `python -m policies.gate` with empty caches (fresh cache
  directories: the project's own `.build/` is never touched);
- warm: the same again with nothing changed, and after editing one environment's file
  (a tag added to the first environment), reading which environments main.py rebuilt and
  which stacks the gate rescanned from what they print.

It checks that the cold output is byte-identical to the serial synth's, and that the gate's
reports from the cache equal the uncached ones (but for the run time). Then it prints each
target with its figure and PASS or MISS. Progress goes to stderr. The result, with the date
and a description of the machine, is saved to `docs/benchmark.json` (`--save`), which the
README's performance section is generated from (`python -m modules.tools.readme --write`): commit both.

    pipenv run python tests/benchmark.py --rehearsal

times one offline rehearsal of dev, prod and prod-us instead (their reports saved to
docs/rehearsal/), against its own targets, and records it under `rehearsal` in the same file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
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
# The targets (issue 24), on 2 cores.
COLD_TOTAL_S = 10.0     # synth + gate of every environment, caches empty
SYNTH_FLOOR_RATIO = 0.2  # cold synth / eager floor
PEAK_PROCESS_MB = 300    # any single process
WARM_TOTAL_S = 2.0      # synth + gate again, nothing changed
# The offline rehearsal's targets (issue 32), on 2 cores.
REHEARSAL_DEV_S = 180.0
REHEARSAL_ALL_S = 480.0  # dev, prod and prod-us together


@dataclass(frozen=True)
class Sample:
    seconds: float
    peak_mb: float  # the whole process tree: Python, workers, jsii Node kernels, Checkov
    python_peak_mb: float  # the Python process started alone
    process_peak_mb: float  # the largest single process of the tree
    stdout: str = ""


def _tree_rss_bytes(root_pid: int) -> tuple[int, int, int]:
    """Resident memory of `root_pid` and all its descendants, of `root_pid` alone, and of the largest."""
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
    total, largest, stack = 0, 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        largest = max(largest, rss.get(pid, 0))
        stack.extend(children.get(pid, []))
    return total, rss.get(root_pid, 0), largest


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Sample:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = root_peak = largest = 0

    def sample() -> None:
        nonlocal peak, root_peak, largest
        while proc.poll() is None:
            tree, root, one = _tree_rss_bytes(proc.pid)
            peak, root_peak, largest = max(peak, tree), max(root_peak, root), max(largest, one)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    stdout, stderr = proc.communicate()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode()[-2000:]}")
    return Sample(seconds, peak / 2**20, root_peak / 2**20, largest / 2**20, stdout.decode())


def median(samples: list[Sample]) -> Sample:
    return Sample(*(statistics.median(getattr(s, name) for s in samples)
                    for name in ("seconds", "peak_mb", "python_peak_mb", "process_peak_mb")))


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


def run(label: str, cmd: list[str], env: dict[str, str]) -> Sample:
    progress(f"  {label} … ", end="")
    sample = measure(cmd, env)
    progress(f"{sample.seconds:.1f} s, {sample.peak_mb:.0f} MB tree, {sample.process_peak_mb:.0f} MB largest process")
    return sample


ROW_FORMAT = "{:60} {:>8} {:>11} {:>12} {:>13}"
ROWS = {  # key in docs/benchmark.json -> label
    "floor": "eager floor (one resource, no on-demand loading)",
    "synth_serial": "today's synth: serial, {environments} environments ({stacks} stacks)",
    "gate_serial": "today's gate: one Checkov process",
    "synth_cold": "cold synth: parallel, no type checks, empty cache",
    "gate_cold": "cold gate: one Checkov process per core, empty cache",
    "synth_warm": "warm synth, nothing changed",
    "gate_warm": "warm gate, nothing changed",
    "synth_edit": "synth after editing {edited}",
    "gate_edit": "gate after editing {edited}",
}


def row(label: str, s: Sample) -> None:
    print(ROW_FORMAT.format(label, f"{s.seconds:.2f}s", f"{s.peak_mb:.0f} MB", f"{s.python_peak_mb:.0f} MB",
                            f"{s.process_peak_mb:.0f} MB"), flush=True)


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


SERIAL_SYNTH = """
import sys
from modules.engine.app import build_app
from modules.config import accounts_of, available_environments, load_environments
environments = load_environments(available_environments())
build_app(environments, outdir=sys.argv[1], accounts=accounts_of(environments)).synth()
"""


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def reports_without_run_time(directory: Path) -> dict[str, str]:
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    return {p.name: stamp.sub("RUN_AT", p.read_text()) for p in sorted(directory.iterdir())}


def edit(config: Path, mark: str) -> None:
    """A real change to one environment: a tag more (every stack of it carries the default tags)."""
    text = config.read_text()
    line = f'BenchmarkEdit = "{mark}"\n'
    config.write_text(text.replace("[tags]\n", f"[tags]\n{line}", 1) if "[tags]\n" in text
                      else f"{text}\n[tags]\n{line}")


def rebuilt(stdout: str, environments: list[str]) -> list[str]:
    """The environments main.py synthesized, from its line naming those copied from the cache."""
    copied = re.search(r"copied from .*?: (.*) \(--force", stdout)
    names = copied.group(1).split(", ") if copied else []
    return [e for e in environments if e not in names]


def rescanned(stdout: str) -> list[str]:
    found = re.search(r"scanned: (.*);", stdout)
    return [] if not found or found.group(1) == "none" else found.group(1).split()


@dataclass(frozen=True)
class Target:
    name: str
    figure: str
    met: bool


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh runs of each measurement; the median counts "
                        "(default: 3)")
    parser.add_argument("--save", type=Path, default=SAVED, help=f"where to save the result (default: {SAVED.name} "
                        "in docs/); --save '' saves nothing")
    parser.add_argument("--rehearsal", action="store_true",
                        help="instead: time the offline rehearsal of every environment (one run, saved reports) "
                             "and record it under `rehearsal` in the saved file")
    args = parser.parse_args()
    if args.rehearsal:
        return rehearsal(args.save)
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "CHECKPOINT_DISABLE": "1",
           "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    load = os.getloadavg()[0]  # other work on the machine inflates every figure: say how much there was
    progress(f"benchmark: {args.runs} runs, each of the eager floor, today's serial synth and gate, and the cold "
             f"and warm synth and gate, in fresh processes (a few minutes); machine: {machine()}")
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        environments = work / "environments"
        shutil.copytree(ROOT / "environments", environments,
                        ignore=lambda d, names: [n for n in names if n == "__pycache__"])
        names = sorted(p.parent.name for p in environments.glob("*/environment.toml"))
        # The floor imports neither `modules` nor its kernel settings.
        eager = {k: v for k, v in env.items() if k not in ("NODE_OPTIONS", "JSII_RUNTIME", "LLM_PLATFORM_JSII_EMBEDDED")}
        serial_out = work / "serial"
        samples: dict[str, list[Sample]] = {k: [] for k in ROWS}
        identical_output = identical_reports = True
        edits: list[tuple[list[str], list[str], list[str]]] = []
        # Every run measures the references and the new paths one after the other, so a swing
        # in the machine's load hits both sides of each ratio alike.
        for i in range(1, args.runs + 1):
            of = f"run {i}/{args.runs}"
            samples["floor"].append(run(f"eager floor: {of}", [py, "-c", EAGER_FLOOR], eager))
            samples["synth_serial"].append(run(f"today's synth (serial, type checks on): {of}",
                                               [py, "-c", SERIAL_SYNTH, str(serial_out)], env))
            samples["gate_serial"].append(run(f"today's gate (one Checkov process, no cache): {of}",
                                              [py, "-m", "policies.gate", "--outdir", str(serial_out), "--report-dir",
                                               str(work / "report-serial"), "--no-cache", "--jobs", "1"], env))
            out, synth_cache, gate_cache = work / f"out-{i}", work / f"synth-cache-{i}", work / f"gate-cache-{i}"
            synth = [py, "main.py", "--outdir", str(out), "--environments-dir", str(environments),
                     "--cache-dir", str(synth_cache)]
            gate = [py, "-m", "policies.gate", "--outdir", str(out), "--cache-dir", str(gate_cache)]
            samples["synth_cold"].append(run(f"cold synth: {of}", synth, env))
            identical_output &= tree(out) == tree(serial_out)
            samples["gate_cold"].append(run(f"cold gate: {of}",
                                            gate + ["--report-dir", str(work / f"report-cold-{i}")], env))
            samples["synth_warm"].append(run(f"warm synth, nothing changed: {of}", synth, env))
            samples["gate_warm"].append(run(f"warm gate, nothing changed: {of}",
                                            gate + ["--report-dir", str(work / f"report-warm-{i}")], env))
            identical_reports &= (reports_without_run_time(work / f"report-cold-{i}")
                                  == reports_without_run_time(work / f"report-warm-{i}"))
            config = environments / names[0] / "environment.toml"
            original = config.read_text()
            edit(config, f"run-{i}")
            try:
                synth_edit = run(f"synth after editing {names[0]}: {of}", synth, env)
                gate_edit = run(f"gate after editing {names[0]}: {of}",
                                gate + ["--report-dir", str(work / f"report-edit-{i}")], env)
            finally:
                config.write_text(original)
            samples["synth_edit"].append(synth_edit)
            samples["gate_edit"].append(gate_edit)
            own = sorted(json.loads((out / "manifest.json").read_text())["stacks"])
            edits.append((rebuilt(synth_edit.stdout, names), rescanned(gate_edit.stdout),
                          [s for s in own if s.rsplit("-", 1)[0] == names[0]]))
        stacks = len(list((serial_out / "stacks").glob("*/cdk.tf.json")))
    rows = {k: median(v) for k, v in samples.items()}
    print(ROW_FORMAT.format("", "wall", "peak total", "peak python", "peak process"), flush=True)
    for key, label in ROWS.items():
        row(label.format(environments=len(names), stacks=stacks, edited=names[0]), rows[key])
    floor, serial_synth, serial_gate = rows.pop("floor"), rows.pop("synth_serial"), rows.pop("gate_serial")
    targets = judge(rows, floor, serial_synth, serial_gate, edits, names[0], stacks, identical_output,
                    identical_reports)
    print()
    for target in targets:
        print(f"{'PASS' if target.met else 'MISS'}  {target.name}: {target.figure}")
    load_end = os.getloadavg()[0]
    print(f"(medians of {args.runs} runs; load average {load:.1f} at the start, {load_end:.1f} at the end)")
    if str(args.save) not in ("", "."):
        saved = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(), "runs": args.runs,
                 "load_average": round(load, 1), "load_average_end": round(load_end, 1), "stacks": stacks,
                 "environments": names,
                 "rows": {name: {"wall_s": round(s.seconds, 2), "peak_total_mb": round(s.peak_mb),
                                 "peak_python_mb": round(s.python_peak_mb), "peak_process_mb": round(s.process_peak_mb)}
                          for name, s in (("floor", floor), ("synth_serial", serial_synth),
                                          ("gate_serial", serial_gate), *rows.items())},
                 "targets": [{"name": t.name, "figure": t.figure, "met": t.met} for t in targets]}
        if args.save.is_file() and "rehearsal" in json.loads(args.save.read_text()):  # measured on its own
            saved["rehearsal"] = json.loads(args.save.read_text())["rehearsal"]
        args.save.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
        progress(f"saved to {args.save}; regenerate the README's figures: python -m modules.tools.readme --write")
    return 0


def rehearsal(save: Path) -> int:
    """dev alone, then `python -m modules.rehearsal dev prod prod-us --save` (side by side, each on
    its own emulator): wall time, CPU time of the whole process tree, and two floors no change of
    ours can beat — the provider's own waits along dev's longest chain of stacks, and the CPU
    time spread over every core."""
    names = ["dev", "prod", "prod-us"]
    load = os.getloadavg()[0]
    progress(f"benchmark: the offline rehearsal of dev alone, then of {', '.join(names)} (minutes); "
             f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="rehearsal-dev-") as work:
        alone = timed_rehearsal(["dev", "--work-dir", work])
        dev_floor = provider_wait_floor(Path(work) / "dev")
    together = timed_rehearsal([*names, "--save"])
    reports = {n: json.loads((ROOT / "docs" / "rehearsal" / f"{n}.json").read_text()) for n in names}
    cores = os.cpu_count() or 1
    targets = [Target(f"rehearsal of dev ≤ {REHEARSAL_DEV_S:.0f} s",
                      f"{alone.wall:.0f} s alone ({alone.cpu:.0f} CPU s); the provider's own waits on its longest "
                      f"chain of stacks take {dev_floor:.0f} s by themselves", alone.wall <= REHEARSAL_DEV_S),
               Target(f"rehearsal of {', '.join(names)} together ≤ {REHEARSAL_ALL_S:.0f} s",
                      f"{together.wall:.0f} s wall; {together.cpu:.0f} CPU s on {cores} cores need at least "
                      f"{together.cpu / cores:.0f} s", together.wall <= REHEARSAL_ALL_S),
               Target("every environment's rehearsal passes", ", ".join(
                   f"{n} {'passed' if r['ok'] else 'FAILED'}" for n, r in reports.items()),
                      alone.code == 0 and together.code == 0)]
    for target in targets:
        print(f"{'PASS' if target.met else 'MISS'}  {target.name}: {target.figure}")
    load_end = os.getloadavg()[0]
    if str(save) not in ("", "."):
        saved = json.loads(save.read_text()) if save.is_file() else {}
        saved["rehearsal"] = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "machine": machine(),
                              "load_average": round(load, 1), "load_average_end": round(load_end, 1),
                              "dev_alone": {"wall_s": round(alone.wall), "cpu_s": round(alone.cpu),
                                            "provider_wait_floor_s": round(dev_floor)},
                              "together": {"wall_s": round(together.wall), "cpu_s": round(together.cpu),
                                           "seconds": {n: r["total"]["seconds"] for n, r in reports.items()}},
                              "targets": [{"name": t.name, "figure": t.figure, "met": t.met} for t in targets]}
        save.write_text(json.dumps(saved, indent=2, ensure_ascii=False) + "\n")
        progress(f"saved to {save}; regenerate the README's figures: python -m modules.tools.readme --write")
    return 0


@dataclass(frozen=True)
class Timed:
    wall: float
    cpu: float  # user + system of the rehearsal and every process under it (Terraform, providers, moto)
    code: int


def timed_rehearsal(args: list[str]) -> Timed:
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    done = subprocess.run([sys.executable, "-m", "modules.rehearsal", *args], cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(time.monotonic() - started, cpu, done.returncode)


def provider_wait_floor(env_dir: Path) -> float:
    """The longest chain of stacks (the rehearsal's manifest) weighed by each stack's slowest
    resource in its apply (`slowest` in the report: the provider's own waits, e.g. an RDS
    instance's): no faster emulator or fewer processes can bring the bring-up under it."""
    stacks = json.loads((env_dir / "synth" / "manifest.json").read_text())["stacks"]
    report = json.loads((env_dir / "report.json").read_text())["stacks"]
    slowest = {name: max((s for _, s in report[name]["slowest"]), default=0.0) for name in stacks}
    chain: dict[str, float] = {}
    for name in stacks:  # the manifest lists a stack after the stacks it reads
        chain[name] = slowest[name] + max((chain[d] for d in stacks[name]["dependencies"] if d in chain), default=0.0)
    return max(chain.values(), default=0.0)


def judge(rows: dict[str, Sample], floor: Sample, serial_synth: Sample, serial_gate: Sample,
          edits: list[tuple[list[str], list[str], list[str]]], edited: str, stacks: int,
          identical_output: bool, identical_reports: bool) -> list[Target]:
    cold = rows["synth_cold"].seconds + rows["gate_cold"].seconds
    today = serial_synth.seconds + serial_gate.seconds
    warm = rows["synth_warm"].seconds + rows["gate_warm"].seconds
    ratio = rows["synth_cold"].seconds / floor.seconds
    peak = max(rows[k].process_peak_mb for k in rows)
    heaviest = max(rows, key=lambda k: rows[k].process_peak_mb).replace("_", " ")
    only_edited = all(built == [edited] and scanned and set(scanned) <= set(own) for built, scanned, own in edits)
    built, scanned, own = edits[-1]
    return [
        Target(f"cold synth + gate of every environment < {COLD_TOTAL_S:.0f} s",
               f"{cold:.1f} s ({rows['synth_cold'].seconds:.1f} + {rows['gate_cold'].seconds:.1f}); today's path "
               f"{today:.1f} s, so {cold / today:.2f} × today", cold < COLD_TOTAL_S),
        Target(f"cold synth ≤ {SYNTH_FLOOR_RATIO} × the eager floor",
               f"{ratio:.2f} × ({rows['synth_cold'].seconds:.1f} s against {floor.seconds:.1f} s; today's serial "
               f"synth {serial_synth.seconds / floor.seconds:.2f} ×)", ratio <= SYNTH_FLOOR_RATIO),
        Target(f"peak memory of any process ≤ {PEAK_PROCESS_MB} MB",
               f"{peak:.0f} MB (largest in the {heaviest})", peak <= PEAK_PROCESS_MB),
        Target(f"warm synth + gate, nothing changed < {WARM_TOTAL_S:.0f} s",
               f"{warm:.2f} s ({rows['synth_warm'].seconds:.2f} + {rows['gate_warm'].seconds:.2f}), "
               f"{warm / today:.2f} × today", warm < WARM_TOTAL_S),
        Target(f"after editing {edited}'s file, only its stacks are rebuilt and rescanned",
               f"rebuilt {', '.join(built) or 'nothing'}; rescanned {len(scanned)} of {stacks} stacks"
               f"{', all ' + edited + chr(39) + 's' if set(scanned) <= set(own) else ''}", only_edited),
        Target("cold output byte-identical to today's serial synth", "every file of every stack and the manifest"
               if identical_output else "differs", identical_output),
        Target("gate reports identical from the cache and without it", "verdict, report.md, report.json, "
               "report.sarif, junit.xml (but for the run time)" if identical_reports else "differ", identical_reports),
    ]


if __name__ == "__main__":
    sys.exit(main())
