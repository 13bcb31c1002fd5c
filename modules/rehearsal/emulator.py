"""moto's server mode on 127.0.0.1, and what an environment expects to exist before its first apply."""

from __future__ import annotations

import datetime
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from modules.rehearsal.terraform import ToolError

MOTO_DEFAULT_ACCOUNT = "123456789012"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CORRECTED_SERVER = Path(__file__).with_name("moto_corrected.py")


def moto_server_command() -> list[str]:
    """moto's server, with the corrections of moto bugs the difference table lists."""
    try:
        import moto  # noqa: F401
    except ImportError:
        raise ToolError("moto_server is not installed: `pipenv sync --dev` (the dev packages include moto[server]).") \
            from None
    try:
        import flask  # noqa: F401  (moto_server needs the [server] extra)
    except ImportError:
        raise ToolError("moto is installed without its server extra: `pip install 'moto[server]'` "
                        "(or `pipenv sync --dev`).") from None
    return [sys.executable, str(CORRECTED_SERVER)]


class MotoServer:
    """`moto_server` answering as `account_id` on a free loopback port; stopped on exit, always."""

    def __init__(self, account_id: str, log: Path) -> None:
        self.account_id, self.log = account_id, log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MotoServer:
        command = moto_server_command()
        env = {**os.environ, "MOTO_ACCOUNT_ID": self.account_id, "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test",
               # AWS managed policies (AmazonSSMManagedInstanceCore, …) exist in every account;
               # moto loads them only when asked (moto/settings.py).
               "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        with self.log.open("ab") as out:
            # Its own session: Ctrl-C reaches this process, which then stops the server itself.
            self.process = subprocess.Popen([*command, "-H", "127.0.0.1", "-p", str(self.port)], stdout=out,
                                            stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ToolError(f"moto_server exited at start (code {self.process.returncode}); see {self.log}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2).close()
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise ToolError(f"moto_server did not answer on {self.url} within 60 s; see {self.log}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def client(self, service: str, region: str):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(service, region_name=region, endpoint_url=self.url, aws_access_key_id="test",
                            aws_secret_access_key="test")


@dataclass(frozen=True)
class Certificate:
    """An ACM certificate the environment's config names (it is issued outside Terraform)."""

    arn: str
    names: tuple[str, ...]

    @property
    def region(self) -> str:
        return self.arn.split(":")[3]


def self_signed(names: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A throwaway certificate and key for `names` (the emulator does not check the chain)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def seed_certificates(server: MotoServer, certificates: list[Certificate]) -> dict[str, str]:
    """Import each certificate; moto picks the ARN (see differences.py), so: configured ARN -> emulator's."""
    arns = {}
    for cert in certificates:
        body, key = self_signed(cert.names)
        arns[cert.arn] = server.client("acm", cert.region).import_certificate(
            Certificate=body, PrivateKey=key)["CertificateArn"]
    return arns


SERVICE_LINKED_ROLE = re.compile(r":role/aws-service-role/([a-z0-9.-]+\.amazonaws\.com)/")


def arrange_imported_roles(server: MotoServer, docs: list[dict[str, Any]]) -> list[str]:
    """Create the service-linked roles the stacks import: the account configuration says they
    exist already (accounts.toml `autoscaling_role = "import"`), and an import of a role that does
    not exist fails, in AWS as here. One line per role, for the run's log."""
    arranged = []
    for doc in docs:
        for block in doc.get("import", []):
            found = SERVICE_LINKED_ROLE.search(block["id"])
            if block["to"].startswith("aws_iam_service_linked_role.") and found:
                server.client("iam", "us-east-1").create_service_linked_role(AWSServiceName=found.group(1))
                arranged.append(f"arranged: the service-linked role of {found.group(1)}, which {block['to']} "
                                f"imports (the account's configuration says it exists)")
    return arranged
