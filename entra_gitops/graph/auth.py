"""Credentials for Microsoft Graph: method choice, national-cloud scopes, GitHub OIDC and a local emulator token."""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import os
import re
import shutil
import string
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import AzureError, ServiceRequestError, ServiceResponseError

from entra_gitops.model.errors import AuthError

__all__ = [
    "AuthError",
    "AuthMethod",
    "AuthSettings",
    "LocalCredential",
    "SignIn",
    "build_credential",
    "github_oidc_assertion",
    "is_loopback",
    "sign_in",
    "sign_in_failure",
    "token_scopes",
]

ENV_METHOD = "ENTRA_GITOPS_AUTH"
ENV_TENANT_ID = "AZURE_TENANT_ID"
ENV_CLIENT_ID = "AZURE_CLIENT_ID"
ENV_CERTIFICATE_PATH = "AZURE_CLIENT_CERTIFICATE_PATH"
ENV_CERTIFICATE_PASSWORD = "AZURE_CLIENT_CERTIFICATE_PASSWORD"
ENV_CLIENT_SECRET = "AZURE_CLIENT_SECRET"
ENV_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST"
ENV_OIDC_REQUEST_URL = "ACTIONS_ID_TOKEN_REQUEST_URL"
ENV_OIDC_REQUEST_TOKEN = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
ENV_LOCAL_TOKEN = "ENTRA_GITOPS_LOCAL_TOKEN"

GITHUB_OIDC_AUDIENCE = "api://AzureADTokenExchange"
LOCAL_TOKEN = "entra-gitops-local"

# Flag names are part of the messages so that a user knows both ways to fix a missing value.
_TENANT_HINT = f"--tenant-id or {ENV_TENANT_ID}"
_CLIENT_HINT = f"--client-id or {ENV_CLIENT_ID}"
_CERTIFICATE_HINT = f"--certificate-path or {ENV_CERTIFICATE_PATH}"

# A Graph root in a national cloud only accepts tokens from that cloud's login endpoint
# (https://learn.microsoft.com/graph/deployments); the global cloud is azure-identity's default.
_NATIONAL_AUTHORITIES = {
    "graph.microsoft.us": "login.microsoftonline.us",
    "dod-graph.microsoft.us": "login.microsoftonline.us",
    "microsoftgraph.chinacloudapi.cn": "login.chinacloudapi.cn",
}

_TENANT_ID_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-.")

# Token responses are a few kilobytes; the cap keeps a misbehaving endpoint from filling memory.
_MAX_OIDC_RESPONSE = 64 * 1024


class AuthMethod(enum.Enum):
    DEFAULT = "default"
    CLIENT_SECRET = "client-secret"
    CERTIFICATE = "certificate"
    AZURE_CLI = "azure-cli"
    GITHUB_OIDC = "github-oidc"
    LOCAL = "local"


def _parse_method(value: AuthMethod | str, source: str) -> AuthMethod:
    if isinstance(value, AuthMethod):
        return value
    text = str(value).strip().lower().replace("_", "-")
    try:
        return AuthMethod(text)
    except ValueError:
        names = ", ".join(m.value for m in AuthMethod)
        raise AuthError(f"unknown authentication method {value!r} in {source}; use one of: {names}") from None


def _env(name: str) -> str | None:
    # CI systems often export unset secrets as empty strings; treat those as absent.
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class AuthSettings:
    """Who to authenticate as. Secrets are deliberately absent: they are read from the environment only."""

    method: AuthMethod | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    certificate_path: str | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> AuthSettings:
        """Settings from the environment; overrides (CLI flags) that are not None win."""
        unknown = set(overrides) - {"method", "tenant_id", "client_id", "certificate_path"}
        if unknown:
            raise TypeError(f"unknown AuthSettings field(s): {', '.join(sorted(unknown))}")

        method: AuthMethod | None = None
        if overrides.get("method") is not None:
            method = _parse_method(overrides["method"], "--auth")
        elif (env_method := _env(ENV_METHOD)) is not None:
            method = _parse_method(env_method, ENV_METHOD)

        def pick(field: str, env_name: str) -> str | None:
            value = overrides.get(field)
            if value is not None:
                return str(value).strip() or None
            return _env(env_name)

        return cls(
            method=method,
            tenant_id=pick("tenant_id", ENV_TENANT_ID),
            client_id=pick("client_id", ENV_CLIENT_ID),
            certificate_path=pick("certificate_path", ENV_CERTIFICATE_PATH),
        )


