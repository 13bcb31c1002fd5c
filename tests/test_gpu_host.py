"""The GPU host boot script, run for real under bash with stand-in commands.

Stand-ins for docker, aws, nvidia-smi, curl, systemctl, the CloudWatch agent and
dnf sit first on PATH; each appends its argv (one shell-quoted line) to a log,
which the tests read back. No network, no Docker daemon, no GPU.

Stand-ins can run at the same time (`aws ecr get-login-password | docker login …` is a
pipeline), so each builds its whole line first and appends it in one write, under an
exclusive lock on the log: lines never interleave.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import os
import shlex
import shutil
import stat
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from modules.parts.gpu_host import (
    SCRIPT,
    HostSettings,
    render_user_data,
    script_body,
    packed_user_data,
)

HF_TOKEN = "hf_standin_secret_9f8e7d"
API_KEY = "vllm_standin_key_4c3b2a"
API_KEY_ARN = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:llmlite/dev/vllm-api-key-AbCdEf"
HOOK = "model-ready"
DRAIN_HOOK = "drained"
TARGET_GROUP_ARN = "arn:aws:elasticloadbalancing:eu-west-2:123456789012:targetgroup/llmlite-dev-llm/0123456789abcdef"
INSTANCE_ID = "i-0123456789abcdef0"
PRIVATE_DNS = "ip-10-1-11-23.eu-west-2.compute.internal"
ECR_IMAGE = "123456789012.dkr.ecr.eu-west-2.amazonaws.com/vllm-openai:v0.11.0"
PUBLIC_IMAGE = "vllm/vllm-openai@sha256:" + "ab" * 32

# Each stand-in logs its argv, then acts on it (STANDIN_* come from the test env). One line,
# one write, under flock: concurrent stand-ins (a pipeline) must not interleave their lines.
LOG_ARGV = ('line=${0##*/}; [ $# -eq 0 ] || line+=$(printf " %q" "$@")\n'
            '{ flock 9; printf "%s\\n" "$line" >&9; } 9>>"$STANDIN_LOG"\n')
# fails KIND N: fail the first N calls of KIND (counted in $STANDIN_STATE), then succeed.
FAILS = 'fails() { local f="$STANDIN_STATE/$1" c=0; [ -f "$f" ] && c=$(cat "$f"); echo $((c + 1)) >"$f"; [ "$c" -lt "$2" ]; }\n'
STANDINS = {
    "docker": """case "$1" in
  login) cat >/dev/null
    # like the real client: no daemon, no login
    [ -f "$STANDIN_STATE/dockerd" ] || { echo "Cannot connect to the Docker daemon" >&2; exit 1; } ;;
  pull) if fails pull "${STANDIN_PULL_FAILS:-0}"; then exit 1; fi ;;
esac
""",
    "aws": """case "$1 $2" in
  "s3 sync") if fails s3-sync "${STANDIN_S3_FAILS:-0}"; then exit 1; fi
    [ -n "${STANDIN_EMPTY_WEIGHTS:-}" ] || echo '{}' >"${!#}/config.json" ;;
  "ecr get-login-password") echo ecr-standin-password ;;
  "secretsmanager get-secret-value") case "$*" in
      *vllm-api-key*) echo "$STANDIN_API_KEY" ;;
      *) echo "$STANDIN_HF_TOKEN" ;;
    esac ;;
  "autoscaling complete-lifecycle-action")
    if [ -n "${STANDIN_NO_PENDING_HOOK:-}" ]; then echo "No active Lifecycle Action found" >&2; exit 254; fi ;;
esac
""",
    "nvidia-smi": 'echo "GPU 0: NVIDIA A10G (UUID: GPU-1)"; echo "GPU 1: NVIDIA A10G (UUID: GPU-2)"\n',
    "curl": f"""for arg; do case "$arg" in http*) url=$arg ;; esac; done
