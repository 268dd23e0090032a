"""Tests for entra_gitops.graph.auth: method choice, loopback and scope rules, local and GitHub OIDC credentials."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import http.server
import json
import threading
import time
import traceback
import urllib.parse

import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.identity import aio as identity
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from tokens import TokenEndpoint

from entra_gitops.graph.auth import (
    AuthError,
    AuthMethod,
    AuthSettings,
    LocalCredential,
    build_credential,
    github_oidc_assertion,
    is_loopback,
    token_scopes,
)

GRAPH = "https://graph.microsoft.com/v1.0"
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT = "66666666-7777-8888-9999-000000000000"
SECRET = "s3cr3t-Value~that-must-never-leak"
REQUEST_TOKEN = "gh-request-token-that-must-never-leak"
AUDIENCE = "api://AzureADTokenExchange"

AUTH_ENV = (
    "ENTRA_GITOPS_AUTH",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_AUTHORITY_HOST",
    "AZURE_FEDERATED_TOKEN_FILE",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    # The developer's or CI runner's own Azure/GitHub variables would otherwise steer method choice.
    for name in AUTH_ENV:
        monkeypatch.delenv(name, raising=False)


def close(credential) -> None:
    asyncio.run(credential.close())


def credential_class(graph_url: str, settings: AuthSettings) -> type:
    credential = build_credential(graph_url, settings)
    close(credential)
    return type(credential)


# --- loopback detection -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/v1.0",
        "http://LOCALHOST:8080/v1.0",
        "https://localhost/v1.0",
        "http://127.0.0.1/v1.0",
        "http://127.0.0.1:1/v1.0/users",
        "https://127.0.0.1:8443/v1.0",
        "http://127.255.255.254/v1.0",
        "http://127.1.2.3:5000",
        "http://[::1]/v1.0",
        "http://[::1]:8080/v1.0",
        "https://[0:0:0:0:0:0:0:1]/v1.0",
    ],
)
def test_loopback_urls(url):
    assert is_loopback(url) is True


@pytest.mark.parametrize(
    "url",
    [
        "https://graph.microsoft.com/v1.0",
        "http://127.0.0.1.evil.com/v1.0",
        "http://127.0.0.1.nip.io/v1.0",
        "http://localhost.evil.com/v1.0",
        "http://evillocalhost/v1.0",
        "http://localhost./v1.0",
        "http://evil.com/localhost",
        "http://evil.com/?host=127.0.0.1",
        "http://evil.com#@localhost",
        "http://localhost@evil.com/v1.0",
        "http://127.0.0.1:80@evil.com/v1.0",
        "http://user:pw@localhost/v1.0",
        "http://evil.com\\@localhost/v1.0",
        "http://localhost\\@evil.com/v1.0",
        "http://local host/v1.0",
        "http://128.0.0.1/v1.0",
        "http://126.255.255.255/v1.0",
        "http://10.0.0.1/v1.0",
        "http://0.0.0.0/v1.0",
        "http://127.1/v1.0",
        "http://2130706433/v1.0",
        "http://0x7f000001/v1.0",
        "http://[::ffff:127.0.0.1]/v1.0",
        "http://[::2]/v1.0",
        "http://[::1%25eth0]/v1.0",
        "http://localhost:notaport/v1.0",
        "ftp://localhost/v1.0",
        "ws://127.0.0.1/v1.0",
        "file://localhost/etc/passwd",
        "localhost:8080",
        "//localhost/v1.0",
        "http:///v1.0",
        "",
    ],
)
def test_non_loopback_urls(url):
    assert is_loopback(url) is False


# --- scopes -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scope"),
    [
        ("https://graph.microsoft.com/v1.0", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.com/beta/", "https://graph.microsoft.com/.default"),
        ("https://graph.microsoft.us/v1.0", "https://graph.microsoft.us/.default"),
        ("https://dod-graph.microsoft.us/v1.0", "https://dod-graph.microsoft.us/.default"),
        ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://microsoftgraph.chinacloudapi.cn/.default"),
        ("https://GRAPH.Microsoft.com:443/v1.0?$top=5", "https://graph.microsoft.com/.default"),
        ("http://127.0.0.1:8080/v1.0", "http://127.0.0.1/.default"),
        ("http://[::1]:8080/v1.0", "http://[::1]/.default"),
    ],
)
def test_token_scopes(url, scope):
    assert token_scopes(url) == [scope]


@pytest.mark.parametrize(
    "url",
    [
        "graph.microsoft.com/v1.0",
        "ftp://graph.microsoft.com/",
        "https:///v1.0",
        "",
        "https://graph.microsoft.com\\@evil.com/v1.0",
        "https://graph.microsoft.com /v1.0",
    ],
)
def test_token_scopes_rejects_invalid_urls(url):
    with pytest.raises(AuthError, match="Graph URL"):
        token_scopes(url)


# --- settings -----------------------------------------------------------------------------


def test_settings_have_no_secret_field():
    names = {field.name for field in dataclasses.fields(AuthSettings)}
    assert names == {"method", "tenant_id", "client_id", "certificate_path"}


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("ENTRA_GITOPS_AUTH", "client-secret")
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", "/tmp/cert.pem")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)

    settings = AuthSettings.from_env()

    assert settings == AuthSettings(AuthMethod.CLIENT_SECRET, TENANT, CLIENT, "/tmp/cert.pem")
    assert SECRET not in repr(settings)


def test_settings_overrides_win_unless_none(monkeypatch):
    monkeypatch.setenv("ENTRA_GITOPS_AUTH", "client-secret")
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)

    settings = AuthSettings.from_env(method=AuthMethod.AZURE_CLI, tenant_id="contoso.onmicrosoft.com", client_id=None)

    assert settings.method is AuthMethod.AZURE_CLI
    assert settings.tenant_id == "contoso.onmicrosoft.com"
    assert settings.client_id == CLIENT
    assert AuthSettings.from_env(method="github-oidc").method is AuthMethod.GITHUB_OIDC


def test_settings_treat_empty_env_as_unset(monkeypatch):
    monkeypatch.setenv("ENTRA_GITOPS_AUTH", "")
    monkeypatch.setenv("AZURE_TENANT_ID", "")
    assert AuthSettings.from_env() == AuthSettings()


def test_settings_reject_unknown_method(monkeypatch):
    monkeypatch.setenv("ENTRA_GITOPS_AUTH", "password")
    with pytest.raises(AuthError, match="ENTRA_GITOPS_AUTH") as info:
        AuthSettings.from_env()
    assert "client-secret" in str(info.value)


def test_settings_reject_unknown_override():
    with pytest.raises(TypeError):
        AuthSettings.from_env(client_secret=SECRET)


# --- automatic and explicit method choice ---------------------------------------------------


def test_default_when_nothing_is_configured():
    assert credential_class(GRAPH, AuthSettings.from_env()) is identity.DefaultAzureCredential


def test_client_secret_from_env(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    assert credential_class(GRAPH, AuthSettings.from_env()) is identity.ClientSecretCredential


def test_client_secret_without_tenant_names_the_setting(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    with pytest.raises(AuthError) as info:
        build_credential(GRAPH, AuthSettings.from_env())
    message = str(info.value)
    assert "AZURE_TENANT_ID" in message and "--tenant-id" in message
    assert "AZURE_CLIENT_ID" not in message
    assert SECRET not in "".join(traceback.format_exception(info.value))


def test_client_secret_without_client_id_names_the_setting(monkeypatch):
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    with pytest.raises(AuthError, match="AZURE_CLIENT_ID"):
        build_credential(GRAPH, AuthSettings.from_env())


def test_explicit_client_secret_needs_the_env_secret():
    settings = AuthSettings(AuthMethod.CLIENT_SECRET, TENANT, CLIENT)
    with pytest.raises(AuthError, match="AZURE_CLIENT_SECRET"):
        build_credential(GRAPH, settings)


def test_invalid_tenant_id_is_an_auth_error(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    with pytest.raises(AuthError, match="AZURE_TENANT_ID"):
        build_credential(GRAPH, AuthSettings(tenant_id="not a tenant/", client_id=CLIENT))


def test_azure_identity_argument_errors_become_auth_errors(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    with pytest.raises(AuthError, match="cannot be set up") as info:
        build_credential(GRAPH, AuthSettings(AuthMethod.AZURE_CLI, tenant_id="bad tenant/"))
    assert info.value.__context__ is None
    assert SECRET not in "".join(traceback.format_exception(info.value))


@pytest.fixture
def certificate_path(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-gitops-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        + cert.public_bytes(serialization.Encoding.PEM)
    )
    return str(path)


def test_certificate_when_path_is_set(monkeypatch, certificate_path):
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", certificate_path)
    assert credential_class(GRAPH, AuthSettings.from_env()) is identity.CertificateCredential


def test_certificate_flag_override(certificate_path):
    settings = AuthSettings.from_env(tenant_id=TENANT, client_id=CLIENT, certificate_path=certificate_path)
    assert credential_class(GRAPH, settings) is identity.CertificateCredential


def test_certificate_missing_file(tmp_path):
    settings = AuthSettings(AuthMethod.CERTIFICATE, TENANT, CLIENT, str(tmp_path / "missing.pem"))
    with pytest.raises(AuthError, match="AZURE_CLIENT_CERTIFICATE_PATH"):
        build_credential(GRAPH, settings)


def test_certificate_unreadable_file(tmp_path):
    path = tmp_path / "junk.pem"
    path.write_text("not a certificate")
    with pytest.raises(AuthError, match="cannot load certificate"):
        build_credential(GRAPH, AuthSettings(AuthMethod.CERTIFICATE, TENANT, CLIENT, str(path)))


def test_github_oidc_wins_in_actions(monkeypatch):
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://pipelines.example.invalid/idtoken?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    assert credential_class(GRAPH, AuthSettings.from_env()) is identity.ClientAssertionCredential


def test_github_oidc_needs_ids_for_automatic_choice(monkeypatch):
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://pipelines.example.invalid/idtoken?api-version=2.0")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    assert credential_class(GRAPH, AuthSettings.from_env()) is identity.DefaultAzureCredential


def test_explicit_github_oidc_outside_actions():
    with pytest.raises(AuthError, match="id-token: write"):
        build_credential(GRAPH, AuthSettings(AuthMethod.GITHUB_OIDC, TENANT, CLIENT))


def test_explicit_github_oidc_without_ids(monkeypatch):
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "https://pipelines.example.invalid/idtoken")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
    with pytest.raises(AuthError) as info:
        build_credential(GRAPH, AuthSettings(AuthMethod.GITHUB_OIDC))
    message = str(info.value)
    assert "AZURE_TENANT_ID" in message and "AZURE_CLIENT_ID" in message
    assert REQUEST_TOKEN not in message


def test_azure_cli_from_env(monkeypatch):
    monkeypatch.setenv("ENTRA_GITOPS_AUTH", "azure-cli")
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    assert credential_class(GRAPH, AuthSettings.from_env()) is identity.AzureCliCredential


def test_national_cloud_uses_its_login_endpoint(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    settings = AuthSettings(tenant_id=TENANT, client_id=CLIENT)
    # _client._authority is azure-identity internal; it is the only offline view of the token endpoint.
    for url, authority in [
        ("https://graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("https://dod-graph.microsoft.us/v1.0", "https://login.microsoftonline.us"),
        ("https://microsoftgraph.chinacloudapi.cn/v1.0", "https://login.chinacloudapi.cn"),
        (GRAPH, "https://login.microsoftonline.com"),
    ]:
        credential = build_credential(url, settings)
        close(credential)
        assert credential._client._authority == authority, url

    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.example.test")
    credential = build_credential("https://graph.microsoft.us/v1.0", settings)
    close(credential)
    assert credential._client._authority == "https://login.example.test"


# --- loopback, LOCAL and plain http ---------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/v1.0", "http://localhost:1/v1.0", "http://[::1]:9/v1.0"])
def test_loopback_gets_local_credential_even_with_cloud_env(monkeypatch, url):
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    assert credential_class(url, AuthSettings.from_env()) is LocalCredential
    assert credential_class(url, AuthSettings(AuthMethod.LOCAL)) is LocalCredential


def test_loopback_with_explicit_cloud_method(monkeypatch):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    settings = AuthSettings(AuthMethod.CLIENT_SECRET, TENANT, CLIENT)
    assert credential_class("http://127.0.0.1:8080/v1.0", settings) is identity.ClientSecretCredential


@pytest.mark.parametrize("url", [GRAPH, "https://127.0.0.1.evil.com/v1.0"])
def test_local_refused_for_public_url(url):
    with pytest.raises(AuthError, match="loopback"):
        build_credential(url, AuthSettings(AuthMethod.LOCAL))


@pytest.mark.parametrize(
    "url", ["http://graph.microsoft.com/v1.0", "http://127.0.0.1.evil.com/v1.0", "http://10.1.2.3/v1.0"]
)
@pytest.mark.parametrize("method", [None, AuthMethod.DEFAULT, AuthMethod.CLIENT_SECRET, AuthMethod.AZURE_CLI])
def test_plain_http_refused_for_non_loopback(monkeypatch, url, method):
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)
    with pytest.raises(AuthError, match="https"):
        build_credential(url, AuthSettings(method, TENANT, CLIENT))


def test_invalid_graph_url_is_an_auth_error():
    with pytest.raises(AuthError, match="Graph URL"):
        build_credential("graph.microsoft.com", AuthSettings())


# --- LocalCredential ------------------------------------------------------------------------


def test_local_credential_tokens():
    async def run():
        async with LocalCredential() as credential:
            return (
                await credential.get_token("http://127.0.0.1/.default", claims=None, enable_cae=True),
                await credential.get_token_info("http://127.0.0.1/.default", options={"enable_cae": True}),
            )

    before = time.time()
    token, info = asyncio.run(run())
    assert isinstance(token, AccessToken) and isinstance(info, AccessTokenInfo)
    assert token.token == info.token == "entra-gitops-local"
    assert info.token_type == "Bearer"
    for expires_on in (token.expires_on, info.expires_on):
        assert before + 3590 <= expires_on <= time.time() + 3610


def test_local_credential_through_kiota_provider():
    url = "http://127.0.0.1:1/v1.0/users"
    credential = build_credential(url, AuthSettings())
    provider = AzureIdentityAuthenticationProvider(credential, scopes=token_scopes(url), allowed_hosts=["127.0.0.1"])
    request = RequestInformation()
    request.http_method = Method.GET
    request.url = url

    async def run():
        try:
            await provider.authenticate_request(request)
        finally:
            await credential.close()

    asyncio.run(run())
    assert request.headers.get("Authorization") == {"Bearer entra-gitops-local"}


# --- GitHub OIDC ----------------------------------------------------------------------------


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def fake_jwt(n: int) -> str:
    header = _b64({"alg": "RS256", "typ": "JWT"})
    payload = _b64({"iss": "https://token.actions.githubusercontent.com", "aud": AUDIENCE, "n": n, "t": time.time()})
    return f"{header}.{payload}.c2lnbmF0dXJl{n}"


class OidcServer:
    """A GitHub-like ID token endpoint on 127.0.0.1 that records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.issued: list[str] = []
        self.mode = "ok"
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                parsed = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parsed.query)
                server.requests.append(
                    {"path": parsed.path, "query": query, "authorization": self.headers.get("Authorization")}
                )
                if parsed.path != "/idtoken":
                    return self.reply(404, {"message": "not found"})
                if self.headers.get("Authorization") != f"bearer {REQUEST_TOKEN}":
                    return self.reply(401, {"message": "bad request token"})
                if query.get("audience") != [AUDIENCE]:
                    return self.reply(400, {"message": "bad audience"})
                if server.mode == "forbidden":
                    # The body echoes secrets so that a message quoting the response would leak them.
                    return self.reply(403, {"message": f"denied {REQUEST_TOKEN}", "value": fake_jwt(999)})
                if server.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{server.port}/stolen")
                    self.end_headers()
                    return None
                if server.mode == "not-json":
                    return self.reply(200, None, raw=f"<html>{fake_jwt(998)}</html>".encode())
                if server.mode == "no-value":
                    return self.reply(200, {"count": 1})
                jwt = fake_jwt(len(server.issued))
                server.issued.append(jwt)
                return self.reply(200, {"count": len(server.issued), "value": jwt})

            def reply(self, status, payload, raw=None):
                body = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, query: str = "?api-version=2.0") -> str:
        return f"http://127.0.0.1:{self.port}/idtoken{query}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def oidc_server():
    server = OidcServer()
    yield server
    server.stop()