def _split_url(url: str) -> urllib.parse.SplitResult | None:
    # Characters on which URL parsers disagree (backslash, whitespace, controls) make the
    # "real" host ambiguous, so such URLs are rejected rather than interpreted.
    if not isinstance(url, str) or any(c == "\\" or c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts


def is_loopback(graph_url: str) -> bool:
    """True only for an http(s) URL whose host is localhost, 127.0.0.0/8 or ::1."""
    parts = _split_url(graph_url)
    # Userinfo in a Graph URL is never legitimate and is the classic way to disguise the host.
    if parts is None or parts.username is not None or parts.password is not None:
        return False
    host = parts.hostname
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in ipaddress.IPv4Network("127.0.0.0/8")
    # Exact match keeps out IPv4-mapped forms and scoped addresses such as ::1%eth0.
    return address == ipaddress.IPv6Address("::1") and address.scope_id is None


def _require_graph_url(graph_url: str) -> urllib.parse.SplitResult:
    parts = _split_url(graph_url)
    if parts is None:
        raise AuthError(
            f"invalid Graph URL {graph_url!r}: expected an http(s) URL such as https://graph.microsoft.com/v1.0"
        )
    return parts


def token_scopes(graph_url: str) -> list[str]:
    """The `.default` scope of the Graph root that serves graph_url (national clouds included)."""
    parts = _require_graph_url(graph_url)
    host = parts.hostname
    # Entra rejects a .default scope that carries a port or userinfo, so only the host is kept.
    if ":" in host:
        host = f"[{host}]"
    return [f"{parts.scheme}://{host}/.default"]


class LocalCredential:
    """Async credential handing out a fixed token for the loopback emulator (never logged or printed)."""

    def __init__(self, token: str = LOCAL_TOKEN, lifetime: int = 3600) -> None:
        self._token = token
        self._lifetime = lifetime

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + self._lifetime)

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        return AccessTokenInfo(self._token, int(time.time()) + self._lifetime, token_type="Bearer")

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> LocalCredential:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


def _oidc_url(request_url: str, audience: str) -> str:
    parts = urllib.parse.urlsplit(request_url)
    audience_param = "audience=" + urllib.parse.quote(audience, safe="")
    query = f"{parts.query}&{audience_param}" if parts.query else audience_param
    return urllib.parse.urlunsplit(parts._replace(query=query))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib copies the Authorization header onto redirects, even to another host; GitHub's
    # token endpoint does not redirect, so a redirect is treated as an error instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def github_oidc_assertion(
    request_url: str,
    request_token: str,
    audience: str = GITHUB_OIDC_AUDIENCE,
    timeout: float = 10.0,
) -> Callable[[], str]:
    """A function that fetches a fresh GitHub Actions OIDC token on every call."""
    parts = _split_url(request_url)
    if parts is None:
        raise AuthError(f"{ENV_OIDC_REQUEST_URL} is not a valid http(s) URL")
    # The request token is a bearer credential; it may only travel in clear text to this machine.
    if parts.scheme != "https" and not is_loopback(request_url):
        raise AuthError(f"{ENV_OIDC_REQUEST_URL} must be an https URL (got {parts.scheme}://{parts.hostname})")
    if not request_token:
        raise AuthError(f"{ENV_OIDC_REQUEST_TOKEN} is empty; give the workflow job `permissions: id-token: write`")

    url = _oidc_url(request_url, audience)
    where = parts.hostname
    opener = urllib.request.build_opener(_NoRedirect)

    def fetch() -> str:
        # Never cached: GitHub's token lives five minutes and azure-identity calls this only
        # when it needs a new Entra token, which may be much later.
        request = urllib.request.Request(
            url,
            headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
            method="GET",
        )
        # Errors are raised after the except blocks, not inside them: the original exceptions
        # hold the request (with the request token) and the response body (possibly a JWT), and
        # even "from None" would keep them reachable through __context__.
        body = b""
        problem = None
        try:
            with opener.open(request, timeout=timeout) as response:
                body = response.read(_MAX_OIDC_RESPONSE + 1)
        except urllib.error.HTTPError as exc:
            exc.close()
            problem = f"failed with HTTP {exc.code}"
            if exc.code in (401, 403):
                problem += "; check that the workflow job has `permissions: id-token: write`"
            elif 300 <= exc.code < 400:
                problem += "; the token endpoint redirected, which is not followed"
        except urllib.error.URLError as exc:
            reason = exc.reason if isinstance(exc.reason, str) else type(exc.reason).__name__
            problem = f"failed: {reason}"
        except (OSError, ValueError) as exc:
            problem = f"failed: {type(exc).__name__}"
        if problem is not None:
            raise AuthError(f"GitHub OIDC token request to {where} {problem}")

        if len(body) > _MAX_OIDC_RESPONSE:
            raise AuthError(f"GitHub OIDC token response from {where} is too large")
        try:
            payload = json.loads(body)
            parsed = True
        except ValueError:
            parsed = False
        if not parsed:
            raise AuthError(f"GitHub OIDC token response from {where} is not JSON")
        value = payload.get("value") if isinstance(payload, dict) else None
        if not isinstance(value, str) or not value:
            raise AuthError(f"GitHub OIDC token response from {where} has no 'value'")
        return value

    return fetch


