"""Layer constructs of the LLM platform; importing this package enables the fast provider path."""

from modules import provider as _provider

_provider.install()