case "$url" in
  http://unreachable.test/*) exit 7 ;;
  */latest/api/token) echo imds-standin-token ;;
  */meta-data/local-hostname) echo {PRIVATE_DNS} ;;
  */meta-data/instance-id) echo {INSTANCE_ID} ;;
  */meta-data/spot/instance-action) [ -n "${{STANDIN_SPOT_NOTICE:-}}" ] || exit 22; echo "$STANDIN_SPOT_NOTICE" ;;
  # STANDIN_INSERVICE_POLLS: the first N answers are InService, then STANDIN_TARGET_STATE.
  */meta-data/autoscaling/target-lifecycle-state)
    if fails state "${{STANDIN_INSERVICE_POLLS:-0}}"; then echo InService; else echo "${{STANDIN_TARGET_STATE:-InService}}"; fi ;;
  */health) [ "${{STANDIN_HEALTH:-200}}" = 200 ] || exit 22 ;;
  # STANDIN_BUSY_POLLS: requests run for the first N scrapes, then none.
  */metrics) if [ -n "${{STANDIN_BUSY_POLLS:-}}" ]; then
      if fails busy "$STANDIN_BUSY_POLLS"; then running=2.0; else running=0.0; fi
      echo "vllm:num_requests_running{{engine=\"0\",model_name=\"deepseek-r1\"}} $running"
      echo "vllm:num_requests_waiting{{engine=\"0\",model_name=\"deepseek-r1\"}} 0.0"
      exit 0
    fi
    cat <<'EOF'
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{{engine="0",model_name="deepseek-r1"}} 3.0
vllm:num_requests_waiting{{engine="1",model_name="deepseek-r1"}} 4.0
vllm:num_requests_running{{engine="0",model_name="deepseek-r1"}} 9.0
EOF
  ;;
  *) exit 7 ;;
