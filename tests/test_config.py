"""ENV-2: bad input is rejected before any construct is built, naming environment, field and fix."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS
from main import main
from modules.config import (ACCOUNTS_FILE, ENVIRONMENTS_DIR, REGION_AZS, ConfigError, accounts_of, load_environment,
                            load_environments)

ROOT = Path(__file__).resolve().parent.parent


def write_env(root: Path, name: str, base: str = "prod", replace: dict[str, str] | None = None,
              append: str = "") -> Path:
    text = (ENVIRONMENTS_DIR / base / "environment.toml").read_text()
    for old, new in (replace or {}).items():
        assert old in text, f"fixture edit {old!r} does not match {base}/environment.toml"
        text = text.replace(old, new)
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "environment.toml").write_text(text + append)
    if not (root / ACCOUNTS_FILE).exists():
        shutil.copy(ENVIRONMENTS_DIR / ACCOUNTS_FILE, root / ACCOUNTS_FILE)
    return root


def rejection(tmp_path: Path, **edit) -> str:
    """Run the app on one broken environment: it must refuse (exit 2) and write nothing."""
    write_env(tmp_path, "broken", **edit)
    with pytest.raises(ConfigError) as err:
        load_environment("broken", tmp_path)
    outdir = tmp_path / "out"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["broken", "--environments-dir", str(tmp_path), "--outdir", str(outdir)]) == 2
    assert not outdir.exists()
    count = len(err.value.problems)
    assert stderr.getvalue() == (f"configuration error, nothing synthesized ({count} problem{'s' * (count != 1)}):\n"
                                 f"{err.value}\n")
    return str(err.value)


def prefix(root: Path, name: str = "broken") -> str:
    """How every line of a problem in `root/name/environment.toml` starts."""
    return f"environment '{name}' ({root / name / 'environment.toml'}): "


def test_committed_environments_are_valid() -> None:
    envs = load_environments(ENVIRONMENTS)
    assert [e.name for e in envs] == ENVIRONMENTS and all(e.region in REGION_AZS for e in envs)


CASES = {
    # the gateway design's own /20 VPC does not contain its database subnets
    "subnet outside VPC": (
        {"replace": {'vpc_cidr = "10.1.0.0/16"': 'vpc_cidr = "10.1.0.0/20"'}},
        "network.database_subnets[0]: 10.1.21.0/24 is outside the VPC CIDR 10.1.0.0/20", "widen network.vpc_cidr"),
    "overlapping subnets": (
        {"replace": {'private_subnets = ["10.1.11.0/24"': 'private_subnets = ["10.1.1.0/25"'}},
        "network.private_subnets[0]: 10.1.1.0/25 overlaps network.public_subnets[0]", "its own range"),
    "one AZ with HA": (
        {"replace": {'availability_zones = ["eu-west-2a", "eu-west-2b", "eu-west-2c"]':
                     'availability_zones = ["eu-west-2a"]'}},
        "network.availability_zones: has 1 zone but high_availability = true", "add eu-west-2b, eu-west-2c"),
    "two AZs with HA": (
        {"replace": {'availability_zones = ["eu-west-2a", "eu-west-2b", "eu-west-2c"]':
                     'availability_zones = ["eu-west-2a", "eu-west-2b"]',
                     '"10.1.3.0/24"]': ']', '"10.1.13.0/24"]': ']', '"10.1.23.0/24"]': ']'}},
        "network.availability_zones: has 2 zones but high_availability = true: losing one zone would take half",
        "list 3 zones (add eu-west-2c, with a subnet per tier for each)"),
    "AZ outside region": (
        {"replace": {'"eu-west-2c"]': '"us-west-2c"]'}},
        "network.availability_zones[2]: 'us-west-2c' is not in region eu-west-2", "eu-west-2a"),
    "invalid Fargate size": (
        {"replace": {"memory = 2048": "memory = 1024"}},
        "gateway.memory: cpu 1024 / memory 1024 is not a valid Fargate size", "2048..8192"),
    "non-GPU instance": (
        {"replace": {'instance_type = "g5.xlarge"': 'instance_type = "c5.2xlarge"'}},
        "llm.instance_type: 'c5.2xlarge' is not a GPU instance type", "g5.xlarge"),
    "capacity out of order": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 5 }": "capacity = { min = 6, desired = 3, max = 2 }"}},
        "gateway.capacity: min 6, desired 3, max 2 are out of order", "min <= desired <= max"),
    "missing certificate": (
        {"replace": {"certificate_arn = ": "# certificate_arn = "}},
        "edge.certificate_arn: is missing", "ACM certificate ARN in eu-west-2"),
    "certificate from another region": (
        {"replace": {"arn:aws:acm:eu-west-2:": "arn:aws:acm:us-east-1:"}},
        "edge.certificate_arn: is in us-east-1, not eu-west-2", "its own region"),
    "unknown key (typo)": (
        {"replace": {'nat_gateways = "per_az"': 'nat_gatways = "per_az"'}},
        "network.nat_gatways: is not a known key", "did you mean 'nat_gateways'?"),
    "single NAT with HA": (
        {"replace": {'nat_gateways = "per_az"': 'nat_gateways = "single"'}},
        "network.nat_gateways: is 'single' but high_availability = true", 'nat_gateways = "per_az"'),
    "unpinned image in prod": (
        {"replace": {"litellm:v1.108.11": "litellm:main-latest"}},
        "gateway.image: '111122223333.dkr.ecr.eu-west-2.amazonaws.com/ghcr/berriai/litellm:main-latest' is not "
        "pinned", "digest"),
    "gateway image straight from ghcr.io": (
        {"replace": {"111122223333.dkr.ecr.eu-west-2.amazonaws.com/ghcr/berriai": "ghcr.io/berriai"}},
        "gateway.image: 'ghcr.io/berriai/litellm:v1.108.11' is pulled from ghcr.io directly",
        '"111122223333.dkr.ecr.eu-west-2.amazonaws.com/ghcr/berriai/litellm:v1.108.11"'),
    "model server image straight from Docker Hub": (
        {"replace": {"111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/vllm": "vllm"}},
        "llm.vllm_image: 'vllm/vllm-openai:v0.11.0' is pulled from registry-1.docker.io directly",
        '"111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/vllm/vllm-openai:v0.11.0"'),
    "image of another account's registry": (
        {"replace": {"111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/vllm":
                     "444455556666.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/vllm"}},
        "llm.vllm_image: is in registry 444455556666.dkr.ecr.eu-west-2.amazonaws.com, not this environment's",
        "use an image of 111122223333.dkr.ecr.eu-west-2.amazonaws.com"),
    "prod without alarm recipients": (
        {"replace": {'alarm_emails = ["platform-oncall@example.com"]': "alarm_emails = []"}},
        "observability.alarm_emails: is empty in a protected environment", "at least one address"),
    "malformed alarm address": (
        {"replace": {'alarm_emails = ["platform-oncall@example.com"]': 'alarm_emails = ["oncall"]'}},
        "observability.alarm_emails[0]: String should match pattern", "write a value matching"),
    "wrong type": (
        {"replace": {"idle_timeout_seconds = 300": 'idle_timeout_seconds = "five minutes"'}},
        "edge.idle_timeout_seconds:", "whole number without quotes"),
    "quoted number (strict)": (
        {"replace": {"cpu = 1024": 'cpu = "1024"'}},
        "gateway.cpu: Input should be a valid integer (got '1024')", "whole number without quotes"),
    "word for a boolean (strict)": (
        {"replace": {"high_availability = true": 'high_availability = "yes"'}},
        "high_availability: Input should be a valid boolean (got 'yes')", "true or false without quotes"),
    "protected environment on a local backend": (
        {"replace": {'type = "s3"\nbucket = "llmlite-prod-tfstate-111122223333"\n': 'type = "local"\n'}},
        'backend.type: is "local" in a protected environment; its state holds secrets',
        "bucket the broken-state stack creates"),
    "non-GPU Spot alternative": (
        {"replace": {'spot_instance_types = ["g6.xlarge"': 'spot_instance_types = ["m5.xlarge"'}},
        "llm.spot_instance_types[0]: 'm5.xlarge' is not a GPU instance type", "g5.xlarge"),
    "Spot alternative with smaller GPUs": (
        {"replace": {'spot_instance_types = ["g6.xlarge"': 'spot_instance_types = ["g4dn.xlarge"'}},
        "llm.spot_instance_types[0]: 'g4dn.xlarge' has 16 GB GPUs, g5.xlarge has 24 GB",
        "with at least 24 GB GPUs"),
    "one GPU host with HA": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 4 }": "capacity = { min = 1, desired = 1, max = 4 }"}},
        "llm.capacity.min: is 1 but high_availability = true: one host is one zone", "at least 2"),
    "GPU hosts scheduled to zero with HA": (
        {"replace": {"on_demand_base = 1\n": "on_demand_base = 1\nscheduled_scaling = true\n"}},
        "llm.scheduled_scaling: is true but high_availability = true", "scheduled_scaling = false"),
    "root volume smaller than the model": (
        {"replace": {"root_volume_gb = 200": "root_volume_gb = 40"}},
        "llm.root_volume_gb: 40 GB cannot hold the 16 GB model", "at least 46 GB"),
    "warm pool larger than max": (
        {"replace": {"on_demand_base = 1\n": "on_demand_base = 1\nwarm_pool_size = 9\n"}},
        "llm.warm_pool_size: 9 exceeds llm.capacity.max 4", "at most capacity.max"),
    "warm pool with Spot": (
        {"replace": {"on_demand_base = 1\n": "on_demand_base = 1\nwarm_pool_size = 1\n"}},
        "llm.warm_pool_size: is set on a group that uses Spot", "on-demand only"),
    "missing private name of the model": (
        {"replace": {'dns_name = "llm.prod.internal.example.com"': '# dns_name'}},
        "llm.dns_name: is missing", "llm.internal.example.com"),
    "both weights locations": (
        {"replace": {"model_size_gb = 16": 'model_size_gb = 16\nhf_model_id = "deepseek-ai/x"'}},
        "llm.weights_s3_prefix: and llm.hf_model_id are both set or both missing", "exactly one weights location"),
    "unpinned model server image in prod": (
        {"replace": {"vllm-openai:v0.11.0": "vllm-openai:latest"}},
        "llm.vllm_image: '111122223333.dkr.ecr.eu-west-2.amazonaws.com/docker-hub/vllm/vllm-openai:latest' is not "
        "pinned", "pin a release tag"),
    "GPU capacities out of order": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 4 }": "capacity = { min = 3, desired = 1, max = 2 }"}},
        "llm.capacity: min 3, desired 1, max 2 are out of order", "min <= desired <= max"),
    "override of an unknown alarm": (
        {"append": '\n[observability.overrides.alb-5xx-rates]\nthreshold = 3\n'},
        "observability.overrides.alb-5xx-rates: is not an alarm of the platform", "did you mean 'alb-5xx-rate'?"),
    "percentage threshold out of range": (
        {"append": '\n[observability.overrides.ecs-cpu]\nthreshold = 180\n'},
        "observability.overrides.ecs-cpu.threshold: 180.0 is out of range for a percent alarm", "(0, 100]"),
    "evaluation periods out of range": (
        {"append": '\n[observability.overrides.ecs-cpu]\nperiods = 50\n'},
        "observability.overrides.ecs-cpu.periods: Input should be less than or equal to 10 (got 50)",
        "use a value of at most 10"),
    "internal listener without its own certificate": (
        {"replace": {'certificate_arn = "arn:aws:acm:eu-west-2:111122223333:certificate/5c4b': '# certificate_arn = "'}},
        "llm.certificate_arn: is missing; the internal model ALB serves HTTPS for llm.dns_name",
        "request an ACM certificate in eu-west-2 for the private name"),
    "edge wildcard for the private name": (
        {"replace": {'certificate_domains = ["llm.prod.internal.example.com"]': 'certificate_domains = ["*.example.com"]'}},
        "llm.certificate_domains: *.example.com does not cover llm.dns_name 'llm.prod.internal.example.com'",
        "'*.prod.internal.example.com'"),
    "certificate names not declared": (
        {"replace": {'certificate_domains = ["llm.prod.internal.example.com"]': "certificate_domains = []"}},
        "llm.certificate_domains: is empty", "as ACM shows them"),
    "scheduled scaling down to a zero minimum": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 4 }":
                     "capacity = { min = 0, desired = 1, max = 4 }\nscheduled_scaling = true"}},
        "llm.capacity.min: is 0 with scheduled_scaling = true", "at least 1"),
    "scheduled scaling at one hour": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 4 }":
                     "capacity = { min = 2, desired = 2, max = 4 }\nscheduled_scaling = true\n"
                     "scale_down_hour = 15"}},
        "llm.scale_up_hour: equals llm.scale_down_hour (15)", "different hours"),
    "unknown schedule time zone": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 4 }":
                     'capacity = { min = 2, desired = 2, max = 4 }\nschedule_time_zone = "Central"'}},
        "llm.schedule_time_zone: 'Central' is not an IANA time zone", "America/Chicago"),
    "schedule hour out of range": (
        {"replace": {"capacity = { min = 2, desired = 2, max = 4 }":
                     "capacity = { min = 2, desired = 2, max = 4 }\nscale_up_hour = 24"}},
        "llm.scale_up_hour: Input should be less than or equal to 23 (got 24)", "use a value of at most 23"),
    "gp3 throughput beyond its IOPS": (
        {"replace": {"root_volume_gb = 200": "root_volume_gb = 200\nroot_volume_iops = 3000\n"
                     "root_volume_throughput_mibps = 1000"}},
        "llm.root_volume_throughput_mibps: 1000 MiB/s needs more than 3000 IOPS", "at least 4000"),
    "fewer receives than Lambda's SQS guidance": (
        {"replace": {"mfa = \"ON\"": "mfa = \"ON\"\nmax_receives = 3"}},
        "realtime.max_receives: 3 would dead-letter requests whose batches were only throttled",
        "at least 5, as Lambda's guidance for SQS sources says"),
    "worker concurrency below the event source's minimum": (
        {"replace": {"mfa = \"ON\"": "mfa = \"ON\"\nworker_concurrency = 1"}},
        "realtime.worker_concurrency: 1 is outside 2-1000, the maximum concurrency an SQS event source mapping "
        "accepts", "use a value from 2 to 1000"),
    "the old reservation for every function": (
        {"replace": {"mfa = \"ON\"": "mfa = \"ON\"\nreserved_concurrency = 10"}},
        "realtime.reserved_concurrency: is not a known key", "worker_concurrency"),
    "no room for an answer": (
        {"replace": {"max_output_tokens = 4096": "max_output_tokens = 0"}},
        "realtime.max_output_tokens: Input should be greater than or equal to 1 (got 0)", "use a value of at least 1"),
    "an output cap the self-hosted model refuses": (
        {"replace": {"max_output_tokens = 4096": "max_output_tokens = 8192"}},
        "realtime.max_output_tokens: 8192 is not below llm.max_model_len (8192), the self-hosted model's context",
        "use fewer than 8192 tokens (leave room for the prompt), or raise llm.max_model_len"),
    "account id missing": (
        {"replace": {'account_id = "111122223333"\n': ""}},
        "account_id: is required", "add it to environment.toml"),
    "account id not 12 digits": (
        {"replace": {'account_id = "111122223333"': 'account_id = "11112222333"'}},
        "account_id: '11112222333' is not a 12-digit AWS account id", 'account_id = "111122223333"'),
    "account id as a number": (
        {"replace": {'account_id = "111122223333"': "account_id = 111122223333"}},
        "account_id: Input should be a valid string", "double quotes"),
    "certificate of another account": (
        {"replace": {"arn:aws:acm:eu-west-2:111122223333:": "arn:aws:acm:eu-west-2:444455556666:"}},
        "edge.certificate_arn: names account 444455556666, but this environment deploys to account 111122223333",
        "use a resource of account 111122223333, or correct account_id"),
    "deploy role of another account": (
        {"replace": {'account_id = "111122223333"\n': 'account_id = "111122223333"\n'
                     'deploy_role_arn = "arn:aws:iam::444455556666:role/platform-deploy"\n'}},
        "deploy_role_arn: names account 444455556666", "use a resource of account 111122223333"),
    "deploy role that is not a role": (
        {"replace": {'account_id = "111122223333"\n': 'account_id = "111122223333"\n'
                     'deploy_role_arn = "arn:aws:iam::111122223333:user/deployer"\n'}},
        "deploy_role_arn: 'arn:aws:iam::111122223333:user/deployer' is not an IAM role ARN",
        "arn:aws:iam::111122223333:role/<name>"),
    "secret ARN of another region": (
        {"replace": {"memory = 2048\n": "memory = 2048\nlicense_secret_arn = "
                     '"arn:aws:secretsmanager:us-east-1:111122223333:secret:litellm-licence"\n'}},
        "gateway.license_secret_arn: is in us-east-1, not eu-west-2", "use a resource in eu-west-2"),
    "malformed ARN": (
        {"replace": {"memory = 2048\n": 'memory = 2048\nlicense_secret_arn = "arn:aws:secretsmanager:licence"\n'}},
        "gateway.license_secret_arn: 'arn:aws:secretsmanager:licence' is not a valid ARN", "arn:<partition>"),
    "free-storage alarm at the storage autoscaling trigger": (
        {"append": '\n[observability.overrides.rds-free-storage]\nthreshold = 3000000000\n'},
        "observability.overrides.rds-free-storage.threshold: 3,000,000,000 bytes is at or above storage "
        "autoscaling's trigger (10 % of 20 GiB = 2,147,483,648 bytes)", "alarm below 2,147,483,648 bytes"),
    # Data residency: prod's data stays in eu-west-2 unless the environment names a region.
    "backup copy to a region not allowed": (
        {"replace": {"allowed_copy_regions = []\n": 'allowed_copy_regions = []\nbackup_copy_region = "eu-west-1"\n'}},
        "data.backup_copy_region: copies data to 'eu-west-1', which data.allowed_copy_regions does not allow "
        "(allowed: none)", "add 'eu-west-1' to data.allowed_copy_regions"),
    "table replica in a region not allowed": (
        {"replace": {"allowed_copy_regions = []\n": 'allowed_copy_regions = ["eu-west-1"]\n'
                     'dynamodb_replica_regions = ["eu-central-1"]\n'}},
        "data.dynamodb_replica_regions[0]: copies data to 'eu-central-1', which data.allowed_copy_regions does "
        "not allow (allowed: eu-west-1)", "add 'eu-central-1' to data.allowed_copy_regions"),
    "allowed copy region is the environment's own": (
        {"replace": {"allowed_copy_regions = []\n": 'allowed_copy_regions = ["eu-west-2"]\n'}},
        "data.allowed_copy_regions[0]: 'eu-west-2' is not a second supported region", "other than eu-west-2"),
    "bad enum": (
        {"replace": {'managed_rules_action = "block"': 'managed_rules_action = "drop"'}},
        "edge.managed_rules_action: 'drop' is not allowed", "'block' or 'count'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_rejected_with_field_and_fix_and_nothing_written(tmp_path: Path, case: str) -> None:
    edit, problem, fix = CASES[case]
    message = rejection(tmp_path, **edit)
    assert message.startswith(prefix(tmp_path))
    assert problem in message
    assert " Rule: " in message and "Fix: " in message and fix in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    message = rejection(tmp_path, replace={"memory = 2048": "memory = 1024",
                                           'instance_type = "g5.xlarge"': 'instance_type = "m5.large"'})
    assert "gateway.memory" in message and "llm.instance_type" in message


def test_a_foreign_account_is_reported_with_every_other_problem(tmp_path: Path) -> None:
    message = rejection(tmp_path, replace={"arn:aws:acm:eu-west-2:111122223333:": "arn:aws:acm:eu-west-2:444455556666:",
                                           "memory = 2048": "memory = 1024"})
    assert "edge.certificate_arn: names account 444455556666" in message and "gateway.memory" in message


def test_a_typo_does_not_hide_the_other_problems(tmp_path: Path) -> None:
    message = rejection(tmp_path, replace={'nat_gateways = "per_az"': 'nat_gatways = "per_az"',
                                           'vpc_cidr = "10.1.0.0/16"': 'vpc_cidr = "10.1.0.0/20"'})
    assert "network.nat_gatways: is not a known key" in message
    assert "network.database_subnets[0]: 10.1.21.0/24 is outside the VPC CIDR 10.1.0.0/20" in message


def test_problems_of_several_environments_keep_their_own_names(tmp_path: Path) -> None:
    write_env(tmp_path, "one", replace={"memory = 2048": "memory = 1024"})
    write_env(tmp_path, "two", replace={'instance_type = "g5.xlarge"': 'instance_type = "m5.large"'})
    with pytest.raises(ConfigError) as err:
        load_environments(["one", "two"], tmp_path)
    lines = str(err.value).splitlines()
    assert [line[:len(prefix(tmp_path, name))] for line, name in zip(lines, ("one", "two"))] == \
        [prefix(tmp_path, "one"), prefix(tmp_path, "two")]
    assert len(lines) == 2
    assert "gateway.memory" in lines[0] and "llm.instance_type" in lines[1]


def test_folder_name_is_the_environment_name(tmp_path: Path) -> None:
    assert "name: is set in the file" in rejection(tmp_path, replace={'region = "eu-west-2"': 'name = "other"\nregion = "eu-west-2"'})


def test_bad_environment_writes_nothing(tmp_path: Path) -> None:
    """A valid and an invalid environment together: exit 2, the error on stderr, no output at all."""
    envs = tmp_path / "environments"
    shutil.copytree(ENVIRONMENTS_DIR / "dev", envs / "dev")
    write_env(envs, "broken", replace={'vpc_cidr = "10.1.0.0/16"': 'vpc_cidr = "10.1.0.0/20"'})
    outdir = tmp_path / "out"
    proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "dev", "broken", "--environments-dir", str(envs),
                           "--outdir", str(outdir)], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2
    assert "environment 'broken' (" in proc.stderr and "): network.database_subnets[0]" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not outdir.exists()


@pytest.mark.parametrize("certificate_name, host, covered", [
    ("llm.prod.internal.example.com", "llm.prod.internal.example.com", True),
    ("*.prod.internal.example.com", "llm.prod.internal.example.com", True),
    ("*.example.com", "llm.prod.internal.example.com", False),  # a wildcard covers one label only
    ("*.example.com", "example.com", False),
    ("*.prod.internal.example.com", ".prod.internal.example.com", False),
    ("llm.dev.internal.example.com", "llm.prod.internal.example.com", False),
])
def test_a_certificate_name_covers_a_host_as_acm_does(certificate_name, host, covered) -> None:
    from modules.config.rules import covers
    assert covers(certificate_name, host) is covered


def test_a_type_error_a_typo_and_a_cross_field_violation_are_reported_together(tmp_path: Path) -> None:
    """Pydantic builds no model after a type error; the rules still run on what did parse."""
    message = rejection(tmp_path, replace={"cpu = 1024": 'cpu = "1024"',                    # type
                                           'nat_gateways = "per_az"': 'nat_gatways = "per_az"',  # typo
                                           'vpc_cidr = "10.1.0.0/16"': 'vpc_cidr = "10.1.0.0/20"',  # cross-field
                                           "capacity = { min = 2, desired = 2, max = 5 }":
                                           "capacity = { min = 2, desired = 9, max = 5 }"})  # same section as the type error
    lines = message.splitlines()
    assert all(line.startswith(prefix(tmp_path)) for line in lines)
    expected = {
        "gateway.cpu: Input should be a valid integer (got '1024'). Rule: strict types. Fix: write a whole number",
        "network.nat_gatways: is not a known key. Rule: known keys only. Fix: did you mean 'nat_gateways'?",
        "network.database_subnets[0]: 10.1.21.0/24 is outside the VPC CIDR 10.1.0.0/20. Rule: subnets inside the VPC",
        "gateway.capacity: min 2, desired 9, max 5 are out of order. Rule: capacities ordered",
    }
    for text in expected:
        assert sum(text in line for line in lines) == 1, text
    # the Fargate rule reads gateway.cpu, which did not parse: it stays silent rather than guess
    assert not [line for line in lines if "Fargate" in line]


def test_every_problem_of_every_environment_in_one_run(tmp_path: Path) -> None:
    write_env(tmp_path, "one", replace={"cpu = 1024": 'cpu = "1024"', "memory = 2048": "memory = 10",
                                        "redis_replicas = 1": "redis_replicas = 9"})
    write_env(tmp_path, "two", replace={'nat_gateways = "per_az"': 'nat_gateways = "single"',
                                        "idle_timeout_seconds = 300": "idle_timeout_seconds = 0"})
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert main(["one", "two", "--environments-dir", str(tmp_path), "--outdir", str(tmp_path / "out")]) == 2
    head, *lines = stderr.getvalue().splitlines()
    assert head == "configuration error, nothing synthesized (4 problems in 2 environments):"
    assert [line[:len(prefix(tmp_path, "one"))] for line in lines] == [prefix(tmp_path, "one")] * 2 + \
        [prefix(tmp_path, "two")] * 2
    assert "data.redis_replicas: Input should be less than or equal to 5 (got 9)" in lines[0]
    assert "gateway.cpu: Input should be a valid integer" in lines[1]  # and no Fargate-pair guess about memory
    assert "edge.idle_timeout_seconds: Input should be greater than or equal to 1 (got 0). Rule: value ranges. " \
           "Fix: use a value of at least 1." in lines[2] + lines[3]
    assert "network.nat_gateways: is 'single' but high_availability = true" in lines[2] + lines[3]


def test_an_inherited_certificate_is_named_as_inherited(tmp_path: Path) -> None:
    """realtime.certificate_arn is not in the file: its problem says where the value came from."""
    edge = 'certificate_arn = "arn:aws:acm:eu-west-2:111122223333:certificate/0f1e'
    message = rejection(tmp_path, replace={edge: edge.replace("eu-west-2", "us-east-1")})
    assert ("realtime.certificate_arn (inherited from edge.certificate_arn): is in us-east-1, not eu-west-2. "
            "Rule: an ACM certificate of the environment's region.") in message
    assert "or give realtime.certificate_arn a certificate of its own" in message
    own = rejection(tmp_path, replace={'custom_domain = "ws.example.com"': 'custom_domain = "ws.example.com"\n'
                                       'certificate_arn = "arn:aws:acm:eu-west-1:111122223333:'
                                       'certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"'})
    assert "realtime.certificate_arn: is in eu-west-1, not eu-west-2" in own and "(inherited from" not in own


def test_the_model_certificate_of_another_region_is_named_by_the_region_rule(tmp_path: Path) -> None:
    llm = 'certificate_arn = "arn:aws:acm:eu-west-2:111122223333:certificate/5c4b'
    message = rejection(tmp_path, replace={llm: llm.replace("eu-west-2", "us-east-1")})
    assert ("llm.certificate_arn: is in us-east-1, not eu-west-2. Rule: an ACM certificate of the environment's "
            "region. Fix: the internal model ALB needs a certificate from its own region (eu-west-2).") in message


def test_a_missing_edge_certificate_is_reported_once(tmp_path: Path) -> None:
    """The WebSocket domain inherits the edge certificate: its absence is the edge's one problem."""
    edge = 'certificate_arn = "arn:aws:acm:eu-west-2:111122223333:certificate/0f1e'
    message = rejection(tmp_path, replace={edge: "# " + edge})
    assert [line.split("): ", 1)[1].split(":")[0] for line in message.splitlines()] == ["edge.certificate_arn"]


