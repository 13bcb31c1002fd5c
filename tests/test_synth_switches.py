"""Production synth runs skip the bindings' runtime type checks; the library and the tests keep them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import main
from modules.engine.synth import synthesize
from modules.engine.synth_switches import binding_type_checks_on

ROOT = Path(__file__).resolve().parent.parent

LIBRARY_ONLY = """
import modules.engine.app
from cdktn import App, TerraformStack
from cdktn_provider_aws.vpc import Vpc
from modules.engine.synth_switches import binding_type_checks_on
assert binding_type_checks_on()
try:
    Vpc(TerraformStack(App(), "s"), "vpc", cidr_block=16)
except TypeError as err:
    print("raised:", type(err).__name__)
"""

SKIPPED = """
import modules.engine.app
from modules.engine.synth_switches import binding_type_checks_on, skip_binding_type_checks
skip_binding_type_checks()
print("checks on after the switch:", binding_type_checks_on())
"""


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_importing_the_library_keeps_type_checks_so_a_wrong_type_raises() -> None:
    assert "raised: TypeError" in _run(LIBRARY_ONLY)
    assert binding_type_checks_on()  # the test session itself imported the library: checks on


def test_the_switch_turns_them_off() -> None:
    assert "checks on after the switch: False" in _run(SKIPPED)


def test_mains_synth_path_turns_type_checks_off_in_its_workers(tmp_path: Path, monkeypatch) -> None:
    """main.py's production path (a process without a kernel yet) synthesizes in workers without
    the checks; the calling process keeps its own."""
    calls = []

    def spy(*args, **kwargs):
        outcome = synthesize(*args, **{**kwargs, "cache_dir": tmp_path / "cache"})
        calls.append((kwargs, outcome))
        return outcome

    monkeypatch.setattr(main, "kernel_started", lambda: False)
    monkeypatch.setattr(main, "synthesize", spy)
    assert main.main(["dev", "--outdir", str(tmp_path / "out")]) == 0
    [(kwargs, outcome)] = calls
    assert kwargs["type_checks"] is False and outcome.type_checked is False
    assert outcome.synthesized == ["dev", "account-dev"]  # its account's stack is a unit of its own
    assert (tmp_path / "out" / "stacks" / "dev-network" / "cdk.tf.json").is_file()
    assert binding_type_checks_on()
