"""User data of a GPU model host: typed settings in, a bash boot script out.

The script itself is `scripts/gpu_host.sh` (see its header). Settings become
`export NAME=value` lines in front of it, so the script reads nothing but its
environment. Values may be Terraform tokens; they are quoted, never escaped.
"""

from __future__ import annotations

import base64
import gzip
import shlex
from dataclasses import dataclass, fields
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "scripts" / "gpu_host.sh"


@dataclass(frozen=True)
class HostSettings:
    """What one GPU host needs to serve a model. Each set field is exported as its
    upper-cased name (`aws_region` -> `AWS_REGION`); `None` leaves the script's default."""

    aws_region: str
    log_group: str
    asg_name: str
    served_model_name: str
    max_model_len: int
    vllm_image: str
    weights_s3_uri: str | None = None  # s3://bucket/prefix/ (exactly one weights source)
    hf_model_id: str | None = None  # Hugging Face model id
    hf_token_secret_arn: str | None = None  # Secrets Manager secret holding the HF token
    api_key_secret_arn: str | None = None  # secret holding the key vLLM requires on /v1/*
    lifecycle_hook_name: str | None = None  # launch hook the script completes (CONTINUE/ABANDON)
    # The drain watcher: the termination hook it completes once in-flight requests are done,
    # and the target group it leaves at a Spot interruption notice.
    termination_hook_name: str | None = None
    target_group_arn: str | None = None
    drain_timeout_seconds: int | None = None  # [180] longest wait for in-flight requests
    metrics_namespace: str = "CWAgent"
    gpu_memory_utilization: float = 0.90
    ready_timeout_seconds: int = 900
    # Path overrides; the script's production defaults in brackets.
    config_dir: str | None = None  # [/etc/vllm]
    tls_dir: str | None = None  # [$CONFIG_DIR/tls]
    model_dir: str | None = None  # [/opt/models]
    cw_agent_config: str | None = None  # [/opt/aws/amazon-cloudwatch-agent/etc/gpu-host.json]
    systemd_dir: str | None = None  # [/etc/systemd/system]
    bin_dir: str | None = None  # [/usr/local/bin]
    boot_log: str | None = None  # [/var/log/gpu-host-boot.log] later boots' log, shipped by the agent

    def __post_init__(self) -> None:
        if (self.weights_s3_uri is None) == (self.hf_model_id is None):
            raise ValueError("set exactly one weights source: weights_s3_uri or hf_model_id")
        if self.hf_token_secret_arn is not None and self.hf_model_id is None:
            raise ValueError("hf_token_secret_arn is only used with hf_model_id")
        if self.max_model_len <= 0:
            raise ValueError(f"max_model_len must be positive, got {self.max_model_len}")
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        if self.drain_timeout_seconds is not None and self.drain_timeout_seconds <= 0:
            raise ValueError(f"drain_timeout_seconds must be positive, got {self.drain_timeout_seconds}")
        if self.ready_timeout_seconds <= 0:
            raise ValueError(f"ready_timeout_seconds must be positive, got {self.ready_timeout_seconds}")


def preamble(settings: HostSettings) -> str:
    """`#!/bin/bash` and one `export NAME=<quoted value>` line per set field."""
    lines = ["#!/bin/bash"]
    for field in fields(settings):
        value = getattr(settings, field.name)
        if value is not None:
            lines.append(f"export {field.name.upper()}={shlex.quote(str(value))}")
    return "\n".join(lines) + "\n"


def script_body() -> str:
    """The boot script without its shebang line."""
    shebang, _, body = SCRIPT.read_text().partition("\n")
    assert shebang.startswith("#!"), f"{SCRIPT} must start with a shebang"
    return body


def render_user_data(settings: HostSettings) -> str:
    """The user data as the instance runs it."""
    return preamble(settings) + script_body()


INSTALLED_SCRIPT = "/usr/local/sbin/gpu-host-boot.sh"


def packed_user_data(settings: HostSettings) -> str:
    """User data for a launch template: the preamble, then the script body gzipped and base64
    encoded (deterministically) and unpacked on the host.

    The packed body holds no `${` that Terraform or cdktn would read as an interpolation, and
    stays far below EC2's 16 KB user-data limit."""
    packed = base64.b64encode(gzip.compress(SCRIPT.read_bytes(), compresslevel=9, mtime=0)).decode()
    lines = [packed[i:i + 76] for i in range(0, len(packed), 76)]
    return (preamble(settings)
            + f"base64 -d <<'PACKED' | gunzip > {INSTALLED_SCRIPT}\n" + "\n".join(lines) + "\nPACKED\n"
            + f"chmod 700 {INSTALLED_SCRIPT}\nexec {INSTALLED_SCRIPT}\n")
