"""The LLM platform: catalogue → config → parts → layers → engine → tools; importing this package enables the fast provider path."""

from modules.engine import provider as _provider

_provider.install()