def _authority_kwargs(graph_parts: urllib.parse.SplitResult) -> dict[str, str]:
    # An explicit AZURE_AUTHORITY_HOST (private or future clouds) is left to azure-identity.
    if _env(ENV_AUTHORITY_HOST):
        return {}
    authority = _NATIONAL_AUTHORITIES.get(graph_parts.hostname or "")
    return {"authority": authority} if authority else {}


def _require_ids(settings: AuthSettings, method: AuthMethod) -> tuple[str, str]:
    missing = []
    if not settings.tenant_id:
        missing.append(f"the tenant id ({_TENANT_HINT})")
    if not settings.client_id:
        missing.append(f"the application (client) id ({_CLIENT_HINT})")
    if missing:
        raise AuthError(f"authentication method {method.value!r} needs " + " and ".join(missing) + "; set it")
    # Same rule as azure-identity, checked here so the error names the setting to fix.
    if any(c not in _TENANT_ID_CHARACTERS for c in settings.tenant_id):
        raise AuthError(f"tenant id {settings.tenant_id!r} is not a GUID or domain name; check {_TENANT_HINT}")
    return settings.tenant_id, settings.client_id  # type: ignore[return-value]


def _choose_method(settings: AuthSettings) -> AuthMethod:
    if _env(ENV_OIDC_REQUEST_URL) and _env(ENV_OIDC_REQUEST_TOKEN) and settings.tenant_id and settings.client_id:
        return AuthMethod.GITHUB_OIDC
    if _env(ENV_CLIENT_SECRET):
        return AuthMethod.CLIENT_SECRET
    if settings.certificate_path:
        return AuthMethod.CERTIFICATE
    return AuthMethod.DEFAULT


def build_credential(graph_url: str, settings: AuthSettings) -> Any:
    """An azure.identity.aio-style async credential for graph_url, chosen from settings and the environment."""
    return _build(graph_url, settings)[1]


def sign_in(graph_url: str, settings: AuthSettings) -> Any:
    """The credential a Graph client uses: build_credential's, wrapped in SignIn (the emulator's token as it is)."""
    method, credential = _build(graph_url, settings)
    return credential if isinstance(credential, LocalCredential) else SignIn(credential, method)


