"""Loopback stand-ins for what the emulator does not run: a throwaway CA, an OpenAI-compatible
model server, the WebSocket management API (postToConnection), and `redis-server` over TLS.

Each serves TLS with a certificate of the throwaway CA for 127.0.0.1, so the code under test
keeps its https:// and TLS settings; the process trusts the CA through SSL_CERT_FILE and
AWS_CA_BUNDLE (Lambda's runtime trusts the public CAs the same way).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import shutil
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote

from modules.rehearsal.emulator import free_port


class StandInError(RuntimeError):
    """A stand-in could not start (a missing tool): the smoke step fails with this message."""


@dataclass(frozen=True)
class Authority:
    """A throwaway CA and one server certificate it signed for 127.0.0.1 (PEM files in `directory`)."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> Authority:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rehearsal smoke CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        server = (x509.CertificateBuilder()
                  .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                  .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                  .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                  .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                              x509.DNSName("localhost")]), critical=False)
                  .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                 critical=False)
                  .sign(ca_key, hashes.SHA256()))
        directory.mkdir(parents=True, exist_ok=True)
        found = cls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
        found.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        found.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        found.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        return found

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert), str(self.key))
        return context


class _TlsServer:
    """A threading HTTPS server on 127.0.0.1 running `handler`; stopped on exit."""

    def __init__(self, authority: Authority, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.socket = authority.server_context().wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Any:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@dataclass
class ModelCall:
    path: str
    authorization: str
    body: dict[str, Any]


class ModelServer(_TlsServer):
    """OpenAI-compatible POST <base>/chat/completions: answers "answer: <last message>" to the
    bearer `key` only (401 otherwise, as LiteLLM refuses an unknown key)."""

    def __init__(self, authority: Authority) -> None:
        self.calls: list[ModelCall] = []
        self.key = ""
        calls, server = self.calls, self

        class Handler(_Quiet):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.body() or b"{}")
                calls.append(ModelCall(self.path, self.headers.get("Authorization", ""), body))
                if not self.path.endswith("/chat/completions"):
                    self.answer(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {server.key}":
                    self.answer(401, {"error": {"message": "invalid API key"}})
                    return
                content = f"answer: {body['messages'][-1]['content']}"
                self.answer(200, {"id": "chatcmpl-smoke", "object": "chat.completion", "model": body.get("model"),
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": content}}],
                                  "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}})

        super().__init__(authority, Handler)


@dataclass
class Posted:
    path: str
    connection_id: str
    frame: dict[str, Any]


class ManagementApi(_TlsServer):
    """API Gateway's management API: POST /<stage>/@connections/<id> recorded (moto has no WebSocket
    connections to post to)."""

    def __init__(self, authority: Authority) -> None:
        self.posted: list[Posted] = []
        posted = self.posted

        class Handler(_Quiet):
            def do_POST(self) -> None:  # noqa: N802
                path = unquote(self.path)
                _, _, connection = path.partition("/@connections/")
                if not connection:
                    self.answer(404, {"message": f"no route {path}"})
                    return
                posted.append(Posted(path, connection, json.loads(self.body())))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(authority, Handler)


@dataclass
class RedisTls:
    """`redis-server` with TLS only (as ElastiCache with in-transit encryption) and an AUTH password."""

    authority: Authority
    password: str
    directory: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> RedisTls:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StandInError("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        config = "\n".join([
            "bind 127.0.0.1", "port 0", f"tls-port {self.port}", f"tls-cert-file {self.authority.cert}",
            f"tls-key-file {self.authority.key}", f"tls-ca-cert-file {self.authority.ca}", "tls-auth-clients no",
            f"requirepass {self.password}", 'save ""', "appendonly no", f"dir {self.directory}"])
        self.directory.mkdir(parents=True, exist_ok=True)
        # The password goes through stdin, never the command line (`ps` shows that).
        self.process = subprocess.Popen([binary, "-"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        assert self.process.stdin is not None
        self.process.stdin.write(config.encode("utf-8"))
        self.process.stdin.close()
        deadline = time.monotonic() + 10
        import redis

        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return self
            except (OSError, redis.RedisError):  # not listening yet
                time.sleep(0.05)
        self.__exit__(None, None, None)
        raise StandInError(f"redis-server with TLS did not answer on 127.0.0.1:{self.port}")

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, ssl=True,
                           ssl_ca_certs=str(self.authority.ca), socket_timeout=2)

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class PostgresTls:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with TLS (RDS with `sslmode=require`): one
    database and one owner whose password is set over a local socket, never on a command line.
    As root the cluster runs as the `postgres` user (initdb refuses root)."""

    authority: Authority
    database: str
    user: str
    password: str
    port: int = 0
    directory: Path | None = None
    bin_dir: Path = Path("/usr/bin")
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def __enter__(self) -> PostgresTls:
        import glob
        import os
        import pwd
        import tempfile

        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise StandInError("PostgreSQL is not installed (apt-get install postgresql)")
        bin_dir, owner = Path(found[-1]).parent, pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        self.bin_dir = bin_dir
        self.directory = Path(tempfile.mkdtemp(prefix="smoke-postgres-"))
        for name, source in (("server.crt", self.authority.cert), ("server.key", self.authority.key)):
            (self.directory / name).write_bytes(source.read_bytes())
            (self.directory / name).chmod(0o600)
        if owner is not None:
            for path in (self.directory, self.directory / "server.crt", self.directory / "server.key"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        user = {"user": owner.pw_uid, "group": owner.pw_gid} if owner is not None else {}
        data, self.port = self.directory / "data", free_port()
        subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
                       check=True, capture_output=True, **user)
        # Local socket: trust (the setup below); TCP: password over TLS only, as RDS with rds.force_ssl.
        (data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        self.process = subprocess.Popen(
            [str(bin_dir / "postgres"), "-D", str(data), "-k", str(self.directory), "-h", "127.0.0.1",
             "-p", str(self.port), "-c", "ssl=on", "-c", f"ssl_cert_file={self.directory / 'server.crt'}",
             "-c", f"ssl_key_file={self.directory / 'server.key'}", "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=(self.directory / "postgres.log").open("ab"), **user)
        self._setup(bin_dir, user)
        return self

    def _setup(self, bin_dir: Path, user: dict[str, int]) -> None:
        deadline = time.monotonic() + 30
        while subprocess.run([str(bin_dir / "pg_isready"), "-q", "-h", str(self.directory), "-p", str(self.port)],
                             check=False, **user).returncode != 0:
            if time.monotonic() > deadline or (self.process is not None and self.process.poll() is not None):
                self.__exit__(None, None, None)
                raise StandInError(f"PostgreSQL did not start on 127.0.0.1:{self.port}")
            time.sleep(0.1)
        quoted = self.password.replace("'", "''")
        script = (f'CREATE ROLE "{self.user}" LOGIN PASSWORD \'{quoted}\';\n'
                  f'CREATE DATABASE "{self.database}" OWNER "{self.user}";\n')
        done = subprocess.run([str(bin_dir / "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.directory),
                               "-p", str(self.port), "-U", "postgres", "-d", "postgres"], input=script.encode(),
                              capture_output=True, check=False, **user)
        if done.returncode != 0:
            self.__exit__(None, None, None)
            raise StandInError(f"PostgreSQL setup failed: {done.stderr.decode(errors='replace')[-300:]}")

    def session(self, url: str, query: str = "select current_user, current_database(), ssl from pg_stat_ssl "
                                              "where pid = pg_backend_pid()") -> tuple[str, str]:
        """`psql URL -c query` (libpq, so the URL's own sslmode holds): (rows as a|b|c, error)."""
        done = subprocess.run([str(self.bin_dir / "psql"), url, "-Atc", query], capture_output=True, text=True,
                              check=False, env={"PATH": "/usr/bin:/bin", "PGCONNECT_TIMEOUT": "5"})
        return done.stdout.strip(), done.stderr.strip()

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: PostgreSQL's smart shutdown
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
