#!/bin/bash
# Boot script of a GPU model host (Deep Learning Base GPU AMI, Amazon Linux 2023).
# Writes a self-signed TLS certificate, fetches the model weights, runs vLLM's
# OpenAI-compatible server in Docker on port 50051 (HTTPS), waits until it is
# healthy, and ships GPU metrics, logs and vLLM's queue depth to CloudWatch.
# It completes the group's launch lifecycle hook: CONTINUE once /health answers
# (only then does the host join the target group), ABANDON when the boot fails.
# A host bound for the warm pool fetches weights and image, completes the hook
# and is stopped; a systemd unit runs this script again on every later boot,
# when the host leaves the pool and serves.
# A serving host runs a drain watcher: when the group terminates it (or returns it
# to the warm pool) or a Spot interruption notice arrives, the host leaves its
# target group, waits for in-flight requests (within the notice) and completes
# the group's termination hook.
# Settings come only from environment variables (exported by the user data
# preamble). Safe to run again: every step converges on the same state.
set -euo pipefail

# --- settings ---------------------------------------------------------------
: "${AWS_REGION:?AWS_REGION is required (region of the log group and the metrics)}"
: "${LOG_GROUP:?LOG_GROUP is required (CloudWatch log group for vLLM and boot logs)}"
: "${ASG_NAME:?ASG_NAME is required (Auto Scaling group name, the metrics dimension)}"
: "${SERVED_MODEL_NAME:?SERVED_MODEL_NAME is required (model name clients ask for)}"
: "${MAX_MODEL_LEN:?MAX_MODEL_LEN is required (context length in tokens)}"
: "${VLLM_IMAGE:?VLLM_IMAGE is required (pinned vLLM OpenAI server image)}"
WEIGHTS_S3_URI=${WEIGHTS_S3_URI:-}
HF_MODEL_ID=${HF_MODEL_ID:-}
HF_TOKEN_SECRET_ARN=${HF_TOKEN_SECRET_ARN:-}
API_KEY_SECRET_ARN=${API_KEY_SECRET_ARN:-}
LIFECYCLE_HOOK_NAME=${LIFECYCLE_HOOK_NAME:-}
TERMINATION_HOOK_NAME=${TERMINATION_HOOK_NAME:-}
TARGET_GROUP_ARN=${TARGET_GROUP_ARN:-}
DRAIN_TIMEOUT_SECONDS=${DRAIN_TIMEOUT_SECONDS:-180}
METRICS_NAMESPACE=${METRICS_NAMESPACE:-CWAgent}
GPU_MEMORY_UTILIZATION=${GPU_MEMORY_UTILIZATION:-0.90}
READY_TIMEOUT_SECONDS=${READY_TIMEOUT_SECONDS:-900}
READY_POLL_SECONDS=${READY_POLL_SECONDS:-5}
RETRY_ATTEMPTS=${RETRY_ATTEMPTS:-5}
RETRY_DELAY_SECONDS=${RETRY_DELAY_SECONDS:-10}
IMDS_ENDPOINT=${IMDS_ENDPOINT:-http://169.254.169.254}
# Paths (production defaults; tests point them at a temporary directory).
# Weights stay on the EBS root volume so warm-pool stop/start keeps them.
CONFIG_DIR=${CONFIG_DIR:-/etc/vllm}
TLS_DIR=${TLS_DIR:-$CONFIG_DIR/tls}
MODEL_DIR=${MODEL_DIR:-/opt/models}
CW_AGENT_CONFIG=${CW_AGENT_CONFIG:-/opt/aws/amazon-cloudwatch-agent/etc/gpu-host.json}
SYSTEMD_DIR=${SYSTEMD_DIR:-/etc/systemd/system}
BIN_DIR=${BIN_DIR:-/usr/local/bin}
BOOT_LOG=${BOOT_LOG:-/var/log/gpu-host-boot.log}
PORT=50051
export AWS_DEFAULT_REGION=$AWS_REGION
PATH=$PATH:/opt/aws/amazon-cloudwatch-agent/bin

log() { printf '%s gpu-host: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# retry CMD...: run CMD up to RETRY_ATTEMPTS times, waiting longer after each
# failure (registries, S3 and package mirrors fail transiently at boot).
retry() {
  local attempt=1
  until "$@"; do
    if ((attempt >= RETRY_ATTEMPTS)); then
      log "giving up after $attempt attempts: $1 ${2:-}"
      return 1
    fi
    log "attempt $attempt failed: $1 ${2:-}; retrying"
    sleep $((RETRY_DELAY_SECONDS * attempt))
    attempt=$((attempt + 1))
  done
}

if [[ -n $WEIGHTS_S3_URI && -n $HF_MODEL_ID ]]; then
  die "set exactly one weights source: WEIGHTS_S3_URI or HF_MODEL_ID, not both"
elif [[ -z $WEIGHTS_S3_URI && -z $HF_MODEL_ID ]]; then
  die "set exactly one weights source: WEIGHTS_S3_URI (s3://bucket/prefix/) or HF_MODEL_ID"
fi
if [[ -n $WEIGHTS_S3_URI && $WEIGHTS_S3_URI != s3://* ]]; then
  die "WEIGHTS_S3_URI must look like s3://bucket/prefix/, got '$WEIGHTS_S3_URI'"
fi
if [[ -n $HF_TOKEN_SECRET_ARN && -z $HF_MODEL_ID ]]; then
  die "HF_TOKEN_SECRET_ARN is only used with HF_MODEL_ID"
fi
[[ $MAX_MODEL_LEN =~ ^[1-9][0-9]*$ ]] || die "MAX_MODEL_LEN must be a positive integer"
[[ $READY_TIMEOUT_SECONDS =~ ^[0-9]+$ ]] || die "READY_TIMEOUT_SECONDS must be a whole number"
[[ $RETRY_ATTEMPTS =~ ^[1-9][0-9]*$ ]] || die "RETRY_ATTEMPTS must be a positive integer"
[[ $DRAIN_TIMEOUT_SECONDS =~ ^[1-9][0-9]*$ ]] || die "DRAIN_TIMEOUT_SECONDS must be a positive integer"

# --- instance identity (IMDSv2) --------------------------------------------
imds() {
  local token
  token=$(curl -sf --max-time 5 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
    "$IMDS_ENDPOINT/latest/api/token") || return 1
  curl -sf --max-time 5 -H "X-aws-ec2-metadata-token: $token" \
    "$IMDS_ENDPOINT/latest/meta-data/$1"
}
PRIVATE_DNS=$(imds local-hostname || hostname -f)
INSTANCE_ID=$(imds instance-id || hostname -s)
# Where Auto Scaling is taking this host: InService, or Warmed:Stopped (and the
# like) while it is prepared for the warm pool, which stops it once the hook is
# complete. Outside a group (or without IMDS) it serves.
TARGET_STATE=$(imds autoscaling/target-lifecycle-state || echo InService)
log "instance $INSTANCE_ID ($PRIVATE_DNS), target state $TARGET_STATE"

# --- launch lifecycle hook --------------------------------------------------
# The group keeps the host out of service (and out of the target group) until
# the hook is completed; its default result, on timeout, is ABANDON.
complete_hook() {
  [[ -n $LIFECYCLE_HOOK_NAME ]] || return 0
  if RETRY_ATTEMPTS=3 retry aws autoscaling complete-lifecycle-action --region "$AWS_REGION" \
    --auto-scaling-group-name "$ASG_NAME" --lifecycle-hook-name "$LIFECYCLE_HOOK_NAME" \
    --instance-id "$INSTANCE_ID" --lifecycle-action-result "$1"; then
    log "lifecycle hook $LIFECYCLE_HOOK_NAME completed with $1"
  else
    # No pending action (a re-run on a host already in service) or no access.
    log "WARNING: could not complete lifecycle hook $LIFECYCLE_HOOK_NAME with $1"
  fi
}
HOOK_COMPLETED=
on_exit() {
  local status=$?
  if ((status != 0)) && [[ -z $HOOK_COMPLETED ]]; then
    HOOK_COMPLETED=1
    complete_hook ABANDON
  fi
}
trap on_exit EXIT

# --- TLS: self-signed certificate for the ALB -> instance hop ---------------
# The ALB does not verify target certificates; the key never leaves the host.
mkdir -p "$TLS_DIR" "$CONFIG_DIR"
if [[ ! -s $TLS_DIR/cert.pem || ! -s $TLS_DIR/key.pem ]]; then
  log "writing self-signed certificate for $PRIVATE_DNS"
  (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 3650 \
    -subj "/CN=$PRIVATE_DNS" -addext "subjectAltName=DNS:$PRIVATE_DNS,DNS:localhost" \
    -keyout "$TLS_DIR/key.pem" -out "$TLS_DIR/cert.pem" 2>/dev/null)
fi
chmod 600 "$TLS_DIR/key.pem"
chmod 644 "$TLS_DIR/cert.pem"

# --- CloudWatch agent: GPU metrics and boot logs ----------------------------
# Started early so a failed boot still ships its logs. Metrics are not worth an
# outage: if the agent cannot be installed or started, the model serves anyway.
agent_config() {
  cat <<EOF
{
  "agent": {"metrics_collection_interval": 60},
  "metrics": {
    "namespace": "$METRICS_NAMESPACE",
    "append_dimensions": {
      "AutoScalingGroupName": "\${aws:AutoScalingGroupName}",
      "InstanceId": "\${aws:InstanceId}"
    },
    "aggregation_dimensions": [["AutoScalingGroupName"]],
    "metrics_collected": {
      "nvidia_gpu": {
        "measurement": ["utilization_gpu", "utilization_memory", "memory_used",
                        "memory_total", "temperature_gpu", "power_draw"],
        "metrics_collection_interval": 60
      }
    }
  },
  "logs": {
    "logs_collected": {
      "files": {
        "collect_list": [
          {"file_path": "/var/log/cloud-init-output.log",
           "log_group_name": "$LOG_GROUP",
           "log_stream_name": "{instance_id}/cloud-init-output"},
          {"file_path": "$BOOT_LOG",
           "log_group_name": "$LOG_GROUP",
           "log_stream_name": "{instance_id}/boot"}
        ]
      }
    }
  }
}
EOF
}
start_agent() {
  if ! command -v amazon-cloudwatch-agent-ctl >/dev/null; then
    log "installing the CloudWatch agent"
    retry dnf install -y amazon-cloudwatch-agent || return 1
  fi
  mkdir -p "$(dirname "$CW_AGENT_CONFIG")" || return 1
  agent_config >"$CW_AGENT_CONFIG" || return 1
  retry amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s -c "file:$CW_AGENT_CONFIG"
}
if ! start_agent; then
  log "WARNING: CloudWatch agent not running, so no GPU metrics or boot logs from this host; serving anyway"
fi

# --- vLLM queue depth -> CloudWatch, every minute ---------------------------
# One value per instance with only the ASG dimension, so a target-tracking
# policy or an alarm can use it directly (Average = waiting requests per host).
mkdir -p "$BIN_DIR" "$SYSTEMD_DIR"
{
  echo '#!/bin/bash'
  echo '# Publish vLLM waiting requests (summed over label sets) to CloudWatch.'
  echo 'set -euo pipefail'
  printf 'AWS_REGION=%q\nASG_NAME=%q\nMETRICS_NAMESPACE=%q\n' \
    "$AWS_REGION" "$ASG_NAME" "$METRICS_NAMESPACE"
  cat <<'EOF'
METRICS_URL=${METRICS_URL:-https://localhost:50051/metrics}
if ! metrics=$(curl -skf --max-time 10 "$METRICS_URL"); then
  echo "vLLM metrics not answering at $METRICS_URL; nothing published" >&2
  exit 0
fi
value=$(awk '/^vllm:num_requests_waiting[{ ]/ { sum += $NF } END { printf "%d", sum }' <<<"$metrics")
aws cloudwatch put-metric-data --region "$AWS_REGION" --namespace "$METRICS_NAMESPACE" \
  --metric-name vllm_num_requests_waiting --unit Count \
  --dimensions "AutoScalingGroupName=$ASG_NAME" --value "$value"
EOF
} >"$BIN_DIR/vllm-queue-depth"
chmod 755 "$BIN_DIR/vllm-queue-depth"
cat >"$SYSTEMD_DIR/vllm-queue-depth.service" <<EOF
[Unit]
Description=Publish vLLM queue depth to CloudWatch
After=network-online.target docker.service

[Service]
Type=oneshot
ExecStart=$BIN_DIR/vllm-queue-depth
EOF
cat >"$SYSTEMD_DIR/vllm-queue-depth.timer" <<'EOF'
[Unit]
Description=Publish vLLM queue depth to CloudWatch every minute

[Timer]
OnBootSec=60
OnUnitActiveSec=60
AccuracySec=5

[Install]
WantedBy=timers.target
EOF

# --- drain watcher: leave service without cutting requests -------------------
# Polls IMDS every few seconds (AWS's advice for Spot notices). The group
# deregisters a host it terminates and waits out the ALB's deregistration delay
# before the termination hook; a Spot notice gives two minutes, so the watcher
# deregisters the host itself. Started only once the model serves (below).
{
  echo '#!/bin/bash'
  echo '# Drain this GPU host when it leaves service, then complete the termination hook.'
  echo 'set -uo pipefail'
  printf 'AWS_REGION=%q\nASG_NAME=%q\nTERMINATION_HOOK_NAME=%q\nTARGET_GROUP_ARN=%q\nDRAIN_TIMEOUT_SECONDS=%q\n' \
    "$AWS_REGION" "$ASG_NAME" "$TERMINATION_HOOK_NAME" "$TARGET_GROUP_ARN" "$DRAIN_TIMEOUT_SECONDS"
  cat <<'EOF'
IMDS_ENDPOINT=${IMDS_ENDPOINT:-http://169.254.169.254}
METRICS_URL=${METRICS_URL:-https://localhost:50051/metrics}
POLL_SECONDS=${POLL_SECONDS:-5}
NOTICE_MARGIN_SECONDS=${NOTICE_MARGIN_SECONDS:-15}
log() { printf '%s gpu-host-drain: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
imds() {
  local token
  token=$(curl -sf --max-time 2 -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" \
    "$IMDS_ENDPOINT/latest/api/token") || return 1
  curl -sf --max-time 2 -H "X-aws-ec2-metadata-token: $token" "$IMDS_ENDPOINT/latest/meta-data/$1"
}
# Requests vLLM is running or holding in its queue (0 once it no longer answers).
in_flight() {
  local metrics
  metrics=$(curl -skf --max-time 5 "$METRICS_URL") || { echo 0; return; }
  awk '/^vllm:num_requests_(running|waiting)[{ ]/ { sum += $NF } END { printf "%d", sum }' <<<"$metrics"
}
lifecycle_state() { imds autoscaling/target-lifecycle-state || echo InService; }

instance_id=$(imds instance-id) || { log "no instance id from IMDS"; exit 1; }
# Leaving: a Spot notice (404 until EC2 issues one), or the group moving the host
# out of service (Terminated, or back to the warm pool).
until notice=$(imds spot/instance-action) || [[ $(lifecycle_state) != InService ]]; do
  sleep "$POLL_SECONDS"
done
deadline=$((SECONDS + DRAIN_TIMEOUT_SECONDS))
if [[ -n ${notice:-} ]]; then
  # {"action": "terminate", "time": "2025-01-01T12:02:00Z"}: finish before that time.
  when=$(sed -n 's/.*"time" *: *"\([^"]*\)".*/\1/p' <<<"$notice")
  if at=$(date -u -d "$when" +%s 2>/dev/null); then
    left=$((at - $(date -u +%s) - NOTICE_MARGIN_SECONDS))
    ((left >= DRAIN_TIMEOUT_SECONDS)) || deadline=$((SECONDS + left))
  fi
  log "Spot interruption notice: $notice"
else
  log "leaving service: target lifecycle state $(lifecycle_state)"
fi
# Stop admitting: the ALB sends no new request to a deregistered target and lets
# the running ones finish (the group does the same when it terminates a host).
if [[ -n $TARGET_GROUP_ARN ]] && ! aws elbv2 deregister-targets --region "$AWS_REGION" \
  --target-group-arn "$TARGET_GROUP_ARN" --targets "Id=$instance_id"; then
  log "WARNING: could not leave the target group; requests may still arrive"
fi
while n=$(in_flight) && ((n > 0)); do
  if ((SECONDS >= deadline)); then
    log "WARNING: $n requests still in flight at the deadline; leaving anyway"
    break
  fi
  sleep "$POLL_SECONDS"
done
log "drained"
# After a Spot notice the group may act only now: wait for it until the deadline.
state=$(lifecycle_state)
while [[ $state == InService ]] && ((SECONDS < deadline)); do
  sleep "$POLL_SECONDS"
  state=$(lifecycle_state)
done
if [[ -n $TERMINATION_HOOK_NAME && $state != InService ]]; then
  aws autoscaling complete-lifecycle-action --region "$AWS_REGION" --auto-scaling-group-name "$ASG_NAME" \
    --lifecycle-hook-name "$TERMINATION_HOOK_NAME" --instance-id "$instance_id" \
    --lifecycle-action-result CONTINUE ||
    log "WARNING: could not complete the termination hook; the group continues at its timeout"
fi
EOF
} >"$BIN_DIR/gpu-host-drain"
chmod 755 "$BIN_DIR/gpu-host-drain"
cat >"$SYSTEMD_DIR/gpu-host-drain.service" <<EOF
[Unit]
Description=Drain the model host when it leaves service (termination, Spot notice)
After=network-online.target docker.service

[Service]
Type=simple
ExecStart=$BIN_DIR/gpu-host-drain
Restart=on-failure
RestartSec=5
StandardOutput=append:$BOOT_LOG
StandardError=append:$BOOT_LOG

[Install]
WantedBy=multi-user.target
EOF

# --- later boots: a host leaving the warm pool, or a reboot -----------------
# cloud-init runs user data on the first boot only; this unit runs the script,
# with the settings of this run, on every later boot.
SELF=$(readlink -f "$0")
(
  umask 077
  for name in AWS_REGION LOG_GROUP ASG_NAME SERVED_MODEL_NAME MAX_MODEL_LEN VLLM_IMAGE \
    WEIGHTS_S3_URI HF_MODEL_ID HF_TOKEN_SECRET_ARN API_KEY_SECRET_ARN LIFECYCLE_HOOK_NAME \
    TERMINATION_HOOK_NAME TARGET_GROUP_ARN DRAIN_TIMEOUT_SECONDS METRICS_NAMESPACE \
    GPU_MEMORY_UTILIZATION READY_TIMEOUT_SECONDS CONFIG_DIR TLS_DIR MODEL_DIR \
    CW_AGENT_CONFIG SYSTEMD_DIR BIN_DIR BOOT_LOG; do
    printf 'export %s=%q\n' "$name" "${!name}"
  done
) >"$CONFIG_DIR/boot.env"
cat >"$SYSTEMD_DIR/gpu-host-boot.service" <<EOF
[Unit]
Description=Serve the model again after a restart (warm pool, reboot)
Wants=network-online.target
After=network-online.target docker.service cloud-final.service
ConditionPathExists=$CONFIG_DIR/boot.env

[Service]
Type=oneshot
TimeoutStartSec=infinity
ExecStart=/bin/bash -c '. $CONFIG_DIR/boot.env && exec /bin/bash $SELF'
StandardOutput=append:$BOOT_LOG
StandardError=append:$BOOT_LOG

[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable gpu-host-boot.service # not started: this boot is running the script
if ! systemctl enable --now vllm-queue-depth.timer; then
  log "WARNING: queue-depth timer not running, so no vllm_num_requests_waiting from this host"
fi

# --- model weights ----------------------------------------------------------
WEIGHTS_DIR=$MODEL_DIR/$SERVED_MODEL_NAME
ENV_FILE=$CONFIG_DIR/vllm.env
mkdir -p "$WEIGHTS_DIR"
(umask 077 && : >"$ENV_FILE") && chmod 600 "$ENV_FILE"
if [[ -n $WEIGHTS_S3_URI ]]; then
  log "syncing weights from $WEIGHTS_S3_URI"
  retry aws s3 sync --only-show-errors "$WEIGHTS_S3_URI" "$WEIGHTS_DIR"
  # An empty prefix syncs nothing and "succeeds": refuse here rather than let
  # vLLM fail minutes later with a less obvious error.
  [[ -s $WEIGHTS_DIR/config.json ]] ||
    die "no model at $WEIGHTS_S3_URI (no config.json): upload the model's files there; not starting vLLM"
  MODEL_ARG=/models/$SERVED_MODEL_NAME
  MODEL_MOUNT=$MODEL_DIR:/models:ro
else
  # vLLM downloads from Hugging Face into this directory (its cache) on first
  # start; it has to be writable, and it survives stop/start.
  log "weights come from Hugging Face: $HF_MODEL_ID"
  MODEL_ARG=$HF_MODEL_ID
  MODEL_MOUNT=$WEIGHTS_DIR:/root/.cache/huggingface
fi

# --- secrets, into the container's environment only ---------------------------
# Values go to the mode-600 env file, never onto a command line or into a log.
secret_value() {
  retry aws secretsmanager get-secret-value --region "$AWS_REGION" \
    --secret-id "$1" --query SecretString --output text
}
if [[ -n $HF_TOKEN_SECRET_ARN ]]; then
  hf_token=$(secret_value "$HF_TOKEN_SECRET_ARN") || die "cannot read the Hugging Face token secret"
  printf 'HF_TOKEN=%s\n' "$hf_token" >>"$ENV_FILE"
  unset hf_token
fi
if [[ -n $API_KEY_SECRET_ARN ]]; then
  # vLLM serves /v1/* only to callers sending this key (VLLM_API_KEY is its
  # --api-key); /health and /metrics stay open for the ALB and the timer.
  api_key=$(secret_value "$API_KEY_SECRET_ARN") || die "cannot read the model API key secret"
  printf 'VLLM_API_KEY=%s\n' "$api_key" >>"$ENV_FILE"
  unset api_key
fi

# --- image ------------------------------------------------------------------
# The Docker daemon first: a registry login needs it.
retry systemctl enable --now docker
REGISTRY=${VLLM_IMAGE%%/*}
ecr_login() {
  aws ecr get-login-password --region "$1" | docker login --username AWS --password-stdin "$REGISTRY"
}
if [[ $REGISTRY =~ ^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$ ]]; then
  log "logging in to $REGISTRY"
  retry ecr_login "${BASH_REMATCH[1]}"
fi
retry docker pull "$VLLM_IMAGE"

if [[ $TARGET_STATE == Warmed:* ]]; then
  # Weights and image are on disk; the group stops the host once the hook is
  # complete, and gpu-host-boot.service serves when it starts again.
  HOOK_COMPLETED=1
  complete_hook CONTINUE
  log "prepared for the warm pool ($TARGET_STATE); vLLM starts when the host leaves it"
  exit 0
fi

# --- vLLM server --------------------------------------------------------------
GPUS=$(nvidia-smi --list-gpus 2>/dev/null | wc -l || true)
((GPUS >= 1)) || GPUS=1
log "starting vLLM on $GPUS GPU(s)"
start_vllm() {
  docker rm -f vllm >/dev/null 2>&1 || true # a re-run replaces the container
  docker run -d --name vllm --restart unless-stopped --gpus all --ipc=host \
    -p "$PORT:$PORT" \
    -v "$MODEL_MOUNT" -v "$TLS_DIR:/tls:ro" \
    --env-file "$ENV_FILE" \
    --log-driver awslogs --log-opt "awslogs-region=$AWS_REGION" \
    --log-opt "awslogs-group=$LOG_GROUP" --log-opt "awslogs-stream=$INSTANCE_ID" \
    --log-opt mode=non-blocking --log-opt max-buffer-size=4m \
    "$VLLM_IMAGE" \
    --model "$MODEL_ARG" --served-model-name "$SERVED_MODEL_NAME" \
    --max-model-len "$MAX_MODEL_LEN" --port "$PORT" \
    --ssl-certfile /tls/cert.pem --ssl-keyfile /tls/key.pem \
    --gpu-memory-utilization "$GPU_MEMORY_UTILIZATION" \
    --tensor-parallel-size "$GPUS"
}
retry start_vllm

# --- readiness --------------------------------------------------------------
log "waiting up to ${READY_TIMEOUT_SECONDS}s for https://localhost:$PORT/health"
deadline=$((SECONDS + READY_TIMEOUT_SECONDS))
until curl -skf -o /dev/null --max-time 5 "https://localhost:$PORT/health"; do
  if ((SECONDS >= deadline)); then
    docker logs --tail 50 vllm >&2 || true
    die "vLLM did not answer 200 on /health within ${READY_TIMEOUT_SECONDS}s"
  fi
  sleep "$READY_POLL_SECONDS"
done
log "vLLM is ready: $SERVED_MODEL_NAME on port $PORT"
if ! systemctl enable --now gpu-host-drain.service; then
  log "WARNING: drain watcher not running, so a Spot interruption or scale-in cuts in-flight requests"
fi
HOOK_COMPLETED=1
complete_hook CONTINUE
