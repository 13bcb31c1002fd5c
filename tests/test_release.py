"""Module versions: a change to a module's interface cannot land without a major version."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from modules.tools import release

RELEASED = {"network": {"variables": {"project": False, "kms_key_arn": True}, "outputs": {"vpc_id": True}}}
CHANGELOG_1 = "# Changelog\n\n## [Unreleased]\n\n## [1.0.0] - 2026-12-04\n"
CHANGELOG_2 = "# Changelog\n\n## [Unreleased]\n\n## [2.0.0] - 2026-12-10\n\n## [1.0.0] - 2026-12-04\n"
RECORD = {"version": "1.0.0", "modules": RELEASED}


def changed(**network: dict) -> dict:
    return {"network": {**RELEASED["network"], **network}}


@pytest.mark.parametrize("current, breaking", [
    (changed(outputs={"vpc": True}), "network: output vpc_id removed or renamed"),
    (changed(variables={"project": False}), "network: variable kms_key_arn removed or renamed"),
    (changed(variables={**RELEASED["network"]["variables"], "cidr": True}), "network: new required variable cidr"),
    (changed(variables={"project": True, "kms_key_arn": True}), "network: new required variable project"),
    ({}, "module network removed"),
])
def test_a_breaking_change_needs_a_major_version_entry(current: dict, breaking: str) -> None:
    (problem,) = release.problems(CHANGELOG_1, RECORD, current)
    assert problem.startswith(breaking) and "## [2.0.0]" in problem
    assert release.problems(CHANGELOG_2, RECORD, current) == []


def test_additions_with_defaults_are_not_breaking() -> None:
    current = changed(variables={**RELEASED["network"]["variables"], "cidr": False},
                      outputs={"vpc_id": True, "vpc_cidr": True})
    assert release.breaking_changes(RELEASED, current) == []
    assert release.problems(CHANGELOG_1, RECORD, current) == []


def test_the_committed_modules_keep_their_recorded_interface() -> None:
    """Fails when a module's interface breaks without a new major version in CHANGELOG.md."""
    record = json.loads(release.RECORD.read_text())
    assert release.problems(release.CHANGELOG.read_text(), record, release.interface()) == []
    recorded = tuple(int(part) for part in record["version"].split("."))
    assert recorded <= release.newest_version(release.CHANGELOG.read_text())


def test_the_changelog_names_its_versions_newest_first() -> None:
    assert release.newest_version(CHANGELOG_2) == (2, 0, 0)
    with pytest.raises(ValueError, match="no released version"):
        release.newest_version("# Changelog\n\n## [Unreleased]\n")


def test_a_missing_record_or_version_is_one_clear_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(release, "RECORD", tmp_path / "interface.json")
    assert release.main([]) == 2
    assert "python -m modules.tools.release --record" in capsys.readouterr().err
    monkeypatch.setattr(release, "CHANGELOG", tmp_path / "CHANGELOG.md")
    (tmp_path / "CHANGELOG.md").write_text("# Changelog\n\n## [Unreleased]\n")
    assert release.main(["--record"]) == 2
    assert "no released version" in capsys.readouterr().err
    assert not (tmp_path / "interface.json").exists()


def test_the_tag_is_the_newest_version_once_its_interface_is_recorded_and_kept() -> None:
    record_2 = {"version": "2.0.0", "modules": RELEASED}
    assert release.tag(CHANGELOG_2, record_2, RELEASED) == "modules/v2.0.0"
    with pytest.raises(ValueError, match="records modules/v1.0.0, not v2.0.0"):
        release.tag(CHANGELOG_2, RECORD, RELEASED)
    with pytest.raises(ValueError, match="differ from the interface recorded for v2.0.0"):
        release.tag(CHANGELOG_2, record_2, changed(outputs={}))


def test_the_committed_release_is_ready_to_tag() -> None:
    """What .github/workflows/release.yml runs on main: the newest CHANGELOG version is recorded."""
    done = subprocess.run([sys.executable, str(release.ROOT / "modules" / "tools" / "release.py"), "--tag"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "modules/v" + ".".join(map(str, release.newest_version(release.CHANGELOG.read_text())))


def test_docs_pin_no_tag_but_the_release_workflow_creates() -> None:
    """A `modules/vX.Y.Z` a reader may pin is the newest release (tagged by the workflow on main)
    or an existing tag: none that never was."""
    tags = subprocess.run(["git", "tag", "--list", "modules/v*"], capture_output=True, text=True,
                          cwd=release.ROOT).stdout.split()
    newest = "modules/v" + ".".join(map(str, release.newest_version(release.CHANGELOG.read_text())))
    docs = [release.ROOT / "README.md", release.CHANGELOG, *release.ROOT.glob("terraform-modules/*/README.md"),
            *release.ROOT.glob("examples/*/*.tf"), *release.ROOT.glob("examples/*/README.md")]
    pinned = {(path.relative_to(release.ROOT).as_posix(), ref) for path in docs
              for ref in re.findall(r"modules/v\d+\.\d+\.\d+", path.read_text())}
    assert {(path, ref) for path, ref in pinned if ref != newest and ref not in tags} == set()
