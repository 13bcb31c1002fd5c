"""The rehearsal's judgement of the plan after apply, its report.json, and its crash safety.

Plans here are small hand-made `terraform show -json` documents; no Terraform or emulator runs.
"""

from __future__ import annotations

import dataclasses

import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from modules.rehearsal import __main__ as cli
from modules.rehearsal import terraform as tf
from modules.rehearsal.judge import judge
from modules.rehearsal.plan import Stack
from modules.rehearsal.report import EnvironmentResult, StackResult, report_path, write_report
from modules.rehearsal.runner import Rehearsal

POLICY = [{"name": "rds.force_ssl", "value": "1"}]
GROUP = {"name": "pg", "family": "postgres16", "parameter": []}  # read back without its parameters


def change(address: str, actions: list[str], before: dict | None, after: dict | None,
           unknown: dict | None = None, **extra: Any) -> dict[str, Any]:
    type_ = address.split(".")[0]
    return {"address": address, "mode": "managed", "type": type_, "name": address.split(".")[1],
            "change": {"actions": actions, "before": before, "after": after, "after_unknown": unknown or {}},
            **extra}


def plan(*changes: dict, references: dict[str, list[str]] | None = None, state_deps: dict[str, list[str]] | None = None,
         outputs: dict[str, Any] | None = None, output_refs: dict[str, list[str]] | None = None,
         drift: list[dict] | None = None) -> dict[str, Any]:
    config = [{"address": a, "expressions": {"x": {"references": refs}}} for a, refs in (references or {}).items()]
    state = [{"address": a, "depends_on": deps} for a, deps in (state_deps or {}).items()]
    return {"resource_changes": list(changes), "resource_drift": drift or [], "output_changes": outputs or {},
            "configuration": {"root_module": {"resources": config, "outputs": {
                n: {"expression": {"references": r}} for n, r in (output_refs or {}).items()}}},
            "prior_state": {"values": {"root_module": {"resources": state}}}}


EXPLAINED = change("aws_db_parameter_group.pg", ["update"], GROUP, {**GROUP, "parameter": POLICY})
KNOCK_ON = change("aws_db_instance.db", ["update"], {"arn": "a", "identifier": "db"}, {"identifier": "db"},
                  {"arn": True})


def test_a_change_is_accepted_only_when_a_row_explains_each_attribute() -> None:
    verdict = judge(plan(EXPLAINED, change("aws_sqs_queue.q", ["no-op"], {"a": 1}, {"a": 1})))
    assert verdict.ok and verdict.explained == {"rds-parameter-source": 1}
    assert verdict.changed == {"aws_db_parameter_group.pg"}
    both = change("aws_db_parameter_group.pg", ["update"], GROUP,
                  {**GROUP, "parameter": POLICY, "family": "postgres17"})
    verdict = judge(plan(both))
    assert not verdict.ok and verdict.explained == {} and "family" in verdict.unexplained[0]


def test_a_knock_on_update_is_accepted_only_along_a_dependency_of_an_explained_change() -> None:
    follows = plan(EXPLAINED, KNOCK_ON, references={"aws_db_instance.db": ["aws_db_parameter_group.pg.name",
                                                                                      "aws_db_parameter_group.pg"]})
    verdict = judge(follows)
    assert verdict.ok and verdict.knock_on == ["aws_db_instance.db"]
    # the same update with no edge to the explained change, or with nothing explained, fails
    assert judge(plan(EXPLAINED, KNOCK_ON)).unexplained == [
        "aws_db_instance.db would update with values known only after apply, "
        "and depends on no explained change"]
    assert not judge(plan(KNOCK_ON, references={"aws_db_instance.db": ["aws_db_parameter_group.pg"]})).ok
    # the state's recorded dependencies are edges too (they see through locals), and knock-ons chain
    alarm = change("aws_cloudwatch_metric_alarm.a", ["update"], {"arn": "x"}, {}, {"arn": True})
    chained = plan(EXPLAINED, KNOCK_ON, alarm, state_deps={"aws_db_instance.db": ["aws_db_parameter_group.pg"],
                                                           "aws_cloudwatch_metric_alarm.a": ["aws_db_instance.db"]})
    assert judge(chained).ok and judge(chained).knock_on == ["aws_db_instance.db",
                                                             "aws_cloudwatch_metric_alarm.a"]