esac
""",
    "systemctl": 'if [ "$*" = "enable --now docker" ]; then touch "$STANDIN_STATE/dockerd"; fi\n',
    "amazon-cloudwatch-agent-ctl": 'if [ -n "${STANDIN_AGENT_BROKEN:-}" ]; then exit 1; fi\n',
    # dnf "installs" the agent: its ctl stand-in appears on PATH.
    "dnf": 'if fails dnf "${STANDIN_DNF_FAILS:-0}"; then exit 1; fi\ncp "$STANDIN_SPARE/amazon-cloudwatch-agent-ctl" "${0%/*}/"\n',
}


def settings(tmp: Path, **overrides) -> HostSettings:
    base = dict(
        aws_region="eu-west-2", log_group="/llmlite/dev/gpu", asg_name="llmlite-dev-gpu",
        served_model_name="deepseek-r1", max_model_len=8192, vllm_image=PUBLIC_IMAGE,
        weights_s3_uri="s3://llmlite-dev-models/deepseek-r1/", metrics_namespace="LLMLite/GPU",
        config_dir=str(tmp / "etc/vllm"), model_dir=str(tmp / "models"),
        cw_agent_config=str(tmp / "cwagent/config.json"), systemd_dir=str(tmp / "systemd"),
        bin_dir=str(tmp / "bin"),
    )
    return HostSettings(**{**base, **overrides})


class Host:
    """A temporary 'instance': stand-ins on PATH, the argv log, the rendered script."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.standins = tmp / "standins"
        self.standins.mkdir()
        self.log = tmp / "argv.log"
        for name, body in STANDINS.items():
            path = self.standins / name
            path.write_text("#!/bin/bash\n" + LOG_ARGV + FAILS + body)
            path.chmod(0o755)
        spare = tmp / "spare"
        spare.mkdir()
        (tmp / "standin-state").mkdir()
        shutil.copy2(self.standins / "amazon-cloudwatch-agent-ctl", spare)
        self.env = {
            "PATH": f"{self.standins}:{os.environ['PATH']}", "STANDIN_LOG": str(self.log),
            "STANDIN_HF_TOKEN": HF_TOKEN, "STANDIN_API_KEY": API_KEY, "STANDIN_SPARE": str(spare),
            "STANDIN_STATE": str(tmp / "standin-state"), "IMDS_ENDPOINT": "http://imds.test", "HOME": str(tmp),
            "RETRY_DELAY_SECONDS": "0",
        }

    def run(self, host_settings: HostSettings | None = None, *, script: str | None = None,
            **env: str) -> subprocess.CompletedProcess[str]:
        path = self.tmp / "user_data.sh"
        path.write_text(script if script is not None else render_user_data(host_settings))
        return subprocess.run(["bash", str(path)], env={**self.env, **env}, cwd=self.tmp,
                              capture_output=True, text=True, timeout=20)

    def calls(self, *prefix: str) -> list[list[str]]:
        """argv of every logged call that starts with `prefix`."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        argvs = [shlex.split(line) for line in lines]
        return [a for a in argvs if a[:len(prefix)] == list(prefix)]

    def one(self, *prefix: str) -> list[str]:
        found = self.calls(*prefix)
        assert len(found) == 1, f"expected one {' '.join(prefix)!r} call, got {found}"
        return found[0]


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


@pytest.fixture
def booted(host: Host) -> Host:
    """A host booted once with S3 weights and a public image."""
    result = host.run(settings(host.tmp))
    assert result.returncode == 0, result.stderr
    return host


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def options(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == name]


# --- static checks ------------------------------------------------------------

def test_script_and_rendered_user_data_pass_bash_n_and_shellcheck(tmp_path: Path) -> None:
    rendered = tmp_path / "user_data.sh"
    rendered.write_text(render_user_data(settings(tmp_path, ready_timeout_seconds=600)))
    for path in (SCRIPT, rendered):
        subprocess.run(["bash", "-n", str(path)], check=True)
        result = subprocess.run(["shellcheck", "--severity=style", str(path)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_preamble_exports_each_set_setting_quoted_then_the_script() -> None:
    text = render_user_data(HostSettings(
        aws_region="eu-west-2", log_group="/g", asg_name="asg", served_model_name="m",
        max_model_len=4096, vllm_image="img:1", hf_model_id="org/My Model",
        hf_token_secret_arn="${TfToken[TOKEN.12]}"))
    head, body = text.split("\n# Boot script", 1)
    assert head.splitlines() == [
        "#!/bin/bash",
        "export AWS_REGION=eu-west-2", "export LOG_GROUP=/g", "export ASG_NAME=asg",
        "export SERVED_MODEL_NAME=m", "export MAX_MODEL_LEN=4096", "export VLLM_IMAGE=img:1",
        "export HF_MODEL_ID='org/My Model'", "export HF_TOKEN_SECRET_ARN='${TfToken[TOKEN.12]}'",
        "export METRICS_NAMESPACE=CWAgent", "export GPU_MEMORY_UTILIZATION=0.9",
        "export READY_TIMEOUT_SECONDS=900",
    ]
    assert text.splitlines().count("#!/bin/bash") == 1  # the script's own shebang is gone


def test_packed_user_data_unpacks_to_the_script_and_fits_the_16_kb_limit(tmp_path: Path) -> None:
    text = packed_user_data(settings(tmp_path, weights_s3_uri="s3://${TfToken[TOKEN.3]}/weights/"))
    assert "export WEIGHTS_S3_URI='s3://${TfToken[TOKEN.3]}/weights/'" in text
    body = text[text.index("<<'PACKED'"):]
    assert "${" not in body  # nothing for Terraform or cdktn to read as an interpolation
    packed = body.split("\n", 1)[1].split("\nPACKED\n")[0]
    assert gzip.decompress(base64.b64decode(packed)) == SCRIPT.read_bytes()
    assert packed_user_data(settings(tmp_path)) == packed_user_data(settings(tmp_path))  # deterministic
    assert len(text.encode()) < 16 * 1024


@pytest.mark.parametrize("overrides, message", [
    (dict(hf_model_id="org/m"), "exactly one weights source"),
    (dict(weights_s3_uri=None), "exactly one weights source"),
    (dict(hf_token_secret_arn="arn:aws:secretsmanager:eu-west-2:1:secret:x"), "only used with hf_model_id"),
    (dict(max_model_len=0), "max_model_len"),
    (dict(gpu_memory_utilization=1.5), "gpu_memory_utilization"),
])
def test_settings_are_validated_in_python(tmp_path: Path, overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        settings(tmp_path, **overrides)


# --- a boot ---------------------------------------------------------------------

def test_weights_are_synced_from_s3_into_the_model_dir(booted: Host) -> None:
    assert booted.one("aws", "s3", "sync") == [
        "aws", "s3", "sync", "--only-show-errors", "s3://llmlite-dev-models/deepseek-r1/",
        str(booted.tmp / "models/deepseek-r1")]
    assert (booted.tmp / "models/deepseek-r1/config.json").exists()


def test_vllm_runs_pinned_on_all_gpus_with_tls_and_read_only_mounts(booted: Host) -> None:
    assert booted.one("docker", "pull") == ["docker", "pull", PUBLIC_IMAGE]
    run = booted.one("docker", "run")
    for flag in ("-d", "--ipc=host"):
        assert flag in run
    assert option(run, "--gpus") == "all"
    assert option(run, "-p") == "50051:50051"
    assert option(run, "--restart") == "unless-stopped"
    assert options(run, "-v") == [f"{booted.tmp}/models:/models:ro", f"{booted.tmp}/etc/vllm/tls:/tls:ro"]
    assert options(run, "--log-opt") == [
        "awslogs-region=eu-west-2", "awslogs-group=/llmlite/dev/gpu", f"awslogs-stream={INSTANCE_ID}",
        "mode=non-blocking", "max-buffer-size=4m"]  # slow log delivery never stalls the server
    server = run[run.index(PUBLIC_IMAGE) + 1:]
    assert server == [
        "--model", "/models/deepseek-r1", "--served-model-name", "deepseek-r1",
        "--max-model-len", "8192", "--port", "50051",
        "--ssl-certfile", "/tls/cert.pem", "--ssl-keyfile", "/tls/key.pem",
        "--gpu-memory-utilization", "0.9", "--tensor-parallel-size", "2"]


def test_public_image_needs_no_ecr_login(booted: Host) -> None:
    assert booted.calls("aws", "ecr") == [] and booted.calls("docker", "login") == []


def test_ecr_image_logs_in_to_its_registry_without_the_password_on_a_command_line(host: Host) -> None:
    result = host.run(settings(host.tmp, vllm_image=ECR_IMAGE))
    assert result.returncode == 0, result.stderr
    assert host.one("aws", "ecr") == ["aws", "ecr", "get-login-password", "--region", "eu-west-2"]
    assert host.one("docker", "login") == [
        "docker", "login", "--username", "AWS", "--password-stdin",
        "123456789012.dkr.ecr.eu-west-2.amazonaws.com"]
    assert "ecr-standin-password" not in host.log.read_text()
    assert ECR_IMAGE in host.one("docker", "run")


def test_certificate_names_the_private_dns_name_and_the_key_is_private(booted: Host) -> None:
    tls = booted.tmp / "etc/vllm/tls"
    assert stat.S_IMODE((tls / "key.pem").stat().st_mode) == 0o600
    subject = subprocess.run(["openssl", "x509", "-in", str(tls / "cert.pem"), "-noout", "-subject"],
                             check=True, capture_output=True, text=True).stdout
    assert PRIVATE_DNS in subject
    subprocess.run(["openssl", "pkey", "-in", str(tls / "key.pem"), "-noout"], check=True)
    # IMDSv2: a token first, then the metadata with it, at the overridden endpoint.
    assert booted.calls("curl")[0][-1] == "http://imds.test/latest/api/token"
    assert any("X-aws-ec2-metadata-token: imds-standin-token" in a for a in booted.calls("curl"))


def test_cloudwatch_agent_collects_gpu_metrics_per_asg_and_boot_logs(booted: Host) -> None:
    path = booted.tmp / "cwagent/config.json"
    config = json.loads(path.read_text())
    metrics = config["metrics"]
    assert metrics["namespace"] == "LLMLite/GPU"
    assert metrics["aggregation_dimensions"] == [["AutoScalingGroupName"]]
    assert metrics["append_dimensions"] == {
        "AutoScalingGroupName": "${aws:AutoScalingGroupName}", "InstanceId": "${aws:InstanceId}"}
    assert set(metrics["metrics_collected"]["nvidia_gpu"]["measurement"]) == {
        "utilization_gpu", "utilization_memory", "memory_used", "memory_total",
        "temperature_gpu", "power_draw"}
    logs = config["logs"]["logs_collected"]["files"]["collect_list"]
    # the first boot's cloud-init output, and later boots' log (gpu-host-boot.service)
    assert [(f["file_path"], f["log_group_name"]) for f in logs] == [
        ("/var/log/cloud-init-output.log", "/llmlite/dev/gpu"), ("/var/log/gpu-host-boot.log", "/llmlite/dev/gpu")]
    assert booted.one("amazon-cloudwatch-agent-ctl") == [
        "amazon-cloudwatch-agent-ctl", "-a", "fetch-config", "-m", "ec2", "-s", "-c", f"file:{path}"]
    assert booted.calls("dnf") == []  # already installed


def test_cloudwatch_agent_is_installed_only_when_absent(host: Host) -> None:
    (host.standins / "amazon-cloudwatch-agent-ctl").unlink()
    result = host.run(settings(host.tmp))
    assert result.returncode == 0, result.stderr
    assert host.one("dnf") == ["dnf", "install", "-y", "amazon-cloudwatch-agent"]
    assert host.calls("amazon-cloudwatch-agent-ctl", "-a", "fetch-config")


def test_queue_depth_timer_is_installed_and_publishes_the_summed_waiting_requests(booted: Host) -> None:
    units = booted.tmp / "systemd"
    helper = booted.tmp / "bin/vllm-queue-depth"
    assert f"ExecStart={helper}" in (units / "vllm-queue-depth.service").read_text()
    assert "OnUnitActiveSec=60" in (units / "vllm-queue-depth.timer").read_text()
    assert booted.calls("systemctl", "daemon-reload")
    assert booted.one("systemctl", "enable", "--now", "vllm-queue-depth.timer")
    check = subprocess.run(["shellcheck", "--severity=style", str(helper)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout

    booted.log.unlink()
    result = subprocess.run([str(helper)], env=booted.env, cwd=booted.tmp, capture_output=True,
                            text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert booted.calls("curl")[0][-1] == "https://localhost:50051/metrics"
    assert booted.one("aws", "cloudwatch") == [
        "aws", "cloudwatch", "put-metric-data", "--region", "eu-west-2",
        "--namespace", "LLMLite/GPU", "--metric-name", "vllm_num_requests_waiting", "--unit", "Count",
        "--dimensions", "AutoScalingGroupName=llmlite-dev-gpu", "--value", "7"]


def test_hugging_face_token_reaches_the_container_only_through_a_private_env_file(host: Host) -> None:
    arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:hf-token-AbCdEf"
    result = host.run(settings(host.tmp, weights_s3_uri=None, hf_model_id="deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                               hf_token_secret_arn=arn))
    assert result.returncode == 0, result.stderr
    assert HF_TOKEN not in host.log.read_text()
    assert HF_TOKEN not in result.stdout + result.stderr
    assert host.one("aws", "secretsmanager") == [
        "aws", "secretsmanager", "get-secret-value", "--region", "eu-west-2", "--secret-id", arn,
        "--query", "SecretString", "--output", "text"]
    assert host.calls("aws", "s3") == []
    run = host.one("docker", "run")
    env_file = Path(option(run, "--env-file"))
    assert env_file.read_text() == f"HF_TOKEN={HF_TOKEN}\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert option(run, "--model") == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert option(run, "--served-model-name") == "deepseek-r1"
    # The model dir is vLLM's (writable) Hugging Face cache; TLS stays read-only.
    assert options(run, "-v") == [f"{host.tmp}/models/deepseek-r1:/root/.cache/huggingface",
                                  f"{host.tmp}/etc/vllm/tls:/tls:ro"]


def test_a_second_run_converges_without_replacing_the_certificate(booted: Host) -> None:
    cert = booted.tmp / "etc/vllm/tls/cert.pem"
    before = cert.read_bytes()
    result = booted.run(settings(booted.tmp))
    assert result.returncode == 0, result.stderr
    assert cert.read_bytes() == before
    assert len(booted.calls("docker", "run")) == 2
    assert len(booted.calls("docker", "rm", "-f", "vllm")) == 2  # the old container is replaced


def test_imds_unreachable_falls_back_to_the_host_name(host: Host) -> None:
    result = host.run(settings(host.tmp), IMDS_ENDPOINT="http://unreachable.test")
    assert result.returncode == 0, result.stderr
    subject = subprocess.run(["openssl", "x509", "-in", str(host.tmp / "etc/vllm/tls/cert.pem"),
                              "-noout", "-subject"], check=True, capture_output=True, text=True).stdout
    assert subprocess.run(["hostname", "-f"], capture_output=True, text=True).stdout.strip() in subject


# --- failures ------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["AWS_REGION", "LOG_GROUP", "ASG_NAME", "SERVED_MODEL_NAME",
                                  "MAX_MODEL_LEN", "VLLM_IMAGE"])
def test_a_missing_required_setting_stops_the_boot_naming_it(host: Host, name: str) -> None:
    text = "\n".join(line for line in render_user_data(settings(host.tmp)).splitlines()
                     if not line.startswith(f"export {name}="))
    result = host.run(script=text)
    assert result.returncode != 0
    assert f"{name}: {name} is required" in result.stderr
    assert not host.log.exists()  # nothing ran


@pytest.mark.parametrize("extra, message", [
    ("export HF_MODEL_ID=org/m", "not both"),
    ("unset WEIGHTS_S3_URI", "set exactly one weights source"),
    ("export WEIGHTS_S3_URI=https://bucket/x", "must look like s3://"),
    ("export MAX_MODEL_LEN=8k", "MAX_MODEL_LEN must be a positive integer"),
])
def test_bad_weight_sources_and_values_stop_the_boot_with_a_clear_message(host: Host, extra, message) -> None:
    preamble, body = render_user_data(settings(host.tmp)).split("\n# Boot script", 1)
    result = host.run(script=f"{preamble}\n{extra}\n# Boot script{body}")
    assert result.returncode == 1
    assert message in result.stderr
    assert not host.log.exists()


def test_readiness_wait_gives_up_after_the_timeout(host: Host) -> None:
    # bash's SECONDS counts whole seconds, so a 3 s timeout waits more than 2 s: time for
    # several 0.2 s polls even when each stand-in curl is slow on a loaded machine.
    s = dataclasses.replace(settings(host.tmp), ready_timeout_seconds=3)
    result = host.run(s, STANDIN_HEALTH="503", READY_POLL_SECONDS="0.2")
    assert result.returncode == 1
    assert "vLLM did not answer 200 on /health within 3s" in result.stderr
    health = host.calls("curl", "-skf")
    assert 2 <= len(health) <= 20 and health[0][-1] == "https://localhost:50051/health"
    assert host.calls("docker", "logs")  # the container's last lines go to the boot log



# --- launch lifecycle hook, warm pool, secrets, retries ------------------------------

def hooked(tmp: Path, **overrides) -> HostSettings:
    return settings(tmp, lifecycle_hook_name=HOOK, **overrides)


def hook_results(host: Host) -> list[str]:
    return [option(a, "--lifecycle-action-result") for a in host.calls("aws", "autoscaling", "complete-lifecycle-action")]


def lines_with(text: str, *words: str) -> list[str]:
    return [line for line in text.splitlines() if all(w in line for w in words)]


def test_the_launch_hook_is_completed_with_continue_once_health_answers(host: Host) -> None:
    result = host.run(hooked(host.tmp))
    assert result.returncode == 0, result.stderr
    assert host.calls("aws", "autoscaling") == [[
        "aws", "autoscaling", "complete-lifecycle-action", "--region", "eu-west-2",
        "--auto-scaling-group-name", "llmlite-dev-gpu", "--lifecycle-hook-name", HOOK,
        "--instance-id", INSTANCE_ID, "--lifecycle-action-result", "CONTINUE"]]
    lines = host.log.read_text().splitlines()
    last_health = max(i for i, line in enumerate(lines) if line.startswith("curl") and "/health" in line)
    assert last_health < next(i for i, line in enumerate(lines) if "complete-lifecycle-action" in line)


def test_a_model_that_never_answers_abandons_the_launch(host: Host) -> None:
    result = host.run(hooked(host.tmp, ready_timeout_seconds=1), STANDIN_HEALTH="503", READY_POLL_SECONDS="0.2")
    assert result.returncode == 1
    assert hook_results(host) == ["ABANDON"]


def test_an_empty_weights_location_refuses_to_serve_and_abandons_with_one_clear_line(host: Host) -> None:
    result = host.run(hooked(host.tmp), STANDIN_EMPTY_WEIGHTS="1")
    assert result.returncode == 1
    (error,) = lines_with(result.stderr, "ERROR")
    assert "s3://llmlite-dev-models/deepseek-r1/" in error and "config.json" in error
    assert hook_results(host) == ["ABANDON"]
    assert host.calls("docker", "pull") == [] and host.calls("docker", "run") == []


def test_a_broken_metrics_agent_does_not_stop_the_model(host: Host) -> None:
    result = host.run(hooked(host.tmp), STANDIN_AGENT_BROKEN="1")
    assert result.returncode == 0, result.stderr
    assert len(host.calls("amazon-cloudwatch-agent-ctl")) == 5  # retried, then given up
    assert len(lines_with(result.stderr, "WARNING", "CloudWatch agent")) == 1
    assert len(host.calls("docker", "run")) == 1
    assert hook_results(host) == ["CONTINUE"]


def test_transient_failures_of_installs_sync_and_pull_are_retried(host: Host) -> None:
    (host.standins / "amazon-cloudwatch-agent-ctl").unlink()
    result = host.run(hooked(host.tmp), STANDIN_DNF_FAILS="1", STANDIN_S3_FAILS="2", STANDIN_PULL_FAILS="1")
    assert result.returncode == 0, result.stderr
    assert (len(host.calls("dnf")), len(host.calls("aws", "s3", "sync")), len(host.calls("docker", "pull"))) == (2, 3, 2)
    assert len(lines_with(result.stderr, "attempt 1 failed")) == 3
    assert hook_results(host) == ["CONTINUE"]


def test_a_step_that_keeps_failing_gives_up_and_abandons(host: Host) -> None:
    result = host.run(hooked(host.tmp), STANDIN_PULL_FAILS="99", RETRY_ATTEMPTS="3")
    assert result.returncode != 0
    assert len(host.calls("docker", "pull")) == 3
    assert lines_with(result.stderr, "giving up after 3 attempts: docker pull")
    assert host.calls("docker", "run") == [] and hook_results(host) == ["ABANDON"]


def test_docker_is_started_before_logging_in_to_the_registry(host: Host) -> None:
    # the docker stand-in refuses a login while the daemon is not running, like the real client
    result = host.run(settings(host.tmp, vllm_image=ECR_IMAGE))
    assert result.returncode == 0, result.stderr
    assert host.one("systemctl", "enable", "--now", "docker")
    assert lines_with(result.stderr, "attempt 1 failed") == []


def test_the_model_api_key_reaches_vllm_only_through_the_private_env_file(host: Host) -> None:
    result = host.run(settings(host.tmp, api_key_secret_arn=API_KEY_ARN))
    assert result.returncode == 0, result.stderr
    assert host.one("aws", "secretsmanager") == [
        "aws", "secretsmanager", "get-secret-value", "--region", "eu-west-2", "--secret-id", API_KEY_ARN,
        "--query", "SecretString", "--output", "text"]
    run = host.one("docker", "run")
    env_file = Path(option(run, "--env-file"))
    assert env_file.read_text() == f"VLLM_API_KEY={API_KEY}\n"  # vLLM's --api-key, from the environment
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert "--api-key" not in run
    for text in (host.log.read_text(), result.stdout + result.stderr, (host.tmp / "etc/vllm/boot.env").read_text()):
        assert API_KEY not in text


def as_environment(host_settings: HostSettings) -> dict[str, str]:
    """The preamble's exports, as a process environment."""
    return {f.name.upper(): str(getattr(host_settings, f.name)) for f in dataclasses.fields(host_settings)
            if getattr(host_settings, f.name) is not None}