def assert_no_secrets(exc: BaseException, server: OidcServer) -> None:
    # A chained urllib/json exception keeps the response body, which may hold a JWT.
    assert exc.__cause__ is None and exc.__context__ is None
    text = "".join(traceback.format_exception(exc))
    assert REQUEST_TOKEN not in text
    for jwt in server.issued + [fake_jwt(999), fake_jwt(998)]:
        assert jwt.split(".")[0] + "." not in text
    assert "eyJ" not in text  # the start of any base64url JSON header


@pytest.mark.slow
@pytest.mark.parametrize("query", ["?api-version=2.0", ""])
def test_github_oidc_fetches_fresh_token_each_call(oidc_server, query):
    fetch = github_oidc_assertion(oidc_server.url(query), REQUEST_TOKEN, timeout=5)

    first = fetch()
    second = fetch()

    assert first != second
    assert [first, second] == oidc_server.issued
    assert all(value.count(".") == 2 for value in (first, second))
    assert len(oidc_server.requests) == 2
    for seen in oidc_server.requests:
        assert seen["authorization"] == f"bearer {REQUEST_TOKEN}"
        assert seen["query"]["audience"] == [AUDIENCE]
        if query:
            assert seen["query"]["api-version"] == ["2.0"]


@pytest.mark.slow
def test_github_oidc_custom_audience(oidc_server):
    fetch = github_oidc_assertion(oidc_server.url(), REQUEST_TOKEN, audience="api://Other Audience")
    with pytest.raises(AuthError, match="HTTP 400"):
        fetch()
    assert oidc_server.requests[0]["query"]["audience"] == ["api://Other Audience"]


