"""The platform rides through faults: database blips, deploys, Redis, Bedrock; and key limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import ENVIRONMENTS, Stack
from modules.catalogue.alarms import (BY_NAME, DEPLOY_MAXIMUM_PERCENT, GIB, RESERVED_CONNECTIONS, max_connections,
                                      pool_per_task)
from modules.config import ConfigError, load_environment
from modules.config.settings import Identity, settings_for
from modules.layers.gateway import litellm_config
from modules.layers.observability import ELASTICACHE_EVENTS, RDS_EVENT_CATEGORIES
from test_config import write_env

KEYS = json.loads((Path(__file__).parent / "litellm_config_keys.json").read_text())


def rendered(env_name: str) -> dict:
    env = load_environment(env_name)
    return litellm_config(Identity.of(env), settings_for(env, "gateway"), max_connections(env.data.db_instance_class))


def unknown_keys(config: dict) -> list[str]:
    """Every key of the rendered config the pinned LiteLLM does not read, by its path."""
    bad = [f"/{k}" for k in config if k not in KEYS["top_level"]]
    for section in ("general_settings", "litellm_settings", "router_settings"):
        bad += [f"{section}.{k}" for k in config.get(section, {}) if k not in KEYS[section]]
    settings = config.get("litellm_settings", {})
    for section in ("cache_params", "default_key_generate_params", "upperbound_key_generate_params"):
        bad += [f"litellm_settings.{section}.{k}" for k in settings.get(section, {}) if k not in KEYS[section]]
    bad += [f"router_settings.cache_kwargs.{k}" for k in config["router_settings"].get("cache_kwargs", {})
            if k not in KEYS["cache_params"]]
    for model in config["model_list"]:
        bad += [f"{model['model_name']}.litellm_params.{k}" for k in model["litellm_params"]
                if k not in KEYS["litellm_params"]]
        bad += [f"{model['model_name']}.model_info.{k}" for k in model.get("model_info", {})
                if k not in KEYS["model_info"]]
    return bad


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_rendered_config_uses_only_keys_the_pinned_litellm_reads(env_name: str) -> None:
    env = load_environment(env_name)
    assert env.gateway.image.endswith(f":v{KEYS['litellm_version']}"), "refresh tests/litellm_config_keys.json"
    config = rendered(env_name)
    assert unknown_keys(config) == []
    misspelt = {**config, "general_settings": {**config["general_settings"], "database_conection_pool_limit": 9}}
    assert unknown_keys(misspelt) == ["general_settings.database_conection_pool_limit"]


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_pool_fits_max_connections_at_the_deploy_peak(env_name: str) -> None:
    env = load_environment(env_name)
    general = rendered(env_name)["general_settings"]
    peak_tasks = env.gateway.capacity.max * DEPLOY_MAXIMUM_PERCENT // 100
    assert general["database_connection_pool_limit"] == pool_per_task(max_connections(env.data.db_instance_class),
                                                                       env.gateway.capacity.max)
    assert (general["database_connection_pool_limit"] * peak_tasks + RESERVED_CONNECTIONS
            <= max_connections(env.data.db_instance_class))
    assert general["allow_requests_on_db_unavailable"] is False  # decided: public endpoint (README)
    assert general["maximum_spend_logs_retention_period"] == "90d"


def test_routes_time_out_before_the_alb_and_fall_back() -> None:
    env = load_environment("prod")
    config = rendered("prod")
    for model in config["model_list"]:
        params = model["litellm_params"]
        assert params["timeout"] == params["stream_timeout"] == env.edge.request_timeout_seconds
        assert params["timeout"] < env.edge.idle_timeout_seconds
    assert config["router_settings"]["fallbacks"] == [{"claude-sonnet-4-5": ["claude-haiku-4-5"]},
                                                      {"deepseek-r1-7b": ["claude-haiku-4-5"]}]


def test_self_hosted_route_is_priced_from_the_gpu_host() -> None:
    env = load_environment("prod")
    routes = {m["model_name"]: m["litellm_params"] for m in rendered("prod")["model_list"]}
    per_token = env.llm.host_cost_per_hour_usd / (env.llm.tokens_per_second * 3600)
    assert routes["deepseek-r1-7b"]["input_cost_per_token"] == pytest.approx(per_token)
    assert routes["deepseek-r1-7b"]["output_cost_per_token"] == pytest.approx(per_token)
    assert "input_cost_per_token" not in routes["claude-haiku-4-5"]  # LiteLLM's cost map prices Bedrock


def test_key_limits_are_the_designs() -> None:
    settings = rendered("prod")["litellm_settings"]
    assert settings["default_key_generate_params"] == {"tpm_limit": 10_000, "rpm_limit": 100, "max_budget": 50,
                                                       "budget_duration": "30d"}
    assert settings["upperbound_key_generate_params"] == {"tpm_limit": 100_000, "rpm_limit": 1_000,
                                                          "max_budget": 500, "budget_duration": "30d"}


def test_redis_calls_time_out() -> None:
    config = rendered("prod")
    for params in (config["litellm_settings"]["cache_params"], config["router_settings"]["cache_kwargs"]):
        assert params["socket_timeout"] == 2.0 and params["socket_connect_timeout"] == 2.0


def _problems(tmp_path: Path, **edit) -> str:
    write_env(tmp_path, "broken", **edit)
    with pytest.raises(ConfigError) as err:
        load_environment("broken", tmp_path)
    return str(err.value)


@pytest.mark.parametrize(("edit", "field", "fix"), [
    ({"replace": {"capacity = { min = 2, desired = 2, max = 5 }": "capacity = { min = 2, desired = 2, max = 30 }"}},
     "gateway.capacity.max", "larger data.db_instance_class"),
    ({"replace": {"[llm]\n": "[gateway.key_defaults]\ntpm = 200000\nrpm = 100\nmax_budget_usd = 50\n\n[llm]\n"}},
     "gateway.key_defaults.tpm", "raise the upper bound"),
    ({"replace": {"idle_timeout_seconds = 300": "idle_timeout_seconds = 200"}},
     "edge.request_timeout_seconds", "raise the idle timeout"),
    ({"replace": {'self_hosted = true, fallbacks = ["claude-haiku-4-5"]': 'self_hosted = true, fallbacks = ["gpt"]'}},
     "gateway.models[2].fallbacks[0]", "name a different route"),
    ({"replace": {'self_hosted = true, fallbacks = ["claude-haiku-4-5"]': "self_hosted = true"}},
     "gateway.models[2].fallbacks", "Bedrock route"),
])
def test_rules_refuse_what_cannot_work(tmp_path: Path, edit: dict, field: str, fix: str) -> None:
    message = _problems(tmp_path, **edit)
    assert f": {field}" in message or f"{field}:" in message or f" {field} " in message, message
    assert fix in message


# --- synthesized resources ----------------------------------------------------------------

def _container(stack: Stack, family_suffix: str) -> dict:
    (task,) = [t for t in stack.resources("aws_ecs_task_definition").values() if t["family"].endswith(family_suffix)]
    (definition,) = json.loads(task["container_definitions"])
    return definition


def _environment(definition: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in definition["environment"]}


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_migrations_run_once_in_their_own_task(stacks, env_name: str) -> None:
    stack = stacks[f"{env_name}-gateway"]
    serving, migration = _container(stack, "-proxy"), _container(stack, "-proxy-migrate")
    assert _environment(serving)["DISABLE_SCHEMA_UPDATE"] == "true"
    assert "DISABLE_SCHEMA_UPDATE" not in _environment(migration)
    assert migration["command"][0].endswith("--skip_server_startup\n")
    assert "portMappings" not in migration and "healthCheck" not in migration
    assert migration["image"] == serving["image"]
    assert _environment(migration)["LITELLM_CONFIG_YAML"] == _environment(serving)["LITELLM_CONFIG_YAML"]
    for definition in (serving, migration):
        assert _environment(definition)["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_leaving_tasks_drain_for_the_request_timeout(stacks, env_name: str) -> None:
    env = load_environment(env_name)
    target_group = stacks[f"{env_name}-edge"].one("aws_lb_target_group")
    assert int(target_group["deregistration_delay"]) == env.edge.request_timeout_seconds
    stop = _container(stacks[f"{env_name}-gateway"], "-proxy")["stopTimeout"]
    assert stop == min(env.edge.request_timeout_seconds, 120) and stop <= 120  # Fargate's maximum


def test_bad_release_rolls_back_and_redeploy_failures_are_kept(stacks) -> None:
    stack = stacks["prod-gateway"]
    service = stack.one("aws_ecs_service")
    assert service["alarms"] == {"alarm_names": ["llmlite-prod-alb-5xx-rate", "llmlite-prod-alb-healthy-hosts"],
                                 "enable": True, "rollback": True}
    target = stack.one("aws_cloudwatch_event_target")
    assert target["retry_policy"] == {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 10}
    (dlq_id,) = stack.resources("aws_sqs_queue")
    assert target["dead_letter_config"]["arn"] == stack.ref("aws_sqs_queue", dlq_id, "arn")
    policy = json.loads(stack.one("aws_sqs_queue_policy")["policy"])
    assert policy["Statement"][0]["Principal"] == {"Service": ["events.amazonaws.com"]}


@pytest.mark.parametrize(("env_name", "automatic"), [("dev", True), ("prod", False), ("prod-us", False)])
def test_minor_upgrades_are_deliberate_where_protected(stacks, env_name: str, automatic: bool) -> None:
    assert stacks[f"{env_name}-data"].one("aws_db_instance")["auto_minor_version_upgrade"] is automatic


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_redis_nodes_are_pinned_to_zones(stacks, env_name: str) -> None:
    env = load_environment(env_name)
    group = stacks[f"{env_name}-data"].one("aws_elasticache_replication_group")
    zones = group["preferred_cache_cluster_azs"]
    assert len(zones) == group["num_cache_clusters"] and zones[0] == env.network.availability_zones[0]
    assert len(set(zones)) == min(len(zones), len(env.network.availability_zones))


def _alarms(stack: Stack, prefix: str) -> list[dict]:
    return [a for a in stack.resources("aws_cloudwatch_metric_alarm").values()
            if a["alarm_name"].startswith(prefix)]


def test_database_and_bedrock_faults_page(stacks) -> None:
    stack = stacks["prod-observability"]
    (db_errors,) = [f for f in stack.resources("aws_cloudwatch_log_metric_filter").values()
                    if f["name"].endswith("proxy-db-errors")]
    terms = [t.strip().strip('"') for t in db_errors["pattern"].split("?") if t.strip()]
    for term in terms:  # LiteLLM's own log lines, as its pinned source writes them
        assert any(message.startswith(term) for message in KEYS["db_error_messages"]), term
    for name, metric in (("bedrock-throttles", "InvocationThrottles"),
                         ("bedrock-server-errors", "InvocationServerErrors")):
        alarms = _alarms(stack, f"llmlite-prod-{name}-")
        assert {a["dimensions"]["ModelId"] for a in alarms} == {
            m.bedrock_model_id for m in load_environment("prod").gateway.models if m.bedrock_model_id}
        assert {a["metric_name"] for a in alarms} == {metric}


def test_redis_primary_and_storage_share_alarms(stacks) -> None:
    stack = stacks["prod-observability"]
    (primary,) = _alarms(stack, "llmlite-prod-redis-no-primary")
    queries = {q["id"]: q for q in primary["metric_query"]}
    assert queries["primaries"]["expression"] == "SUM([node0, node1])"
    assert primary["treat_missing_data"] == "breaching"
    (share,) = _alarms(stack, "llmlite-prod-rds-free-storage-share")
    assert share["threshold"] == round(load_environment("prod").data.db_storage_gb * GIB * 0.05)
    assert BY_NAME["rds-free-storage-share"].threshold < 10  # below storage autoscaling's trigger


def test_events_reach_the_alarm_topic(stacks) -> None:
    stack = stacks["prod-observability"]
    rules = {r["name"]: json.loads(r["event_pattern"]) for r in stack.resources("aws_cloudwatch_event_rule").values()}
    rds = rules["llmlite-prod-rds-failures"]
    assert set(rds["$or"][0]["detail"]["EventCategories"]) == set(RDS_EVENT_CATEGORIES) >= {
        "failover", "maintenance", "availability", "notification"}
    assert rules["llmlite-prod-proxy-deployment-failed"]["detail"] == {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}
    assert rules["llmlite-prod-redis-events"]["detail-type"] == list(ELASTICACHE_EVENTS)
    (failed,) = _alarms(stack, "llmlite-prod-redeploy-failed")
    assert failed["namespace"] == "AWS/States" and failed["metric_name"] == "ExecutionsFailed"
    assert len(stack.resources("aws_cloudwatch_event_target")) == len(rules)


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_gpu_host_cost_is_the_price_list_s(env_name: str) -> None:
    """The self-hosted route's price follows the GPU instance's list price (modules/tools/prices.toml),
    where the price table has the region (elsewhere the environment's own figure stands)."""
    from modules.tools import cost
    env = load_environment(env_name)
    prices = cost.read_prices()
    if env.region not in prices:
        pytest.skip(f"no prices for {env.region}: llm.host_cost_per_hour_usd is the environment's own figure")
    assert env.llm.host_cost_per_hour_usd == prices[env.region]["instances"][env.llm.instance_type]