def _build(graph_url: str, settings: AuthSettings) -> tuple[AuthMethod, Any]:
    parts = _require_graph_url(graph_url)
    loopback = is_loopback(graph_url)
    method = settings.method

    if method is AuthMethod.LOCAL and not loopback:
        raise AuthError(
            f"the 'local' authentication method only works with a loopback Graph URL (localhost, 127.0.0.1, ::1), "
            f"not {parts.scheme}://{parts.hostname}; choose another method or point the Graph URL at the emulator"
        )
    if parts.scheme == "http" and not loopback:
        raise AuthError(f"refusing plain http for {parts.hostname}: access tokens would travel unencrypted; use https")
    if loopback and method in (None, AuthMethod.LOCAL):
        # A token of the tester's choosing (an unsigned JWT with `roles`) lets the emulator check least privilege.
        return AuthMethod.LOCAL, LocalCredential(_env(ENV_LOCAL_TOKEN) or LOCAL_TOKEN)

    if method is None:
        method = _choose_method(settings)
    try:
        return method, _construct(method, settings, parts)
    except ValueError as exc:
        # azure-identity rejects bad arguments with fixed, secret-free messages, but the
        # exception's frames hold the secret, so it must not become the AuthError's __context__.
        reason = str(exc)
    raise AuthError(f"authentication method {method.value!r} cannot be set up: {reason}")


def _construct(method: AuthMethod, settings: AuthSettings, parts: urllib.parse.SplitResult) -> Any:
    from azure.identity import aio as identity

    authority = _authority_kwargs(parts)

    if method is AuthMethod.GITHUB_OIDC:
        tenant_id, client_id = _require_ids(settings, method)
        request_url = _env(ENV_OIDC_REQUEST_URL)
        request_token = _env(ENV_OIDC_REQUEST_TOKEN)
        if not request_url or not request_token:
            raise AuthError(
                f"the 'github-oidc' method needs {ENV_OIDC_REQUEST_URL} and {ENV_OIDC_REQUEST_TOKEN}, which GitHub "
                "Actions sets only when the workflow job has `permissions: id-token: write`"
            )
        func = github_oidc_assertion(request_url, request_token)
        return identity.ClientAssertionCredential(tenant_id, client_id, func, **authority)

    if method is AuthMethod.CLIENT_SECRET:
        tenant_id, client_id = _require_ids(settings, method)
        # Read here and nowhere else, so the secret never sits in settings, flags or logs.
        secret = _env(ENV_CLIENT_SECRET)
        if not secret:
            raise AuthError(
                f"the 'client-secret' method reads the secret only from the {ENV_CLIENT_SECRET} environment "
                "variable, which is not set"
            )
        return identity.ClientSecretCredential(tenant_id, client_id, secret, **authority)

    if method is AuthMethod.CERTIFICATE:
        tenant_id, client_id = _require_ids(settings, method)
        path = settings.certificate_path
        if not path:
            raise AuthError(f"the 'certificate' method needs a certificate file ({_CERTIFICATE_HINT})")
        if not os.path.isfile(path):
            raise AuthError(f"certificate file {path!r} does not exist; check {_CERTIFICATE_HINT}")
        password = _env(ENV_CERTIFICATE_PASSWORD)
        kwargs: dict[str, Any] = dict(authority)
        if password:
            kwargs["password"] = password
        failure = None
        try:
            return identity.CertificateCredential(tenant_id, client_id, path, **kwargs)
        except (ValueError, TypeError, OSError) as exc:
            failure = type(exc).__name__
        # Raised outside the except block so the loader's exception, which may quote key
        # material, is not kept as __context__.
        raise AuthError(
            f"cannot load certificate {path!r} ({failure}): it must be PEM or PKCS12 with the private "
            f"key; if the key is encrypted, set {ENV_CERTIFICATE_PASSWORD}"
        )

    if method is AuthMethod.AZURE_CLI:
        # The CLI picks its cloud from `az cloud set`, so no authority is passed.
        return identity.AzureCliCredential(tenant_id=settings.tenant_id or "")

    if method is AuthMethod.DEFAULT:
        # DefaultAzureCredential reads AZURE_* variables itself; only the cloud has to be told.
        return identity.DefaultAzureCredential(**authority)

    # LOCAL was handled above; reaching here means a new AuthMethod member without a branch.
    raise AuthError(f"authentication method {method.value!r} is not supported for {parts.hostname}")


