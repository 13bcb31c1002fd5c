"""moto's server with the corrections the emulator-difference table lists as "corrected in
the emulator": bugs of moto itself that no rewrite of a stack can route around, each fixed
here so the emulator answers as AWS documents. Run as a script (the rehearsal's server
process): `python moto_corrected.py -H 127.0.0.1 -p PORT`. Imports only moto.
"""

from __future__ import annotations

import copy
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


CORRECTIONS: dict[str, Callable[[], None]] = {
    "kms-replica-shares-primary-configuration": kms_replica_owns_its_configuration,
}


def main(argv: list[str]) -> None:
    for correct in CORRECTIONS.values():
        correct()
    from moto.server import main as serve
    serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
