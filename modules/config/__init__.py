"""Typed, validated environment configuration.

An environment is a folder under `environments/` holding `environment.toml`. It is parsed
into frozen, strictly typed pydantic models (`models`), then checked against the rules that
span fields (`rules`: subnets inside the VPC, HA needs two AZs, …). `loader` reports every
problem at once, each naming the environment, the field and the fix; no construct is built
before all selected environments pass. `settings` says what each layer is given of it.
"""

from modules.config.loader import (ACCOUNTS_FILE, CONFIG_FILE, ENVIRONMENTS_DIR, ConfigError, account_of, accounts_of,
                                   available_environments, load_accounts, load_environment, load_environments)
from modules.config.models import *  # noqa: F403  (the section models)
from modules.config.rules import Problem, check

__all__ = ["ACCOUNTS_FILE", "CONFIG_FILE", "account_of", "accounts_of", "load_accounts", "ENVIRONMENTS_DIR", "ConfigError", "Problem", "available_environments", "check",
           "load_environment", "load_environments"]