@pytest.mark.parametrize("edit, field, fix", [
    ({'vpc_cidr = "10.1.0.0/16"': "vpc_cidr = 5"}, "network.vpc_cidr: Input should be a valid string (got 5)",
     "double quotes"),  # not silently 0.0.0.5/32
    ({'public_subnets = ["10.1.1.0/24", "10.1.2.0/24", "10.1.3.0/24"]':
      'public_subnets = ["10.1.1.0/24", "10.1.2.0/33", "10.1.3.0/24"]'},
     "network.public_subnets[1]: Input is not a valid IPv4 network", "CIDR notation"),
    ({'vpc_cidr = "10.1.0.0/16"': 'vpc_cidr = "10.1.5.0/16"'},
     "network.vpc_cidr: 10.1.5.0/16 has host bits set: that range starts at 10.1.0.0/16", 'write the range\'s first '
     'address: "10.1.0.0/16"'),
    ({'m2m_clients = ["batch-jobs"]': 'm2m_clients = ["Batch Jobs"]'},
     "realtime.m2m_clients[0]: String should match pattern", "write a value matching"),
    ({"CostCenter = \"llm-platform\"": "\"cost center\" = 7"}, 'tags."cost center": Input should be a valid string',
     "double quotes"),
])
def test_value_errors_name_the_path_as_written_and_how_to_write_it(tmp_path: Path, edit, field, fix) -> None:
    message = rejection(tmp_path, replace=edit)
    assert field in message and fix in message


