"""moto's server with the corrections the emulator-difference table lists as "corrected in
the emulator": bugs of moto itself that no rewrite of a stack can route around, each fixed
here so the emulator answers as AWS documents. Run as a script (the rehearsal's server
process): `python moto_corrected.py -H 127.0.0.1 -p PORT`. Imports only moto.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any, Callable


def kms_replica_owns_its_configuration() -> None:
    """ReplicateKey copies the primary key shallowly, so primary and replica share one
    MultiRegionConfiguration and DescribeKey on the replica turns the primary into a REPLICA.
    AWS keeps the primary's type PRIMARY (KMS API, MultiRegionConfiguration)."""
    from moto.kms.models import KmsBackend

    replicate_key = KmsBackend.replicate_key

    def replicate_with_own_configuration(self: Any, key_id: str, replica_region: str) -> Any:
        replica = replicate_key(self, key_id, replica_region)
        replica.multi_region_configuration = copy.deepcopy(replica.multi_region_configuration)
        return replica

    KmsBackend.replicate_key = replicate_with_own_configuration


def backup_list_tags_reads_the_arn_without_a_trailing_slash() -> None:
    """ListTags takes the ARN from the path's second-to-last segment, which holds it only when
    the request ends in a slash (as boto3 sends it); the AWS provider's SDK sends
    `GET /tags/<arn>` without one, so every tag read answers {}. Take the segment after `tags`."""
    from urllib.parse import unquote

    from moto.backup.responses import BackupResponse

    def list_tags(self: Any) -> str:
        segments = [part for part in self.path.split("?")[0].split("/") if part]
        resource_arn = unquote(segments[segments.index("tags") + 1])
        return json.dumps({"Tags": self.backup_backend.list_tags(resource_arn=resource_arn)})

    BackupResponse.list_tags = list_tags


CORRECTIONS: dict[str, Callable[[], None]] = {
    "kms-replica-shares-primary-configuration": kms_replica_owns_its_configuration,
    "backup-list-tags-path": backup_list_tags_reads_the_arn_without_a_trailing_slash,
}


def main(argv: list[str]) -> None:
    for correct in CORRECTIONS.values():
        correct()
    from moto.server import main as serve
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
