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


def ec2_requests_one_at_a_time() -> None:
    """moto's server answers each request on its own thread (werkzeug `threaded=True`,
    moto/server.py), and the EC2 backend's models are plain dicts and lists changed without a
    lock: `create_network_acl_entry` checks for an existing rule number, then appends
    (moto/ec2/models/network_acls.py), while other threads iterate and change the same
    structures. AWS applies each request atomically. EC2 requests here run one at a time; the
    other services keep their threads (nothing in them waits on another request)."""
    import threading

    from moto.core.responses import BaseResponse
    from moto.ec2.responses import EC2Response

    dispatch = BaseResponse._dispatch
    one_at_a_time = threading.Lock()

    def serialized(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(self, EC2Response):
            return dispatch(self, *args, **kwargs)
        with one_at_a_time:
            return dispatch(self, *args, **kwargs)

    BaseResponse._dispatch = serialized


CORRECTIONS: dict[str, Callable[[], None]] = {
    "kms-replica-shares-primary-configuration": kms_replica_owns_its_configuration,
    "backup-list-tags-path": backup_list_tags_reads_the_arn_without_a_trailing_slash,
    "ec2-requests-not-atomic": ec2_requests_one_at_a_time,
}


def main(argv: list[str]) -> None:
    for correct in CORRECTIONS.values():
        correct()
    from moto.server import main as serve
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