def test_a_replacement_is_its_own_category_with_its_evidence_never_silently_accepted() -> None:
    replaced = change("aws_db_parameter_group.pg", ["delete", "create"], GROUP,
                      {**GROUP, "parameter": POLICY})
    verdict = judge(plan(replaced))
    assert verdict.explained == {} and verdict.replaced == [{
        "address": "aws_db_parameter_group.pg", "rows": ["rds-parameter-source"],
        "explained": True, "attributes": ["parameter"]}]
    unexplained = change("aws_db_instance.main", ["create", "delete"], {"engine": "postgres"},
                         {"engine": "mysql"}, replace_paths=[["engine"]])
    verdict = judge(plan(unexplained))
    assert not verdict.ok and verdict.replaced[0]["explained"] is False
    assert "REPLACED" in verdict.unexplained[0]


def test_outputs_only_changes_need_a_changed_resource_they_read() -> None:
    outputs = {"group": {"actions": ["update"], "before": "a", "after": "b"}}
    alone = judge(plan(outputs=outputs, output_refs={"group": ["aws_db_parameter_group.pg.name"]}))
    assert alone.unexplained == ["output group would update though nothing it reads changed acceptably"]
    following = judge(plan(EXPLAINED, outputs=outputs, output_refs={"group": ["aws_db_parameter_group.pg.name"]}))
    assert following.ok
    assert judge(plan(outputs={"group": {"actions": ["no-op"]}})).ok


def test_refresh_drift_of_a_configured_or_read_attribute_is_judged_like_a_change() -> None:
    drifted = change("aws_sqs_queue.q", ["update"], {"delay_seconds": 0, "arn": "a"}, {"delay_seconds": 5, "arn": "b"})
    configured = {"aws_sqs_queue.q": ["var.delay"]}  # the configuration sets delay_seconds
    verdict = judge(plan(drift=[drifted], references={"aws_sqs_queue.q": []}))
    assert verdict.ok and verdict.changed == set()  # nothing configured or read drifted: only noted
    assert "refresh read attributes other resources set (not drift): aws_sqs_queue.q" in verdict.notes
    in_config = plan(drift=[drifted], references=configured)
    in_config["configuration"]["root_module"]["resources"][0]["expressions"] = {"delay_seconds": {"references": []}}
    verdict = judge(in_config)
    assert verdict.unexplained == ["aws_sqs_queue.q drifted on refresh (delay_seconds)"]
    assert verdict.changed == {"aws_sqs_queue.q"}
    read = plan(drift=[drifted])
    read["relevant_attributes"] = [{"resource": "aws_sqs_queue.q", "attribute": ["arn"]}]
    assert judge(read).unexplained == ["aws_sqs_queue.q drifted on refresh (arn)"]
    explained = change("aws_db_parameter_group.pg", ["update"], GROUP, {**GROUP, "parameter": POLICY})
    group_config = plan(drift=[explained])
    group_config["configuration"]["root_module"]["resources"] = [
        {"address": "aws_db_parameter_group.pg", "expressions": {"parameter": {}}}]
    assert judge(group_config).explained == {"rds-parameter-source": 1}
    # drift of a resource the plan changes anyway is judged once, with the change
    assert judge(plan(EXPLAINED, drift=[explained])).explained == {"rds-parameter-source": 1}


def test_report_json_has_total_and_per_stack_counts_and_is_written_whole(tmp_path) -> None:
    a = StackResult("dev-network", planned=90, created=90, clean_replan=88, explained={"row-a": 2},
                    destroyed_by_terraform=90, seconds=10.04, notes=["emulator difference row-a: x is a false drift"])
    b = StackResult("dev-data", planned=20, created=19, clean_replan=18, explained={"row-a": 1, "row-b": 1},
                    removed_by_rows=["aws_sfn_state_machine.m"], replaced=[{"address": "aws_x.y", "rows": ["row-b"],
                                                                             "explained": True, "attributes": []}],
                    failures=["apply: Error: x"])
    env = EnvironmentResult("dev", [a, b], provider_version="5.100.0", seconds=31.26)
    path = report_path(tmp_path, "dev")
    write_report(env, path)
    report = json.loads(path.read_text())
    assert report["ok"] is False and report["provider_version"] == "5.100.0" and report["rows"] == ["row-a"]
    assert report["total"] == {"planned": 110, "created": 109, "clean_replan": 106, "knock_on": 0, "replaced": 1,
                               "unexplained": 0, "destroyed_by_terraform": 90, "removed_by_rows": 1,
                               "explained": {"row-a": 3, "row-b": 1}, "seconds": 31.3}
    assert set(report["stacks"]) == {"dev-network", "dev-data"}
    assert report["stacks"]["dev-data"]["removed"] == ["aws_sfn_state_machine.m"]
    assert report["smoke"] == {"steps": [], "passed": False}
    assert [p.name for p in path.parent.iterdir()] == ["report.json"]  # no partial file left


