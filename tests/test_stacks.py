"""ENV-3: stack naming, backends, and the app entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS
from modules.engine.app import build_app
from modules.config import Backend, load_environment
from modules.engine.stacks import LAYERS


BUILT_LAYERS = ("foundation", "network", "edge", "data", "gateway", "llm", "realtime", "observability")


def test_every_environment_has_one_stack_per_layer(stacks) -> None:
    in_s3 = {name for name in ENVIRONMENTS if load_environment(name).backend.type == "s3"}
    assert in_s3 == set(ENVIRONMENTS)  # dev too: a runner's disk does not keep state between deploys
    assert set(stacks) == ({f"{env}-{layer}" for env in ENVIRONMENTS for layer in BUILT_LAYERS}
                           | {f"{env}-state" for env in in_s3})
    assert set(BUILT_LAYERS) <= set(LAYERS)


def test_a_layer_outside_the_specification_is_refused() -> None:
    from cdktn import App
    from modules.engine.stacks import LayerStack
    with pytest.raises(ValueError, match="unknown layer 'cache'"):
        LayerStack(App(), load_environment("dev"), "cache")


def test_every_deployed_stack_keeps_its_state_in_s3_encrypted_and_locked(stacks, account_stacks) -> None:
    """Every environment's stacks, its state stack (bootstrapped, then in its own bucket) and the
    accounts' stacks (in their state_bucket)."""
    for name, stack in stacks.items():
        env = load_environment(name.rsplit("-", 1)[0])
        backend = stack.doc["terraform"]["backend"]
        if env.backend.type == "s3":
            layer = name.removeprefix(f"{env.name}-")
            assert backend == {"s3": {"bucket": env.backend.bucket, "key": f"llm-platform/{env.name}/{layer}.tfstate",
                                      "region": env.region, "encrypt": True, "use_lockfile": True,
                                      "allowed_account_ids": [env.account_id]}}, name
        else:
            assert backend == {"local": {"path": f"../../../terraform.{name}.tfstate"}}, name
    for name, stack in account_stacks.items():
        bucket = {"account-dev": "llmlite-dev-tfstate-444455556666",
                  "account-prod": "llmlite-prod-tfstate-111122223333"}[name]
        assert stack.doc["terraform"]["backend"]["s3"] == {
            "bucket": bucket, "key": f"llm-platform/{name}.tfstate", "region": "eu-west-2", "encrypt": True,
            "use_lockfile": True, "allowed_account_ids": [stack.doc["provider"]["aws"][0]["allowed_account_ids"][0]]}


def test_state_stack_creates_the_backend_bucket_encrypted_versioned_tls_only_private(stacks) -> None:
    for env in (e for e in ENVIRONMENTS if load_environment(e).backend.type == "s3"):
        state = stacks[f"{env}-state"]
        bucket_name = load_environment(env).backend.bucket
        buckets = {lid: b for lid, b in state.resources("aws_s3_bucket").items() if b["bucket"] == bucket_name}
        (lid,) = buckets
        ref = state.ref("aws_s3_bucket", lid)
        parts = {type_: next(r for r in state.resources(type_).values() if r["bucket"] == ref) for type_ in (
            "aws_s3_bucket_versioning", "aws_s3_bucket_server_side_encryption_configuration",
            "aws_s3_bucket_public_access_block", "aws_s3_bucket_policy", "aws_s3_bucket_lifecycle_configuration")}
        assert parts["aws_s3_bucket_versioning"]["versioning_configuration"]["status"] == "Enabled"
        sse = parts["aws_s3_bucket_server_side_encryption_configuration"]["rule"][0]["apply_server_side_encryption_by_default"]
        assert sse["sse_algorithm"] == "aws:kms" and sse["kms_master_key_id"].startswith("${aws_kms_key.state_key")
        assert all(parts["aws_s3_bucket_public_access_block"][k] for k in (
            "block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
        assert "DenyInsecureTransport" in parts["aws_s3_bucket_policy"]["policy"]
        # Terraform reads the current state on every plan: it is never archived
        assert "transition" not in parts["aws_s3_bucket_lifecycle_configuration"]["rule"][0]
        protected = load_environment(env).protect_stateful
        assert buckets[lid].get("lifecycle") == ({"prevent_destroy": True} if protected else None)
        assert set(state.doc["output"]) >= {"state_bucket", "state_kms_key_arn"}


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
        "encrypt": True, "use_lockfile": True, "allowed_account_ids": [env.account_id]}}
    # cross-stack references read the producer's state from the same backend, with the same guard
    remote = doc["data"]["terraform_remote_state"]
    assert {r["backend"] for r in remote.values()} == {"s3"}
    assert all(r["config"]["encrypt"] is True for r in remote.values())
    assert all(r["config"]["allowed_account_ids"] == [env.account_id] for r in remote.values())