def test_a_warm_pool_host_prepares_without_serving_then_serves_on_its_next_boot(host: Host) -> None:
    """FACT-4: cloud-init runs user data once; the unit runs the script on the boot out of the pool."""
    first = host.run(script=SCRIPT.read_text(), STANDIN_TARGET_STATE="Warmed:Stopped",
                     **as_environment(hooked(host.tmp, api_key_secret_arn=API_KEY_ARN)))
    assert first.returncode == 0, first.stderr
    assert len(host.calls("aws", "s3", "sync")) == 1 and len(host.calls("docker", "pull")) == 1
    assert host.calls("docker", "run") == []  # stopped by the group as soon as the hook completes
    assert hook_results(host) == ["CONTINUE"]
    assert host.one("systemctl", "enable", "gpu-host-boot.service")  # enabled, not started now
    unit = (host.tmp / "systemd/gpu-host-boot.service").read_text()
    assert "WantedBy=multi-user.target" in unit and f"StandardOutput=append:{'/var/log/gpu-host-boot.log'}" in unit
    (exec_start,) = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    assert API_KEY not in (host.tmp / "etc/vllm/boot.env").read_text()

    host.log.unlink()  # the next boot: only the unit, with none of the preamble's settings in its environment
    second = subprocess.run(shlex.split(exec_start), env={**host.env, "STANDIN_TARGET_STATE": "InService"},
                            cwd=host.tmp, capture_output=True, text=True, timeout=20)
    assert second.returncode == 0, second.stderr
    run = host.one("docker", "run")
    assert option(run, "--served-model-name") == "deepseek-r1"
    assert Path(option(run, "--env-file")).read_text() == f"VLLM_API_KEY={API_KEY}\n"
    assert hook_results(host) == ["CONTINUE"]