class FakeServer:
    url = "http://127.0.0.1:9"

    def alive(self) -> bool:
        return True


def test_an_unexpected_exception_still_tears_down_what_was_applied(tmp_path, monkeypatch) -> None:
    stacks = {n: Stack(n, tmp_path, {}, deps) for n, deps in
              (("t-a", ()), ("t-b", ("t-a",)), ("t-c", ("t-b",)))}
    toolchain = tf.Toolchain("terraform", tmp_path, "5.100.0")
    target = type("T", (), {"state_dir": tmp_path / "state"})()
    rehearsal = Rehearsal("t", stacks, ["t-a", "t-b", "t-c"], target, None, toolchain, tmp_path, tmp_path,
                          FakeServer())  # type: ignore[arg-type]
    torn_down: list[str] = []

    def bring_up(self: Rehearsal, name: str) -> bool:
        self.applied.add(name)
        if name == "t-b":
            raise RuntimeError("injected failure")
        self.applied_ok.add(name)
        return True

    def tear_down(self: Rehearsal, name: str) -> bool:
        if name in self.applied:
            torn_down.append(name)
        return True

    monkeypatch.setattr(Rehearsal, "bring_up", bring_up)
    monkeypatch.setattr(Rehearsal, "check_drift", lambda self, name: True)
    monkeypatch.setattr(Rehearsal, "tear_down", tear_down)
    result = rehearsal.run(workers=1)
    assert torn_down == ["t-b", "t-a"] and result.error == "RuntimeError: injected failure" and not result.ok

    def failing_tear_down(self: Rehearsal, name: str) -> bool:
        raise OSError("disk full")

    monkeypatch.setattr(Rehearsal, "tear_down", failing_tear_down)
    result = rehearsal.run(workers=1)
    assert result.error == "RuntimeError: injected failure; teardown: OSError: disk full"


def test_a_crashed_run_writes_its_error_exits_non_zero_and_leaves_no_old_green_report(tmp_path, monkeypatch) -> None:
    old = report_path(tmp_path, "dev")
    write_report(EnvironmentResult("dev", [StackResult("dev-network", created=1)]), old)
    assert json.loads(old.read_text())["ok"] is True
    monkeypatch.setattr(tf, "find_toolchain", lambda mirror: tf.Toolchain("terraform", mirror, "5.100.0"))
    monkeypatch.setattr(cli, "synth", lambda envs, given, work_dir: tmp_path)
    monkeypatch.setattr(cli, "endpoint_keys", lambda *args: ("s3",))

    def crash(*args: Any) -> EnvironmentResult:
        assert not old.exists(), "the old report is removed before anything runs"
        raise KeyError("injected")

    monkeypatch.setattr(cli, "rehearse", crash)
    assert cli.main(["dev", "--work-dir", str(tmp_path)]) == 1
    report = json.loads(old.read_text())
    assert report["ok"] is False and report["error"] == "KeyError: 'injected'"


