"""After apply, the platform answers: one real request through what the rehearsal deployed.

    run(deployment) -> list[SmokeStep]

The realtime smoke (realtime.py) runs the deployed function zips against the emulator and
loopback stand-ins (standins.py); the gateway smoke (gateway.py) starts the real LiteLLM proxy
with the task definition's configuration, environment and secrets.
"""

from __future__ import annotations

from modules.rehearsal.smoke.deployment import Deployment, SmokeStep

LAYERS = ("data", "llm", "gateway", "realtime")  # the stacks whose states the smoke reads


def run(deployment: Deployment) -> list[SmokeStep]:
    from modules.rehearsal.smoke import gateway, realtime

    steps = realtime.run(deployment) if deployment.stack("realtime") in deployment.states else []
    return steps + (gateway.run(deployment) if deployment.stack("gateway") in deployment.states else [])
