"""After apply, the platform answers: one real request through what the rehearsal deployed.

    run(deployment) -> list[SmokeStep]

The realtime smoke (realtime.py) runs the deployed function zips against the emulator and
loopback stand-ins (standins.py).
"""

from __future__ import annotations

from modules.rehearsal.smoke.deployment import Deployment, SmokeStep

LAYERS = ("data", "realtime")  # the stacks whose states the smoke reads


def run(deployment: Deployment) -> list[SmokeStep]:
    from modules.rehearsal.smoke import realtime

    return realtime.run(deployment) if deployment.stack("realtime") in deployment.states else []