def test_the_closing_lines_repeat_why_each_failed_environment_failed(tmp_path, monkeypatch, capsys) -> None:
    """A CI log keeps only its tail: the reasons come last, after every environment's table."""
    monkeypatch.setattr(tf, "find_toolchain", lambda mirror: tf.Toolchain("terraform", mirror, "5.100.0"))
    monkeypatch.setattr(cli, "synth", lambda envs, given, work_dir: tmp_path)
    monkeypatch.setattr(cli, "endpoint_keys", lambda *args: ("s3",))
    failed = StackResult("prod-us-edge", created=9, planned=9, drift="plan failed",
                         failures=["pipeline plan (drift): Error: connection refused"])
    results = {"dev": EnvironmentResult("dev", [StackResult("dev-edge", created=1, planned=1)]),
               "prod-us": EnvironmentResult("prod-us", [StackResult("prod-us-network"), failed],
                                            smoke=[{"name": "gateway: proxy starts", "passed": False,
                                                    "detail": "exited 1"}])}
    monkeypatch.setattr(cli, "rehearse", lambda env, *args: results[env])
    assert cli.main(["dev", "prod-us", "--work-dir", str(tmp_path)]) == 1
    tail = capsys.readouterr().out.splitlines()[-5:]
    assert tail[0] == "prod-us: FAILED"
    assert tail[1].strip().startswith("prod-us-edge") and "FAILED" in tail[1]
    assert tail[2].strip() == "! pipeline plan (drift): Error: connection refused"
    assert tail[3] == "  smoke FAILED gateway: proxy starts: exited 1"
    assert tail[4] == "rehearsal: 2 passed, 1 failed"


def test_a_failed_environment_is_rehearsed_again_from_scratch_and_its_first_attempt_is_kept(
        tmp_path, monkeypatch, capsys) -> None:
    """--attempts 2: a failing environment runs once more (its earlier directory and reasons
    kept, printed before the rerun); one that passed is not rerun; one failing twice fails."""
    monkeypatch.setattr(tf, "find_toolchain", lambda mirror: tf.Toolchain("terraform", mirror, "5.100.0"))
    monkeypatch.setattr(cli, "synth", lambda envs, given, work_dir: tmp_path)
    monkeypatch.setattr(cli, "endpoint_keys", lambda *args: ("s3",))
    (tmp_path / "prod.attempt-1").mkdir()  # left by an earlier run: removed before anything runs
    runs: list[str] = []
    outcomes = {"dev": [True], "prod": [False, True], "prod-us": [False, False]}

    def rehearse(env: str, *args: Any) -> EnvironmentResult:
        passed = outcomes[env][runs.count(env)]
        runs.append(env)
        (tmp_path / env).mkdir(exist_ok=True)
        (tmp_path / env / "moto.log").write_text(f"attempt {runs.count(env)}")
        failures = [] if passed else [f"apply: attempt {runs.count(env)} failed"]
        return EnvironmentResult(env, [StackResult(f"{env}-edge", created=1, planned=1, failures=failures)])

    monkeypatch.setattr(cli, "rehearse", rehearse)
    assert cli.main(["dev", "prod", "prod-us", "--attempts", "2", "--work-dir", str(tmp_path)]) == 1
    assert sorted(runs) == ["dev", "prod", "prod", "prod-us", "prod-us"]
    out = capsys.readouterr().out
    assert out.index("! apply: attempt 1 failed") < out.index("rehearsed again from scratch (attempt 2 of 2)")
    assert (tmp_path / "prod.attempt-1" / "moto.log").read_text() == "attempt 1"
    assert (tmp_path / "prod" / "moto.log").read_text() == "attempt 2"
    prod = json.loads(report_path(tmp_path, "prod").read_text())
    assert prod["ok"] is True and prod["earlier_attempts"][0][0] == "prod: FAILED"
    assert "! apply: attempt 1 failed" in prod["earlier_attempts"][0][1]
    prod_us = json.loads(report_path(tmp_path, "prod-us").read_text())
    assert prod_us["ok"] is False and len(prod_us["earlier_attempts"]) == 1
    assert out.splitlines()[-1] == "rehearsal: 2 passed, 1 failed"
    assert json.loads(report_path(tmp_path, "dev").read_text())["earlier_attempts"] == []


def test_a_missing_tool_still_replaces_the_old_report_with_its_error(tmp_path, monkeypatch) -> None:
    write_report(EnvironmentResult("dev", []), report_path(tmp_path, "dev"))
    monkeypatch.setattr(tf.shutil, "which", lambda name: None)
    assert cli.main(["dev", "--work-dir", str(tmp_path)]) == 2
    report = json.loads(report_path(tmp_path, "dev").read_text())
    assert report["ok"] is False and "terraform is not on PATH" in report["error"]