# What to check for each method once Entra (or the Azure CLI) refused: the settings azure-identity read for it.
_SIGN_IN_FIXES = {
    AuthMethod.CLIENT_SECRET: f"check {ENV_CLIENT_SECRET} (the secret's value, not its id), {_CLIENT_HINT} "
    f"and {_TENANT_HINT}",
    AuthMethod.CERTIFICATE: f"check that {_CERTIFICATE_HINT} is a certificate uploaded to the app, {_CLIENT_HINT} "
    f"and {_TENANT_HINT}",
    AuthMethod.AZURE_CLI: "run `az login`, with --tenant ID for another tenant, or choose another --auth",
    AuthMethod.GITHUB_OIDC: f"check that the app's federated credential names this repository and workflow, "
    f"{_CLIENT_HINT} and {_TENANT_HINT}",
    AuthMethod.DEFAULT: f"choose a method with --auth: `az login` and --auth azure-cli, or --auth client-secret with "
    f"--tenant-id, --client-id and {ENV_CLIENT_SECRET}; --debug shows what DefaultAzureCredential tried",
}

# Entra's access tokens and GitHub's OIDC tokens are JWTs; none may reach a terminal or a CI log.
_JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]*")
_MAX_REASON = 300


def _reason(err: BaseException) -> str:
    """The first line of azure-identity's message, with anything secret taken out."""
    text = str(getattr(err, "message", None) or err)
    line = next((part.strip() for part in text.splitlines() if part.strip()), type(err).__name__)
    for name in (ENV_CLIENT_SECRET, ENV_CERTIFICATE_PASSWORD, ENV_OIDC_REQUEST_TOKEN):
        value = _env(name)
        if value:
            line = line.replace(value, "***")
    line = _JWT.sub("<token>", line)
    return line if len(line) <= _MAX_REASON else line[: _MAX_REASON - 1] + "…"


def sign_in_failure(method: AuthMethod | None, credential: str, err: BaseException) -> AuthError:
    """One AuthError for a failed sign-in: which credential, azure-identity's reason, and what to set."""
    how = f"{credential} (--auth {method.value})" if method else credential
    if isinstance(err, ServiceRequestError | ServiceResponseError | OSError):
        authority = _env(ENV_AUTHORITY_HOST)
        hint = "the sign-in endpoint cannot be reached: check the network and any proxy (HTTPS_PROXY)" + (
            f", and {ENV_AUTHORITY_HOST} (now {authority})" if authority else ""
        )
    elif method is AuthMethod.AZURE_CLI and shutil.which("az") is None:
        hint = "install the Azure CLI and run `az login`, or choose another --auth"
    else:
        hint = _SIGN_IN_FIXES.get(method, "check the sign-in settings") if method else "check the sign-in settings"
    return AuthError(f"cannot sign in to Microsoft Graph with {how}: {_reason(err)}", hint=hint)


class SignIn:
    """An async credential around azure-identity's that signs in once per run and reuses the token until near expiry.

    A failure is one AuthError, raised again for every later request without trying again: a run
    with many requests in flight reports it once, and never runs `az` or calls Entra for each.
    """

    # A token this close to expiry is renewed, so that a long read never sends one that lapses in flight.
    RENEW_BEFORE = 300

    def __init__(self, credential: Any, method: AuthMethod) -> None:
        self.credential = credential
        self.method = method
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        self._failure: AuthError | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        # One request signs in while the others wait for its token (or its failure).
        async with self._lock:
            if self._failure is None:
                cached = self._tokens.get(scopes)
                fresh = cached is not None and cached.expires_on - time.time() > self.RENEW_BEFORE
                if fresh and not kwargs.get("claims"):
                    return cached  # type: ignore[return-value]
                failure = None
                try:
                    token = await self.credential.get_token(*scopes, **kwargs)
                except (AzureError, OSError) as err:
                    failure = sign_in_failure(self.method, type(self.credential).__name__, err)
                # Raised outside the except block: the original's frames hold the credential and its secret.
                if failure is None:
                    self._tokens[scopes] = token
                    return token
                self._failure = failure
            raise AuthError(self._failure.args[0], hint=self._failure.hint)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.credential.close()

    async def __aenter__(self) -> SignIn:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
