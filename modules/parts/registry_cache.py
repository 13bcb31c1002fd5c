"""ECR pull-through cache rules: the gateway and the GPU hosts pull their third-party images
(LiteLLM from ghcr.io, vLLM from Docker Hub) through the environment's own registry, so a
task start or a host boot depends on ECR, not on an anonymous, rate-limited upstream pull.

Both upstreams require credentials in a Secrets Manager secret whose name begins with
`ecr-pullthroughcache/`. The secret is created here without a value: an operator puts the
upstream's user name and access token into it once, so no credential ever reaches code,
synth output or state.
"""

from __future__ import annotations

from constructs import Construct
from cdktn_provider_aws.ecr_pull_through_cache_rule import EcrPullThroughCacheRule
from cdktn_provider_aws.secretsmanager_secret import SecretsmanagerSecret

from modules.config.models import PULL_THROUGH_CACHES
from modules.config.settings import Identity
from modules.parts.compliance import skip
from modules.parts.storage import protect
from modules.parts.switch import pick_number

SECRET_PREFIX = "ecr-pullthroughcache/"  # ECR reads only secrets named so (its service-linked role's policy)


def credentials_secret_name(identity: Identity, prefix: str) -> str:
    return f"{SECRET_PREFIX}{identity.project}-{identity.environment}-{prefix}"


class PullThroughCache(Construct):
    """One cache rule per upstream (`<prefix>/…` repositories), each with its credentials secret."""

    def __init__(self, scope: Construct, id: str, *, identity: Identity) -> None:
        super().__init__(scope, id)
        self.secret_arns: dict[str, str] = {}
        for prefix, (upstream, _) in PULL_THROUGH_CACHES.items():
            key = prefix.replace("-", "_")
            secret = SecretsmanagerSecret(
                self, f"{key}_credentials", name=credentials_secret_name(identity, prefix),
                description=f"{upstream} credentials of the {identity.environment} pull-through cache: "
                            "JSON {\"username\": …, \"accessToken\": …}, put by an operator",
                recovery_window_in_days=pick_number(identity.protect_stateful, 30, 0))
            protect(secret, identity.protect_stateful)
            skip(secret, "CKV_AWS_149", "ECR reads this secret with its pull-through cache service-linked role, "
                 "whose AWS-managed policy grants secretsmanager:GetSecretValue but no kms:Decrypt, and that role "
                 "exists only once a first rule does (so a key policy cannot name it beforehand): the AWS-managed "
                 "key aws/secretsmanager is the key ECR can use.")
            skip(secret, "CKV2_AWS_57", "An upstream registry's access token is issued by that registry (Docker "
                 "Hub, GitHub), not by AWS: an operator replaces it there and puts the new one here.")
            EcrPullThroughCacheRule(self, f"{key}_rule", ecr_repository_prefix=prefix, upstream_registry_url=upstream,
                                    credential_arn=secret.arn)
            self.secret_arns[prefix] = secret.arn