@pytest.mark.slow
def test_github_oidc_forbidden_hides_secrets(oidc_server):
    oidc_server.mode = "forbidden"
    fetch = github_oidc_assertion(oidc_server.url(), REQUEST_TOKEN)
    with pytest.raises(AuthError, match="403") as info:
        fetch()
    assert "id-token: write" in str(info.value)
    assert_no_secrets(info.value, oidc_server)


@pytest.mark.slow
def test_github_oidc_wrong_request_token(oidc_server):
    fetch = github_oidc_assertion(oidc_server.url(), "some-other-token")
    with pytest.raises(AuthError, match="401") as info:
        fetch()
    assert "some-other-token" not in "".join(traceback.format_exception(info.value))


@pytest.mark.slow
def test_github_oidc_does_not_follow_redirects(oidc_server):
    oidc_server.mode = "redirect"
    fetch = github_oidc_assertion(oidc_server.url(), REQUEST_TOKEN)
    with pytest.raises(AuthError, match="302"):
        fetch()
    assert [seen["path"] for seen in oidc_server.requests] == ["/idtoken"]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "match"), [("not-json", "not JSON"), ("no-value", "no 'value'")])
def test_github_oidc_bad_responses(oidc_server, mode, match):
    oidc_server.mode = mode
    fetch = github_oidc_assertion(oidc_server.url(), REQUEST_TOKEN)
    with pytest.raises(AuthError, match=match) as info:
        fetch()
    assert_no_secrets(info.value, oidc_server)


