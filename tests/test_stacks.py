"""ENV-3: stack naming, backends, and the app entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS
from modules.app import build_app
from modules.config import Backend, load_environment
from modules.stacks import LAYERS


BUILT_LAYERS = ("foundation", "network", "edge", "data", "gateway")


def test_every_environment_has_one_stack_per_layer(stacks) -> None:
    assert set(stacks) == {f"{env}-{layer}" for env in ENVIRONMENTS for layer in BUILT_LAYERS}
    assert set(BUILT_LAYERS) <= set(LAYERS)


def test_a_layer_outside_the_specification_is_refused() -> None:
    from cdktf import App
    from modules.stacks import LayerStack
    with pytest.raises(ValueError, match="unknown layer 'cache'"):
        LayerStack(App(), load_environment("dev"), "cache")


def test_default_backend_is_local_with_a_relative_path(stacks) -> None:
    for name, stack in stacks.items():
        assert stack.doc["terraform"]["backend"] == {"local": {"path": f"../../../terraform.{name}.tfstate"}}


def test_provider_region_and_default_tags(stacks) -> None:
    (provider,) = stacks["prod-us-network"].doc["provider"]["aws"]
    assert provider["region"] == "us-west-2"
    tags = provider["default_tags"][0]["tags"]
    assert tags["Environment"] == "prod-us" and tags["Layer"] == "network" and tags["Owner"] == "platform-team"


def test_s3_backend_is_encrypted_and_uses_the_native_lock_file(tmp_path: Path) -> None:
    env = load_environment("prod")
    env = env.model_copy(update={"backend": Backend(type="s3", bucket="example-terraform-state")})
    build_app([env], outdir=str(tmp_path)).synth()
    doc = json.loads((tmp_path / "stacks" / "prod-network" / "cdk.tf.json").read_text())
    assert doc["terraform"]["backend"] == {"s3": {
        "bucket": "example-terraform-state", "key": "llm-platform/prod/network.tfstate", "region": "eu-west-2",
        "encrypt": True, "use_lockfile": True}}
    # cross-stack references read the producer's state from the same backend
    remote = doc["data"]["terraform_remote_state"]
    assert {r["backend"] for r in remote.values()} == {"s3"}
    assert all(r["config"]["encrypt"] is True for r in remote.values())


def test_main_synthesizes_only_the_named_environments(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "main.py", "dev", "--outdir", str(tmp_path)], cwd=root,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "stacks").iterdir()) == [f"dev-{layer}" for layer in sorted(BUILT_LAYERS)]


def test_cdktf_cli_runs_the_same_entry_point() -> None:
    """`cdktf synth/diff/deploy` run main.py through pipenv, so they take the validated, fast path."""
    config = json.loads((Path(__file__).resolve().parent.parent / "cdktf.json").read_text())
    assert config["language"] == "python" and config["app"] == "pipenv run python main.py"
