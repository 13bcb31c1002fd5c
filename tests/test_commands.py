"""Every command says what it takes: `--help` describes each argument, and a file of tests/ run
as a script is either a command with a usage line or does nothing."""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# module -> how its main is called (benchmark.py reads sys.argv itself)
COMMANDS = ["main", "modules.rehearsal.__main__", "modules.parts.packaging", "modules.tools.release",
            "modules.tools.diagram", "modules.tools.readme", "modules.tools.cost", "modules.tools.pipeline",
            "modules.tools.migrate", "modules.tools.erase_user", "modules.tools.quotas", "modules.tools.litellm_keys",
            "modules.catalogue.alarms", "policies.gate", "benchmark", "pin", "test_output_equality", "test_addresses"]


class Parsed(Exception):
    """Stops a command at its argument parsing, with the parser it built."""


def parser_of(module: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    def capture(self: argparse.ArgumentParser, *args, **kwargs):
        raise Parsed(self)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    monkeypatch.setattr(sys, "argv", [module])
    main = importlib.import_module(module).main
    with pytest.raises(Parsed) as parsed:
        main() if module == "benchmark" else main([])
    return parsed.value.args[0]


@pytest.mark.parametrize("module", COMMANDS)
def test_every_argument_of_every_command_has_help_text(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parsers = [parser_of(module, monkeypatch)]
    undescribed = []
    while parsers:
        parser = parsers.pop()
        assert parser.description, f"{module}: {parser.prog} has no description"
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += action.choices.values()
                undescribed += [f"{parser.prog} {c.dest}" for c in action._choices_actions if not c.help]
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                undescribed.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert not undescribed, f"{module}: arguments without help text: {', '.join(undescribed)}"


def test_the_alarm_catalogue_prints_its_usage_on_help() -> None:
    run = subprocess.run([sys.executable, "-m", "modules.catalogue.alarms", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.startswith("usage: python -m modules.catalogue.alarms")
    assert "| alarm |" not in run.stdout


def test_the_gates_helper_process_says_it_is_not_a_command() -> None:
    run = subprocess.run([sys.executable, "-m", "policies.scan", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0 and "Traceback" not in run.stderr and "run python -m policies.gate" in run.stderr


def test_a_test_file_run_as_a_script_is_a_command_or_does_nothing() -> None:
    """A `__main__` block makes a file a command: it is listed above (help text) and refuses to
    run without its arguments, printing its usage, rather than doing nothing silently."""
    scripts = sorted(p.stem for p in (ROOT / "tests").glob("*.py") if re.search(r"^if __name__ == .__main__.",
                                                                                  p.read_text(), re.M))
    assert scripts == sorted(m for m in COMMANDS if (ROOT / "tests" / f"{m}.py").exists())
    for name in ("test_output_equality", "test_addresses", "pin"):
        run = subprocess.run([sys.executable, f"tests/{name}.py"], cwd=ROOT, capture_output=True, text=True,
                             timeout=120)
        assert run.returncode == 2 and run.stderr.startswith(f"usage: python tests/{name}.py"), (name, run.stderr)