def test_apply_json_gives_the_slowest_resources_and_its_errors() -> None:
    lines = [{"type": "apply_complete", "hook": {"resource": {"addr": "aws_lb.public"}, "elapsed_seconds": 61}},
             {"type": "apply_complete", "hook": {"resource": {"addr": "aws_vpc.main"}, "elapsed_seconds": 1}},
             {"type": "diagnostic", "diagnostic": {"severity": "error", "summary": "creating X", "detail": "boom\nmore",
                                                   "range": {"filename": "main.tf.json", "start": {"line": 3}}}},
             {"type": "diagnostic", "diagnostic": {"severity": "warning", "summary": "deprecated"}}]
    messages = tf.json_messages("\n".join(json.dumps(m) for m in lines) + "\nnot json\n")
    assert tf.slowest_resources(messages, 1) == [("aws_lb.public", 61.0)]
    assert tf.json_errors(messages) == ["Error: creating X boom on main.tf.json line 3"]


def test_the_corrected_server_runs_ec2_requests_one_at_a_time(monkeypatch) -> None:
    import threading
    import time

    from moto.core.responses import BaseResponse
    from moto.ec2.responses import EC2Response
    from moto.sqs.responses import SQSResponse

    from modules.rehearsal import moto_corrected

    running = {"ec2": 0, "sqs": 0}
    most = {"ec2": 0, "sqs": 0}
    lock = threading.Lock()

    def slow_dispatch(self: BaseResponse, *args: Any, **kwargs: Any) -> str:
        kind = "ec2" if isinstance(self, EC2Response) else "sqs"
        with lock:
            running[kind] += 1
            most[kind] = max(most[kind], running[kind])
        time.sleep(0.05)
        with lock:
            running[kind] -= 1
        return "ok"

    def most_at_once() -> dict[str, int]:
        most.update(ec2=0, sqs=0)
        threads = [threading.Thread(target=lambda r=r: r._dispatch(None)) for r in
                   [EC2Response() for _ in range(4)] + [SQSResponse() for _ in range(4)]]
        [t.start() for t in threads]
        [t.join() for t in threads]
        return dict(most)

    monkeypatch.setattr(BaseResponse, "_dispatch", slow_dispatch)
    assert most_at_once()["ec2"] > 1  # moto's own server: EC2 requests overlap
    moto_corrected.CORRECTIONS["ec2-requests-not-atomic"]()
    at_once = most_at_once()
    assert at_once["ec2"] == 1 and at_once["sqs"] > 1  # other services keep their threads


def test_the_readme_table_is_the_reports_own_counts() -> None:
    from modules.tools import readme

    network = StackResult("prod-network", planned=90, created=90, clean_replan=81, explained={"row-a": 9},
                          destroyed_by_terraform=90, destroy="destroyed")
    data = StackResult("prod-data", planned=20, created=20, clean_replan=20, destroy="refused (prevent_destroy)",
                       replaced=[{"address": "aws_x.y", "rows": ["row-b"], "explained": True, "attributes": []}],
                       failures=["drift: aws_db_instance.main would update (engine)"])
    report = EnvironmentResult("prod", [network, data], provider_version="5.100.0", seconds=301,
                               date="2026-12-07 05:00 UTC", load_average=[2.0, 3.0]).to_json()
    table = readme.rehearsal([report])
    assert ("| prod | FAILED | 2 | 110 | 110 | 101 (92 %) | 9 | 0 | 1 | 0 | 90 | 1 | 0 | not run | 301 "
            "| 2026-12-07 05:00 UTC, load [2.0, 3.0] |") in table
    assert "prod-data: drift: aws_db_instance.main would update (engine)" in table
    report["ok"], report["earlier_attempts"] = True, [["prod: FAILED", "  prod-edge FAILED"]]
    table = readme.rehearsal([report])
    assert "| prod | passed (attempt 2) | 2 |" in table and "prod attempt 1 failed: prod: FAILED; prod-edge FAILED" in table
    assert "`aws_x.y` (row-b)" in table
    assert readme.rehearsal([]).startswith("No rehearsal report is committed")