def test_every_provider_accepts_only_the_environments_account(stacks) -> None:
    """A prod plan run with dev's credentials stops at provider configuration, before any
    change (checked against Terraform 1.11 + AWS provider 5.100 and an emulated STS: "AWS
    account ID not allowed"). Replica-region providers and state stacks are guarded alike."""
    accounts = {name: load_environment(name).account_id for name in ENVIRONMENTS}
    assert all(len(account) == 12 and account.isdigit() for account in accounts.values())
    aliased = 0
    for name, stack in stacks.items():
        env = name.rsplit("-", 1)[0]
        for provider in stack.doc["provider"]["aws"]:
            assert provider["allowed_account_ids"] == [accounts[env]], (name, provider.get("alias"))
            assert "assume_role" not in provider, name  # no committed environment sets deploy_role_arn
            aliased += "alias" in provider
    assert aliased  # prod-us's replica-region provider is among them


def test_deploy_role_is_assumed_by_the_provider_and_the_state_backend(tmp_path: Path) -> None:
    from cdktn import App
    from modules.engine.stacks import STATE_LAYER, LayerStack
    role = "arn:aws:iam::111122223333:role/platform-deploy"
    env = load_environment("prod-us").model_copy(update={"deploy_role_arn": role})
    app = App(outdir=str(tmp_path))
    for layer in (STATE_LAYER, "foundation"):
        LayerStack(app, env, layer, replica_regions=("us-east-1",) if layer == "foundation" else ())
    app.synth()
    for layer in (STATE_LAYER, "foundation"):
        doc = json.loads((tmp_path / "stacks" / f"prod-us-{layer}" / "cdk.tf.json").read_text())
        for provider in doc["provider"]["aws"]:
            assert provider["allowed_account_ids"] == ["111122223333"]
            assert provider["assume_role"] == [{"role_arn": role, "session_name": f"cdktf-prod-us-{layer}"}]
    backend = json.loads((tmp_path / "stacks" / "prod-us-foundation" / "cdk.tf.json").read_text())["terraform"]["backend"]
    assert backend["s3"]["assume_role"] == {"role_arn": role, "session_name": "cdktf-prod-us-foundation"}
    assert backend["s3"]["allowed_account_ids"] == ["111122223333"]


def test_main_synthesizes_only_the_named_environments(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "main.py", "dev", "--outdir", str(tmp_path)], cwd=root,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # dev's stacks, and its account's (built from every environment of that account)
    assert sorted(p.name for p in (tmp_path / "stacks").iterdir()) == ["account-dev", *sorted(
        f"dev-{layer}" for layer in (*BUILT_LAYERS, "state"))]
    # it says what it wrote, where, and how long it took
    assert proc.stdout.startswith(f"synthesized {len(BUILT_LAYERS) + 2} stacks of dev in ")
    assert "  accounts: account-dev\n" in proc.stdout
    assert f"into {tmp_path / 'stacks'}/" in proc.stdout
    assert "  dev: data edge foundation gateway llm network observability realtime state" in proc.stdout


def test_the_cli_runs_the_same_entry_point() -> None:
    """`cdktn synth/diff/deploy` run main.py through pipenv, so they take the validated, fast path."""
    config = json.loads((Path(__file__).resolve().parent.parent / "cdktf.json").read_text())
    assert config["language"] == "python" and config["app"] == "pipenv run python main.py"