@pytest.mark.slow
def test_github_oidc_unreachable_endpoint(oidc_server):
    url = oidc_server.url()
    oidc_server.stop()
    fetch = github_oidc_assertion(url, REQUEST_TOKEN, timeout=2)
    with pytest.raises(AuthError, match="failed") as info:
        fetch()
    assert REQUEST_TOKEN not in "".join(traceback.format_exception(info.value))


def test_github_oidc_refuses_plain_http_to_remote_host():
    with pytest.raises(AuthError, match="https"):
        github_oidc_assertion("http://pipelines.example.invalid/idtoken?api-version=2.0", REQUEST_TOKEN)


class EntraTokenServer(TokenEndpoint):
    """An https token endpoint on 127.0.0.1 (self-signed) that records client assertions."""

    def __init__(self, tmp_path) -> None:
        def answer(path, form):
            # expires_in 0 makes the next get_token go back to the token endpoint, as after expiry.
            return 200, {"token_type": "Bearer", "expires_in": 0, "access_token": f"entra-{len(self.requests)}"}

        super().__init__(tmp_path, answer)
        self.cafile = str(self.cafile)


@pytest.fixture
def entra_server(tmp_path):
    server = EntraTokenServer(tmp_path)
    yield server
    server.stop()


@pytest.mark.slow
def test_github_oidc_credential_sends_a_fresh_assertion_per_token(monkeypatch, oidc_server, entra_server):
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", oidc_server.url())
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", entra_server.authority)
    credential = build_credential(GRAPH, AuthSettings.from_env())
    assert isinstance(credential, identity.ClientAssertionCredential)

    async def run():
        async with credential:
            # connection_verify travels down to azure-core's transport: trust the self-signed endpoint.
            return [
                (await credential.get_token(*token_scopes(GRAPH), connection_verify=entra_server.cafile)).token
                for _ in range(2)
            ]

    assert asyncio.run(run()) == ["entra-1", "entra-2"]
    assert len(oidc_server.requests) == 2
    assert len(set(oidc_server.issued)) == 2
    assert [path for path, _ in entra_server.requests] == [f"/{TENANT}/oauth2/v2.0/token"] * 2
    assert [form["client_assertion"] for _, form in entra_server.requests] == [[jwt] for jwt in oidc_server.issued]
    for _, form in entra_server.requests:
        assert form["client_id"] == [CLIENT]
        assert form["grant_type"] == ["client_credentials"]
        assert form["scope"] == ["https://graph.microsoft.com/.default"]