def test_resources_a_row_leaves_out_of_the_copy_are_counted_as_removed(stacks, tmp_path) -> None:
    from modules.rehearsal.differences import Seeded, apply_rewrites
    from modules.rehearsal.rewrite import Target, account_of, rehearsal_copy
    from modules.rehearsal.runner import _left_out

    target = Target(endpoint="http://127.0.0.1:4566", endpoint_keys=("s3",), account_id="444455556666",
                    state_dir=tmp_path, provider_version="5.100.0")
    for name, stack in stacks.items():  # every resource of every environment is rehearsed: no row leaves one out
        account = account_of([stack.doc], "444455556666")
        doc, _ = rehearsal_copy(stack.doc, name, dataclasses.replace(target, account_id=account))
        apply_rewrites(doc, Seeded(account_id=account))
        assert _left_out(stack.doc, doc) == [], name
    stack = stacks["dev-foundation"]
    doc, _ = rehearsal_copy(stack.doc, "dev-foundation", target)
    rules = sorted(f"aws_ecr_pull_through_cache_rule.{n}" for n in stack.resources("aws_ecr_pull_through_cache_rule"))
    for address in rules:  # what a rewrite would drop is counted
        del doc["resource"]["aws_ecr_pull_through_cache_rule"][address.split(".")[1]]
    assert rules and _left_out(stack.doc, doc) == rules


def test_smoke_steps_after_apply_land_in_the_report_and_a_failed_step_fails_the_run(tmp_path, monkeypatch) -> None:
    stacks = {"t-a": Stack("t-a", tmp_path, {}, ())}
    rehearsal = Rehearsal("t", stacks, ["t-a"], type("T", (), {"state_dir": tmp_path / "state"})(), None,
                          tf.Toolchain("terraform", tmp_path, "5.100.0"), tmp_path, tmp_path,
                          FakeServer())  # type: ignore[arg-type]

    def bring_up(self: Rehearsal, name: str) -> bool:
        self.applied_ok.add(name)
        return True

    monkeypatch.setattr(Rehearsal, "bring_up", bring_up)
    monkeypatch.setattr(Rehearsal, "check_drift", lambda self, name: True)
    monkeypatch.setattr(Rehearsal, "tear_down", lambda self, name: True)
    steps = [{"name": "connect", "passed": True, "detail": ""},
             type("Step", (), {"name": "answer", "passed": False, "detail": "no reply"})()]
    result = rehearsal.run(workers=1, after_apply=lambda r: steps)
    assert result.to_json()["smoke"] == {"steps": [{"name": "connect", "passed": True, "detail": ""},
                                                   {"name": "answer", "passed": False, "detail": "no reply"}],
                                         "passed": False}
    assert not result.ok
    assert rehearsal.run(workers=1, after_apply=lambda r: steps[:1]).to_json()["smoke"]["passed"] is True


def test_drift_is_planned_once_every_stack_is_up_and_beside_the_smoke(tmp_path, monkeypatch) -> None:
    """As the drift job meets a deployed environment; the smoke does not wait for it (both only read)."""
    stacks = {n: Stack(n, tmp_path, {}, deps) for n, deps in (("t-a", ()), ("t-b", ("t-a",)))}
    rehearsal = Rehearsal("t", stacks, ["t-a", "t-b"], type("T", (), {"state_dir": tmp_path / "state"})(), None,
                          tf.Toolchain("terraform", tmp_path, "5.100.0"), tmp_path, tmp_path,
                          FakeServer())  # type: ignore[arg-type]
    events: list[tuple[str, str, bool]] = []
    drifting, smoking = threading.Event(), threading.Event()

    def bring_up(self: Rehearsal, name: str) -> bool:
        events.append(("up", name, True))
        self.applied_ok.add(name)
        return True

    def check_drift(self: Rehearsal, name: str) -> bool:
        drifting.set()
        events.append(("drift", name, smoking.wait(10)))
        return True

    def smoke(r: Rehearsal) -> list[dict[str, Any]]:
        smoking.set()
        return [{"name": "answer", "passed": drifting.wait(10), "detail": ""}]

    monkeypatch.setattr(Rehearsal, "bring_up", bring_up)
    monkeypatch.setattr(Rehearsal, "check_drift", check_drift)
    monkeypatch.setattr(Rehearsal, "tear_down", lambda self, name: True)
    result = rehearsal.run(workers=2, after_apply=smoke)
    assert events[:2] == [("up", "t-a", True), ("up", "t-b", True)]
    assert sorted(events[2:]) == [("drift", "t-a", True), ("drift", "t-b", True)]
    assert result.smoke == [{"name": "answer", "passed": True, "detail": ""}]