def test_a_name_in_the_file_does_not_hide_the_rest(tmp_path: Path) -> None:
    message = rejection(tmp_path, replace={'region = "eu-west-2"': 'name = "other"\nregion = "eu-west-2"',
                                           "memory = 2048": "memory = 1024"})
    assert "name: is set in the file" in message and "gateway.memory: cpu 1024 / memory 1024" in message


# --- accounts.toml --------------------------------------------------------------------------

def test_an_environment_naming_an_unknown_account_is_refused(tmp_path: Path) -> None:
    write_env(tmp_path, "stray", replace={'account_id = "111122223333"': 'account_id = "999988887777"'})
    with pytest.raises(ConfigError) as err:
        load_environment("stray", tmp_path)
    assert str(err.value).startswith("environment 'stray' (")
    assert "account_id: 999988887777 is not an account of" in str(err.value)
    assert "use one of: dev (444455556666), prod (111122223333)" in str(err.value)


def test_two_accounts_with_one_id_are_refused_with_every_other_problem(tmp_path: Path) -> None:
    write_env(tmp_path, "prod")
    (tmp_path / ACCOUNTS_FILE).write_text(
        (ENVIRONMENTS_DIR / ACCOUNTS_FILE).read_text()
        + '\n[accounts.staging]\nid = "444455556666"\nregion = "mars-1"\nrepository = "example-org/llm-platform"\n')
    with pytest.raises(ConfigError) as err:
        load_environments(["prod"], tmp_path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and all(line.startswith("accounts (") for line in lines)
    assert "accounts.staging.id: 444455556666 is also account 'dev'" in lines[0]
    assert "accounts.staging.region: 'mars-1' is not a supported region" in lines[1]


def test_a_bad_account_field_names_it(tmp_path: Path) -> None:
    write_env(tmp_path, "prod")
    (tmp_path / ACCOUNTS_FILE).write_text('[accounts.prod]\nid = 111122223333\nregion = "eu-west-2"\n'
                                          'repository = "example-org/llm-platform"\n')
    with pytest.raises(ConfigError) as err:
        load_environments(["prod"], tmp_path)
    assert "accounts.prod.id: Input should be a valid string (got 111122223333)" in str(err.value)


def test_an_account_stack_is_built_from_every_environment_in_it() -> None:
    """prod alone selected: the prod account still holds prod-us's roles (a subset would destroy them)."""
    (prod,) = load_environments(["prod"])
    accounts = accounts_of([prod])
    assert list(accounts) == ["prod"]
    assert [env.name for env in accounts["prod"][1]] == ["prod", "prod-us"]
