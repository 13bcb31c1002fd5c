"""Build one CDKTF app holding every layer stack of the given environments.

Adding a layer: its construct, its config section, and one line here."""

from __future__ import annotations

from cdktn import App

from modules.config import Environment
from modules.config.models import Account
from modules.config.settings import AccountEnvironment, AccountSettings, Identity, settings_for
from modules.layers.account import AccountScope
from modules.layers.data import Data
from modules.layers.edge import Edge
from modules.layers.foundation import Foundation
from modules.layers.gateway import Gateway
from modules.layers.llm import Llm
from modules.layers.realtime import Realtime
from modules.layers.network import Network
from modules.layers.observability import Observability, Watched
from modules.engine.stacks import APP_CONTEXT, STATE_LAYER, AccountStack, LayerStack
from modules.layers.state import StateStore


def build_app(environments: list[Environment], outdir: str | None = None,
              accounts: dict[str, tuple[Account, list[Environment]]] | None = None) -> App:
    """Stacks `<env>-<layer>`, wired through each layer's typed outputs, and `account-<name>`
    for each of `accounts` (name -> the account and every environment deployed to it)."""
    app = App(outdir=outdir, context=APP_CONTEXT)  # outdir None: cdktf.out or $CDKTF_OUTDIR
    for env in environments:
        build_environment(app, env)
    for name, (account, members) in sorted((accounts or {}).items()):
        build_account(app, name, account, members)
    return app


def build_account(app: App, name: str, account: Account, members: list[Environment]) -> None:
    """The account's stack, from every environment deployed to it (never a subset: a role left
    out would be destroyed)."""
    envs = tuple(AccountEnvironment.of(env) for env in sorted(members, key=lambda e: e.name))
    stack = AccountStack(app, name, account, tuple(sorted({env.region for env in envs})))
    AccountScope(stack, "account", settings=AccountSettings(name=name, account=account, environments=envs),
                 region_providers=stack.region_providers)


def build_environment(app: App, env: Environment) -> None:
    identity = Identity.of(env)

    def read(layer: str) -> dict:
        """What a layer is given of the environment: the identity and its own settings."""
        return {"identity": identity, "settings": settings_for(env, layer)}

    if env.backend.type == "s3":
        StateStore(LayerStack(app, env, STATE_LAYER), "state", **read(STATE_LAYER))
    # Replica keys wherever data is copied: table replicas and the backup copies' region.
    copy_region = env.data.backup_copy_region
    key_regions = tuple(dict.fromkeys([*env.data.dynamodb_replica_regions, *([copy_region] if copy_region else [])]))
    foundation_stack = LayerStack(app, env, "foundation", replica_regions=key_regions)
    foundation = Foundation(foundation_stack, "foundation", **read("foundation"),
                            replica_providers=foundation_stack.replica_providers)
    network = Network(LayerStack(app, env, "network"), "network", **read("network"),
                      kms_key_arn=foundation.outputs.kms_key_arn)
    edge = Edge(LayerStack(app, env, "edge"), "edge", **read("edge"), network=network.outputs,
                foundation=foundation.outputs)
    data_stack = LayerStack(app, env, "data", replica_regions=(copy_region,) if copy_region else ())
    data = Data(data_stack, "data", **read("data"), network=network.outputs, foundation=foundation.outputs,
                copy_provider=data_stack.replica_providers.get(copy_region) if copy_region else None)
    llm = Llm(LayerStack(app, env, "llm"), "llm", **read("llm"), network=network.outputs,
              foundation=foundation.outputs)
    gateway = Gateway(LayerStack(app, env, "gateway"), "gateway", **read("gateway"), network=network.outputs,
                      foundation=foundation.outputs, data=data.outputs, edge=edge.outputs, llm=llm.outputs)
    realtime = Realtime(LayerStack(app, env, "realtime"), "realtime", **read("realtime"), network=network.outputs,
                        foundation=foundation.outputs, data=data.outputs)
    Observability(LayerStack(app, env, "observability"), "observability", **read("observability"),
                  foundation=foundation.outputs, watched=Watched(edge=edge.outputs, gateway=gateway.outputs,
                                                                 data=data.outputs, llm=llm.outputs,
                                                                 realtime=realtime.outputs))
