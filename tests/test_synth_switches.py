"""Production synth runs skip the bindings' runtime type checks; the library and the tests keep them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import main
from modules.synth_switches import binding_type_checks_on

ROOT = Path(__file__).resolve().parent.parent

LIBRARY_ONLY = """
import modules.app
from cdktn import App, TerraformStack
from cdktn_provider_aws.vpc import Vpc
from modules.synth_switches import binding_type_checks_on
assert binding_type_checks_on()
try:
    Vpc(TerraformStack(App(), "s"), "vpc", cidr_block=16)
except TypeError as err:
    print("raised:", type(err).__name__)
"""

MAIN_PATH = """
import sys, main
from modules.synth_switches import binding_type_checks_on
assert main.main(["dev", "--outdir", sys.argv[1]]) == 0
print("checks on after main:", binding_type_checks_on())
"""


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_importing_the_library_keeps_type_checks_so_a_wrong_type_raises() -> None:
    assert "raised: TypeError" in _run(LIBRARY_ONLY)
    assert binding_type_checks_on()  # the test session itself imported the library: checks on


def test_mains_synth_path_turns_type_checks_off(tmp_path: Path) -> None:
    assert "checks on after main: False" in _run(MAIN_PATH, str(tmp_path / "out"))
    assert (tmp_path / "out" / "stacks" / "dev-network" / "cdk.tf.json").is_file()
    assert main.skip_binding_type_checks.__module__ == "modules.synth_switches"