def test_a_rerun_with_no_pending_hook_serves_and_only_warns(host: Host) -> None:
    result = host.run(hooked(host.tmp), STANDIN_NO_PENDING_HOOK="1")
    assert result.returncode == 0, result.stderr
    assert len(host.calls("aws", "autoscaling")) == 3
    assert len(lines_with(result.stderr, "WARNING", "lifecycle hook")) == 1


# --- draining: termination, Spot interruption ------------------------------------------

def draining(tmp: Path, **overrides) -> HostSettings:
    return settings(tmp, lifecycle_hook_name=HOOK, termination_hook_name=DRAIN_HOOK,
                    target_group_arn=TARGET_GROUP_ARN, **overrides)


def run_watcher(host: Host, timeout: float = 20, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed watcher, as systemd runs it (none of the preamble's settings in its environment)."""
    host.log.unlink(missing_ok=True)
    return subprocess.run([str(host.tmp / "bin/gpu-host-drain")], env={**host.env, "POLL_SECONDS": "0.05", **env},
                          cwd=host.tmp, capture_output=True, text=True, timeout=timeout)


def notice_in(seconds: int) -> str:
    at = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return json.dumps({"action": "terminate", "time": at.strftime("%Y-%m-%dT%H:%M:%SZ")})


def position(host: Host, *words: str) -> int:
    lines = host.log.read_text().splitlines()
    return next(i for i, line in enumerate(lines) if all(w in line for w in words))


@pytest.fixture
def serving(host: Host) -> Host:
    result = host.run(draining(host.tmp))
    assert result.returncode == 0, result.stderr
    return host


def test_the_drain_watcher_starts_once_the_model_serves_and_passes_shellcheck(serving: Host) -> None:
    assert position(serving, "curl", "/health") < position(serving, "systemctl", "enable", "--now",
                                                            "gpu-host-drain.service")
    assert position(serving, "systemctl", "enable", "--now", "gpu-host-drain.service") < position(
        serving, "complete-lifecycle-action")
    unit = (serving.tmp / "systemd/gpu-host-drain.service").read_text()
    assert f"ExecStart={serving.tmp}/bin/gpu-host-drain" in unit and "Restart=on-failure" in unit
    check = subprocess.run(["shellcheck", "--severity=style", str(serving.tmp / "bin/gpu-host-drain")],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    boot_env = (serving.tmp / "etc/vllm/boot.env").read_text()  # later boots start it as well
    assert f"export TERMINATION_HOOK_NAME={DRAIN_HOOK}" in boot_env and TARGET_GROUP_ARN in boot_env


def test_a_warm_pool_host_does_not_watch_until_it_serves(host: Host) -> None:
    result = host.run(draining(host.tmp), STANDIN_TARGET_STATE="Warmed:Stopped")
    assert result.returncode == 0, result.stderr
    assert host.calls("systemctl", "enable", "--now", "gpu-host-drain.service") == []


def test_a_terminating_host_leaves_the_target_group_waits_for_requests_then_completes_the_hook(
        serving: Host) -> None:
    result = run_watcher(serving, STANDIN_TARGET_STATE="Terminated", STANDIN_BUSY_POLLS="3")
    assert result.returncode == 0, result.stderr
    assert serving.one("aws", "elbv2") == [
        "aws", "elbv2", "deregister-targets", "--region", "eu-west-2", "--target-group-arn", TARGET_GROUP_ARN,
        "--targets", f"Id={INSTANCE_ID}"]
    scrapes = [a for a in serving.calls("curl") if a[-1] == "https://localhost:50051/metrics"]
    assert len(scrapes) == 4  # three busy, then idle
    assert serving.one("aws", "autoscaling") == [
        "aws", "autoscaling", "complete-lifecycle-action", "--region", "eu-west-2",
        "--auto-scaling-group-name", "llmlite-dev-gpu", "--lifecycle-hook-name", DRAIN_HOOK,
        "--instance-id", INSTANCE_ID, "--lifecycle-action-result", "CONTINUE"]
    assert (position(serving, "elbv2", "deregister-targets") < position(serving, "curl", "/metrics")
            and max(i for i, line in enumerate(serving.log.read_text().splitlines()) if "/metrics" in line)
            < position(serving, "complete-lifecycle-action"))


def test_a_spot_notice_drains_at_once_and_completes_the_hook_when_the_group_terminates(serving: Host) -> None:
    result = run_watcher(serving, STANDIN_SPOT_NOTICE=notice_in(120), STANDIN_BUSY_POLLS="2",
                         STANDIN_INSERVICE_POLLS="6", STANDIN_TARGET_STATE="Terminated")
    assert result.returncode == 0, result.stderr
    assert "Spot interruption notice" in result.stderr
    assert serving.one("aws", "elbv2")[2] == "deregister-targets"
    assert option(serving.one("aws", "autoscaling"), "--lifecycle-hook-name") == DRAIN_HOOK


def test_requests_still_running_at_the_notice_are_left_before_the_instance_stops(serving: Host) -> None:
    start = time.monotonic()
    result = run_watcher(serving, STANDIN_SPOT_NOTICE=notice_in(17), NOTICE_MARGIN_SECONDS="15",
                         STANDIN_BUSY_POLLS="1000000")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 10  # the deadline is the notice's time less the margin
    assert lines_with(result.stderr, "WARNING", "still in flight at the deadline")
    assert serving.calls("aws", "autoscaling") == []  # the group never started terminating it


def test_an_in_service_host_is_left_alone(serving: Host) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        run_watcher(serving, timeout=1)
    assert serving.calls("aws") == []
