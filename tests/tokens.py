"""A local https token endpoint for sign-in tests: a self-signed certificate on 127.0.0.1 and a callback that answers."""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

# (request path, form fields) -> (status, JSON body)
Answer = Callable[[str, dict[str, list[str]]], tuple[int, dict[str, Any]]]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA, and its key: (certificate file, key file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cafile, keyfile = folder / "entra-ca.pem", folder / "entra-key.pem"
    cafile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cafile, keyfile


class TokenEndpoint:
    """Serves POSTs over https on a free loopback port, records each (path, form) and answers through `answer`."""

    def __init__(self, folder: Path, answer: Answer) -> None:
        self.cafile, keyfile = self_signed(folder)
        self.requests: list[tuple[str, dict[str, list[str]]]] = []
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                endpoint.requests.append((self.path, form))
                status, body = answer(self.path, form)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cafile), str(keyfile))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.authority = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT (alg none, empty signature) carrying `claims`: the emulator reads them, never verifies."""

    def segment(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    body = {"aud": "https://graph.microsoft.com", **claims}
    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(body)}."


def role_jwt(*roles: str, scp: str | None = None, **claims: Any) -> str:
    """An unsigned JWT granting `roles` (application permissions) and `scp` (delegated scopes), with `claims`."""
    body: dict[str, Any] = {"roles": list(roles), **claims}
    if scp is not None:
        body["scp"] = scp
    return unsigned_jwt(body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
