"""Field-level envelope encryption: one KMS data key per item, AES-256-GCM per field.

KMS `GenerateDataKey` (AES_256) with an encryption context returns the data key twice: in
plaintext, used here and dropped, and encrypted under the KMS key, stored with the item.
Reading back needs `kms:Decrypt` with the same context. Each field's GCM associated data
binds it to its name and the context, so ciphertexts cannot be swapped between fields or items.
Stored attributes (binary): `dataKey`, and `<field>Ciphertext` + `<field>Nonce` per field.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


def _associated_data(field: str, context: Mapping[str, str]) -> bytes:
    return json.dumps({"field": field, "context": dict(context)}, sort_keys=True,
                      separators=(",", ":")).encode("utf-8")


def seal(kms: Any, key_arn: str, context: Mapping[str, str], fields: Mapping[str, bytes]) -> dict[str, bytes]:
    data_key = kms.generate_data_key(KeyId=key_arn, KeySpec="AES_256", EncryptionContext=dict(context))
    aes = AESGCM(data_key["Plaintext"])
    sealed = {"dataKey": data_key["CiphertextBlob"]}
    for field, plaintext in fields.items():
        nonce = os.urandom(NONCE_BYTES)  # random 96-bit nonces: one key encrypts only a few fields
        sealed[f"{field}Nonce"] = nonce
        sealed[f"{field}Ciphertext"] = aes.encrypt(nonce, plaintext, _associated_data(field, context))
    return sealed


def unseal(kms: Any, item: Mapping[str, Any], context: Mapping[str, str], fields: tuple[str, ...]) -> dict[str, bytes]:
    key = kms.decrypt(CiphertextBlob=_bytes(item["dataKey"]), EncryptionContext=dict(context))["Plaintext"]
    aes = AESGCM(key)
    return {field: aes.decrypt(_bytes(item[f"{field}Nonce"]), _bytes(item[f"{field}Ciphertext"]),
                               _associated_data(field, context))
            for field in fields}


def _bytes(value: Any) -> bytes:
    """DynamoDB's resource API returns binary attributes as `Binary` wrappers."""
    return bytes(value.value) if hasattr(value, "value") else bytes(value)