def test_app_and_cli_declare_terraform_1_11_for_write_only_arguments(stacks) -> None:
    """cdktn refuses write-only arguments (the generated secrets' secret_string_wo) unless the
    declared targets all support them; the CLI reads the same declaration from cdktf.json."""
    from modules.engine.stacks import TARGET_VERSIONS
    config = json.loads((Path(__file__).resolve().parent.parent / "cdktf.json").read_text())
    assert config["targetVersions"] == TARGET_VERSIONS == {"terraform": ">=1.11.0"}
    assert build_app([]).node.try_get_context("targetVersions") == TARGET_VERSIONS
    assert any("secret_string_wo" in body for stack in stacks.values()
               for body in stack.resources("aws_secretsmanager_secret_version").values())


def test_every_stack_and_exported_module_requires_the_declared_terraform_floor(stacks) -> None:
    """Terraform itself refuses a release older than the one the output is written for
    (write-only arguments need 1.11): required_version is the declared floor, everywhere."""
    from modules.engine.stacks import TARGET_VERSIONS
    floor = TARGET_VERSIONS["terraform"]
    assert stacks and all(stack.doc["terraform"].get("required_version") == floor for stack in stacks.values())
    modules = sorted((Path(__file__).resolve().parent.parent / "terraform-modules").glob("*/main.tf.json"))
    assert modules and all(json.loads(m.read_text())["terraform"].get("required_version") == floor
                           for m in modules)


def test_every_depends_on_names_existing_resources(stacks) -> None:
    """A construct passed to depends_on synthesizes to nothing: only resource addresses count."""
    for name, stack in stacks.items():
        for type_, blocks in stack.doc.get("resource", {}).items():
            for lid, body in blocks.items():
                if "depends_on" not in body:
                    continue
                assert body["depends_on"], f"{name}: {type_}.{lid} has an empty depends_on"
                for address in body["depends_on"]:
                    dep_type, dep_id = address.split(".")
                    assert dep_id in stack.resources(dep_type), f"{name}: {type_}.{lid} -> {address}"


OPERATOR_OUTPUTS = {
    "foundation": {"kms_key_arn", "audit_bucket", "alb_log_bucket", "waf_log_bucket", "access_log_bucket",
                   "pull_through_cache_secret_arns"},
    "network": {"vpc_id", "public_subnet_ids", "private_subnet_ids", "database_subnet_ids", "security_group_ids"},
    "edge": {"alb_dns_name", "alb_url", "alb_zone_id", "web_acl_arn"},
    "data": {"db_endpoint", "db_name", "db_master_secret_arn", "redis_endpoint", "redis_auth_secret_arn",
             "connections_table_name", "history_table_name"},
    "gateway": {"cluster_name", "service_name", "log_group_name", "master_key_secret_arn", "ecs_exec_enabled"},
    "llm": {"model_endpoint_url", "served_model_name", "internal_alb_dns_name", "asg_name", "weights_bucket",
            "log_group_name", "ssm_parameter_names", "api_key_secret_arn"},
    "realtime": {"websocket_url", "user_pool_id", "web_client_id", "m2m_client_ids", "auth_domain",
                 "request_queue_url", "dead_letter_queue_url", "response_topic_arn", "model_api_key_secret_arn",
                 "eraser_function_name"},
    "observability": {"alarm_topic_arn", "dashboard_url", "composite_alarm_name"},
    "state": {"state_bucket", "state_kms_key_arn"},
}


OPTIONAL_OUTPUTS = {"custom_domain_target"}  # realtime, with a custom domain


def test_every_stack_gives_operators_named_non_sensitive_outputs(stacks) -> None:
    for name, stack in stacks.items():
        layer = name.rsplit("-", 1)[1]
        outputs = stack.doc["output"]
        named = {k: v for k, v in outputs.items() if not k.startswith("cross-stack-output-")}
        assert set(named) - OPTIONAL_OUTPUTS == OPERATOR_OUTPUTS[layer], name
        for key, output in named.items():
            assert output["sensitive"] is False and output["description"], f"{name}: {key}"
            # identifiers only: a secret is named by its ARN, never read
            assert "secret_string" not in json.dumps(output["value"]) and "random_password" not in json.dumps(
                output["value"]), f"{name}: {key}"
    assert stacks["prod-edge"].doc["output"]["alb_url"]["value"].startswith("https://${aws_lb.")

