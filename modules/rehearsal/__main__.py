"""python -m modules.rehearsal ENV [ENV ...]: apply every stack of each environment to moto and back.

Exit 0 when every stack applied, showed no unexplained drift and was destroyed (or, where the
environment protects its data, refused destroy as it must); 1 otherwise, an unexpected error
included (what was applied is still destroyed); 2 when a tool is missing or the configuration
is invalid (one line, no traceback). Each environment's `WORK_DIR/<env>/report.json` says why.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from modules.rehearsal import terraform as tf
from modules.rehearsal.differences import Seeded
from modules.rehearsal.emulator import MOTO_DEFAULT_ACCOUNT, MotoServer, arrange_imported_roles, seed_certificates
from modules.rehearsal.plan import ROOT, Stack, certificates_of, dependency_order, load_stack, load_stacks, synth
from modules.rehearsal.report import EnvironmentResult, report_path, write_junit, write_report
from modules.rehearsal.rewrite import Target, UnsafeCopy, account_of, certificate_arns
from modules.rehearsal.runner import AfterApply, Rehearsal, endpoint_keys, smoke_after_apply
from modules.tools.pipeline import account_stack

SAVED = ROOT / "docs" / "rehearsal"  # the committed reports (README: modules/tools/readme.py)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m modules.rehearsal", description=__doc__.split("\n")[0])
    parser.add_argument("environments", nargs="+", help="environments to rehearse, e.g. dev prod")
    parser.add_argument("--synth-dir", type=Path,
                        help="reuse this synth (default: cdktf.out if newer than the sources, else a fresh one)")
    parser.add_argument("--work-dir", type=Path, default=ROOT / ".build" / "rehearsal",
                        help="rehearsal copies, states, logs and reports (default: .build/rehearsal)")
    parser.add_argument("--junit", type=Path, help="JUnit XML report (default: WORK_DIR/junit.xml)")
    parser.add_argument("--parallel", type=int, default=3, help="stacks applied at once per environment "
                                                                 "(default: %(default)s)")
    parser.add_argument("--environments-at-once", type=int, default=3,
                        help="environments rehearsed side by side, each on its own emulator (default: %(default)s)")
    parser.add_argument("--attempts", type=int, default=1, choices=range(1, 4), metavar="N",
                        help="rehearse a failed environment again from scratch, up to N attempts in all; each "
                             "earlier attempt's reasons are printed and kept in the report, its directory as "
                             "WORK_DIR/<env>.attempt-K (default: %(default)s)")
    parser.add_argument("--mirror", type=Path, default=tf.MIRROR, help="local provider mirror (default: %(default)s)")
    parser.add_argument("--smoke", action=argparse.BooleanOptionalAction, default=None,
                        help="after apply, drive one request through what was deployed "
                             "(default: on for environments with a realtime stack)")
    parser.add_argument("--save", action="store_true",
                        help=f"also save each report as {SAVED.relative_to(ROOT)}/<env>.json (the README's "
                             f"rehearsal table is generated from those: commit them)")
    args = parser.parse_args(argv)
    # Terraform runs in each stack's directory: every path it is given must be absolute.
    args.work_dir, args.mirror = args.work_dir.resolve(), args.mirror.resolve()
    args.synth_dir = args.synth_dir.resolve() if args.synth_dir else None
    return args


def main(argv: list[str]) -> int:
    args = parse(argv)
    started = time.monotonic()
    for env in args.environments:  # no earlier green report survives a run that fails or crashes
        report_path(args.work_dir, env).unlink(missing_ok=True)
        for kept in args.work_dir.glob(f"{env}.attempt-*"):
            _clean(kept)
    try:
        toolchain = tf.find_toolchain(args.mirror)
        args.work_dir.mkdir(parents=True, exist_ok=True)
        cli_config = tf.write_cli_config(args.work_dir / "terraform.rc", toolchain.mirror)
        synth_dir = synth(args.environments, args.synth_dir, args.work_dir)
        keys = endpoint_keys(toolchain, cli_config, args.work_dir / "provider")
    except (tf.ToolError, UnsafeCopy) as err:
        for env in args.environments:
            write_report(EnvironmentResult(env, [], error=str(err)), report_path(args.work_dir, env))
        print(f"rehearsal: {err}", file=sys.stderr)
        return 2
    with ThreadPoolExecutor(max_workers=max(1, args.environments_at_once)) as pool:
        futures = [pool.submit(rehearse_attempts, env, synth_dir, toolchain, cli_config, keys, args.work_dir,
                               args.parallel, args.attempts, smoke=args.smoke) for env in args.environments]
        try:
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            tf.STOPPING.set()  # no further Terraform command starts; each environment reports and stops
            print("rehearsal: interrupted; the emulators are being stopped", file=sys.stderr)
            [f.result() for f in futures]
            return 130
    if args.save:
        for result in results:
            write_report(result, SAVED / f"{result.environment}.json", work_dir=args.work_dir)
    junit = args.junit or args.work_dir / "junit.xml"
    write_junit(results, junit)
    ok = all(r.ok for r in results)
    stacks = [s for r in results for s in r.stacks]
    retried = [f"{r.environment} on attempt {len(r.earlier_attempts) + 1}" for r in results if r.earlier_attempts]
    print(f"rehearsal {'passed' if ok else 'FAILED'} for {', '.join(args.environments)}"
          f"{' (' + ', '.join(retried) + ')' if retried and ok else ''} in "
          f"{time.monotonic() - started:.0f} s (reports: {args.work_dir}/<env>/report.json; JUnit: {junit}; "
          f"logs: {args.work_dir}/<env>/synth/stacks/<stack>/terraform.log)")
    for line in failure_lines(results):  # last, where a CI log's tail shows them
        print(line)
    # The plain closing line CI tools read: one "test" per stack.
    failed = sum(not s.ok for s in stacks) + sum(bool(r.error) for r in results)
    print(f"rehearsal: {sum(s.ok for s in stacks)} passed, {failed} failed")
    if any(r.usage_error for r in results):
        return 2
    return 0 if ok else 1


def failure_lines(results: list[EnvironmentResult]) -> list[str]:
    """Why each failed environment failed, repeated at the end: its error, each failed stack's
    line and failures, each failed smoke step."""
    lines: list[str] = []
    for result in results:
        if result.ok:
            continue
        lines.append(f"{result.environment}: FAILED" + (f": {result.error}" if result.error else ""))
        lines += [f"  {stack.line()}" for stack in result.stacks if not stack.ok]
        lines += [f"  smoke FAILED {step['name']}: {step['detail']}" for step in result.smoke if not step["passed"]]
    return lines


def rehearse_attempts(env: str, synth_dir: Path, toolchain: tf.Toolchain, cli_config: Path, keys: tuple[str, ...],
                      work_dir: Path, workers: int, attempts: int, smoke: bool | None = None) -> EnvironmentResult:
    """`rehearse_safely`, and while it fails (not for a usage error) and attempts remain, once
    more from scratch: the failed attempt's reasons printed and kept in the next report, its
    directory kept as WORK_DIR/<env>.attempt-K."""
    earlier: list[list[str]] = []
    while True:
        result = rehearse_safely(env, synth_dir, toolchain, cli_config, keys, work_dir, workers, smoke=smoke,
                                 earlier_attempts=earlier)
        if result.ok or result.usage_error or len(earlier) + 1 >= attempts or tf.STOPPING.is_set():
            return result
        earlier = [*earlier, failure_lines([result])]
        kept = work_dir / f"{env}.attempt-{len(earlier)}"
        _clean(kept)
        (work_dir / env).rename(kept)
        print("\n".join([*earlier[-1], f"rehearsal: {env} rehearsed again from scratch (attempt {len(earlier) + 1} "
                                        f"of {attempts}); attempt {len(earlier)} kept in {kept}"]), flush=True)


def rehearse_safely(env: str, synth_dir: Path, toolchain: tf.Toolchain, cli_config: Path, keys: tuple[str, ...],
                    work_dir: Path, workers: int, after_apply: AfterApply | None = None,
                    smoke: bool | None = None, earlier_attempts: list[list[str]] | None = None) -> EnvironmentResult:
    """`rehearse`, whatever happens: its report is written (with why EARLIER_ATTEMPTS failed),
    an error in it included (ok false)."""
    started, load = time.monotonic(), os.getloadavg()[0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    try:
        result = rehearse(env, synth_dir, toolchain, cli_config, keys, work_dir, workers, after_apply, smoke)
    except (tf.ToolError, UnsafeCopy) as err:
        print(f"rehearsal: {err}", file=sys.stderr)
        result = EnvironmentResult(env, [], provider_version=toolchain.provider_version, error=str(err),
                                   usage_error=True)
    except Exception as err:  # noqa: BLE001 - the report and the exit code say it
        print(f"rehearsal: {env}: {type(err).__name__}: {err}", file=sys.stderr)
        result = EnvironmentResult(env, [], provider_version=toolchain.provider_version,
                                   error=f"{type(err).__name__}: {err}")
    result.seconds = time.monotonic() - started
    result.date, result.load_average = date, [round(load, 1), round(os.getloadavg()[0], 1)]
    result.earlier_attempts = earlier_attempts or []
    write_report(result, report_path(work_dir, env))
    return result


def rehearse(env: str, synth_dir: Path, toolchain: tf.Toolchain, cli_config: Path, keys: tuple[str, ...],
             work_dir: Path, workers: int, after_apply: AfterApply | None = None,
             smoke: bool | None = None) -> EnvironmentResult:
    """One environment; `smoke` (default: where a realtime stack exists) drives one request
    through what was applied, unless another `after_apply` is given."""
    stacks = with_account_stack(load_stacks(synth_dir, env), synth_dir, env)
    if after_apply is None and (f"{env}-realtime" in stacks if smoke is None else smoke):
        after_apply = smoke_after_apply
    order = dependency_order(stacks)
    account = account_of([s.doc for s in stacks.values()], MOTO_DEFAULT_ACCOUNT)
    env_dir = work_dir / env
    _clean(env_dir)
    env_dir.mkdir(parents=True)
    certificates = certificates_of(env)
    named = {arn for s in stacks.values() for arn in certificate_arns(s.doc)}
    unseeded = named - {c.arn for c in certificates}
    if unseeded:
        raise UnsafeCopy(f"{env}: certificate ARNs in the stacks but not in the environment's config: "
                         f"{', '.join(sorted(unseeded))}")
    print(f"{env}: {len(order)} stacks ({' -> '.join(s.removeprefix(env + '-') for s in order)}), "
          f"account {account}, provider {toolchain.provider_version} from {toolchain.mirror}", flush=True)
    with MotoServer(account, env_dir / "moto.log") as server:
        seeded = Seeded(certificate_arns=seed_certificates(server, certificates), account_id=account)
        for configured, emulated in seeded.certificate_arns.items():
            print(f"  seeded: certificate {configured} (emulator ARN {emulated})", flush=True)
        for line in arrange_imported_roles(server, [s.doc for s in stacks.values()]):
            print(f"  {line}", flush=True)
        target = Target(endpoint=server.url, endpoint_keys=keys, account_id=account, state_dir=env_dir / "state",
                        provider_version=toolchain.provider_version)
        result = Rehearsal(env, stacks, order, target, seeded, toolchain, cli_config, env_dir, server).run(
            workers, after_apply)
    print(f"  {env}: emulator stopped ({server.url})", flush=True)
    return result


def with_account_stack(stacks: dict[str, Stack], synth_dir: Path, env: str) -> dict[str, Stack]:
    """The environment's stacks and, first, its account's stack where the environment's pipeline
    deploys that (`pipeline.account_stack`): deployed before any of them, destroyed after."""
    name = account_stack(env)
    if name is None:
        return stacks
    account = load_stack(synth_dir, name)
    return {name: account, **{n: dataclasses.replace(s, dependencies=(*s.dependencies, name))
                              for n, s in stacks.items()}}


def _clean(path: Path) -> None:
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
