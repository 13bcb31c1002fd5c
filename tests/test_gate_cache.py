"""The gate's per-stack cache (policies/scan.py) changes nothing but time.

Over a copy of two of dev's synthesized stacks (a smaller scan): the gate run without the cache, with a cold cache and
with a warm one gives the same verdict and byte-identical reports (the run time is fixed here,
the only field that differs between runs); the per-stack, one-process-per-core scan classifies
exactly as one Checkov process over every stack; after one stack is edited, only that stack is
rescanned, and a damaged cache entry is scanned again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from policies import scan
from policies.gate import classify, manifest_stacks, run_gate, run_checkov

RUN_AT = "2026-01-01T00:00:00Z"
KEPT_STACKS = ("dev-data", "dev-edge")
REPORTS = ("report.json", "report.md", "report.sarif", "junit.xml")


@pytest.fixture(scope="module")
def dev_synth(synth_outdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the session's synth whose manifest lists two of dev's stacks only."""
    root = tmp_path_factory.mktemp("gate-cache") / "cdktf.out"
    shutil.copytree(synth_outdir, root)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["stacks"] = {k: v for k, v in manifest["stacks"].items() if k in KEPT_STACKS}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root


def reports(directory: Path) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in REPORTS}


@pytest.fixture
def scanned(monkeypatch) -> list[str]:
    """Names of the stack files Checkov actually ran over, run by run."""
    calls: list[str] = []
    real = scan.scan_uncached

    def recording(files, jobs=None):
        calls.extend(sorted(f.parent.name for f in files))
        return real(files, jobs)

    monkeypatch.setattr(scan, "scan_uncached", recording)
    return calls


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("checkov-cache")


def test_cached_and_uncached_gates_agree_byte_for_byte(dev_synth: Path, cache: Path, tmp_path: Path,
                                                       scanned: list[str]) -> None:
    stacks = sorted(manifest_stacks(dev_synth), key=lambda s: s.name)
    uncached = run_gate(dev_synth, tmp_path / "uncached", cache_dir=None, run_at=RUN_AT)
    cold = run_gate(dev_synth, tmp_path / "cold", cache_dir=cache, run_at=RUN_AT)
    assert sorted(scanned) == sorted([s.name for s in stacks] * 2)  # nothing was cached yet
    scanned.clear()
    warm = run_gate(dev_synth, tmp_path / "warm", cache_dir=cache, run_at=RUN_AT)
    assert scanned == []  # every stack's result came from the cache
    assert uncached.ok and cold.ok == warm.ok == uncached.ok
    assert reports(tmp_path / "uncached") == reports(tmp_path / "cold") == reports(tmp_path / "warm")
    # One Checkov process over every stack (the gate before the cache) classifies the same.
    single = classify(run_checkov([s.path.resolve() for s in stacks]), stacks)
    for kind in ("passed", "passed_by_check", "skipped", "unexplained", "stale", "secrets", "parsing_errors"):
        assert getattr(single, kind) == getattr(warm, kind), kind
    assert single.titles == warm.titles


def test_an_edited_stack_alone_is_rescanned_and_a_damaged_entry_is_a_miss(dev_synth: Path, cache: Path,
                                                                        tmp_path: Path, scanned: list[str]) -> None:
    run_gate(dev_synth, tmp_path / "first", cache_dir=cache, run_at=RUN_AT)  # warm after the test above
    stack = next(s for s in manifest_stacks(dev_synth) if s.name == "dev-data")
    (cache / f"{scan.stack_key(stack.path.resolve())}.json").write_text("{half")
    scanned.clear()
    run_gate(dev_synth, tmp_path / "again", cache_dir=cache, run_at=RUN_AT)
    assert scanned == ["dev-data"]
    assert reports(tmp_path / "first") == reports(tmp_path / "again")

    path = dev_synth / "stacks" / "dev-edge" / "cdk.tf.json"
    doc = json.loads(path.read_text())
    next(iter(doc["resource"]["aws_wafv2_web_acl"].values()))["description"] = "edited"
    path.write_text(json.dumps(doc, indent=2))
    scanned.clear()
    edited = run_gate(dev_synth, tmp_path / "cached", cache_dir=cache, run_at=RUN_AT)
    assert scanned == ["dev-edge"]
    fresh = run_gate(dev_synth, tmp_path / "fresh", cache_dir=None, run_at=RUN_AT)
    assert edited.ok == fresh.ok
    assert reports(tmp_path / "cached") == reports(tmp_path / "fresh")
