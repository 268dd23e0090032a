"""Bearer tokens on the emulator, and proof that `entra-gitops permissions` lists enough and nothing more.

The first half checks the token rules (401 without a usable token, 403 for a JWT without the permission a
call needs, with Graph's error body) through raw httpx and through the product's own client. The second
half runs the real CLI (click's runner, in process) against an emulator served over loopback, with an
unsigned JWT whose `roles` are exactly what `permissions_for` lists: snapshot, diff and plan with the read
identity's set, apply with the write identity's set, every call succeeding; then each permission of each
set dropped in turn makes a run fail with Graph's 403.
"""

from __future__ import annotations

import contextlib
import copy
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from conftest import BASE_URL, HOST, assert_graph_error, demo_seed, demo_tenant, run
from tokens import bearer
from tokens import role_jwt as jwt

from entra_gitops.cli.main import cli
from entra_gitops.emulator import Emulator
from entra_gitops.emulator.app import Request
from entra_gitops.emulator.auth import operation
from entra_gitops.emulator.protocol import Reply
from entra_gitops.emulator.routes import Op
from entra_gitops.emulator.server import serving
from entra_gitops.emulator.store import Tenant
from entra_gitops.graph import limiter
from entra_gitops.graph.auth import ENV_LOCAL_TOKEN, LOCAL_TOKEN, AuthSettings, build_credential
from entra_gitops.graph.client import connect
from entra_gitops.model.errors import GraphError
from entra_gitops.model.registry import Access, ThrottleScope, default_registry
from entra_gitops.workflow.permissions import Job, needs_of, optional_permissions, permissions_for

SEED = demo_seed()
USERS = {u["displayName"]: u["id"] for u in SEED["users"]}
GROUPS = {g["displayName"]: g["id"] for g in SEED["groups"]}
KARI, HENRIK, NORA = (USERS[n] for n in ("Kari Nordmann", "Henrik Strand", "Nora Bakken"))
HANNA = USERS["Hanna Berg"]  # in no group: restoring her touches no other type's plan
MAGNUS = USERS["Magnus Lie"]
SG_FINANCE, ENGINEERING = GROUPS["SG-Finance"], GROUPS["Engineering"]
PRIVILEGED = GROUPS["Entra Privileged Admins"]  # isAssignableToRole: true
ERIK = next(d["id"] for d in SEED["directory/deletedItems"] if d.get("displayName") == "Erik Larsen")
APPS = {a["displayName"]: a["id"] for a in SEED["applications"]}
SPS = {s["displayName"]: s["id"] for s in SEED["servicePrincipals"]}
GRAPH_SP = SPS["Microsoft Graph"]
ASSIGNMENT = SEED[f"servicePrincipals/{GRAPH_SP}/appRoleAssignedTo"][0]["id"]
GRANT = next(g["id"] for g in SEED["oauth2PermissionGrants"] if g["consentType"] == "AllPrincipals")
POLICY = next(p["id"] for p in SEED["identity/conditionalAccess/policies"] if p["state"] == "enabled")
OSLO = next(n["id"] for n in SEED["identity/conditionalAccess/namedLocations"] if n["displayName"] == "Oslo HQ")
STRENGTH = next(p["id"] for p in SEED["policies/authenticationStrengthPolicies"] if p["policyType"] == "custom")
SMS = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations/Sms"
ADMIN = {"Authorization": "Bearer local"}  # an opaque token: every permission
REGISTRY = default_registry()
FORBIDDEN = "Insufficient privileges to complete the operation."


def send(app: Emulator, method: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    """One raw request to the emulator in process, with exactly the headers given (no default token)."""

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=HOST) as client:
            return await client.request(method, f"{BASE_URL}/{path}", headers=headers, json=body)

    return run(go())


def member_ref(member_id: str) -> dict[str, str]:
    return {"@odata.id": f"{BASE_URL}/directoryObjects/{member_id}"}


@pytest.fixture
def app() -> Emulator:
    return Emulator(demo_tenant())


# -- 401: no token, or one that cannot be read ----------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz"])
def test_a_request_without_a_bearer_token_is_401(app: Emulator, header: str | None) -> None:
    headers = {"client-request-id": "c0ffee00-0000-4000-8000-000000000001"}
    if header is not None:
        headers["Authorization"] = header
    response = send(app, "GET", "users?$select=id", headers)
    error = assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token is empty."
    assert error["innerError"]["client-request-id"] == "c0ffee00-0000-4000-8000-000000000001"
    assert response.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize(
    "token",
    [
        "a.b.c",  # not base64 of JSON
        "e30.bm90IGpzb24.",  # payload is not JSON
        "e30.WzFd.",  # payload is a JSON list
        "e30.eyJyb2xlcyI6ICJVc2VyLlJlYWQuQWxsIn0.",  # roles is a string, not a list
        "e30.e30+.",  # not base64url
    ],
)
def test_a_malformed_jwt_is_401(app: Emulator, token: str) -> None:
    error = assert_graph_error(send(app, "GET", "users", bearer(token)), 401, "InvalidAuthenticationToken")
    assert error["message"] == "Access token validation failure."


def test_an_expired_jwt_is_401(app: Emulator) -> None:
    error = assert_graph_error(send(app, "GET", "users", bearer(jwt("User.Read.All", exp=1))), 401)
    assert error["code"] == "InvalidAuthenticationToken" and "expired" in error["message"]


def test_a_token_without_an_api_prefix_still_gets_the_404(app: Emulator) -> None:
    """The emulator's own 404 for paths outside /v1.0 comes first; a 401 there would tell nothing more."""
    assert send(app, "GET", "../beta/users", {}).status_code == 404


def test_the_batch_envelope_itself_needs_a_token(app: Emulator) -> None:
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users?$select=id"}]}
    assert_graph_error(send(app, "POST", "$batch", {}, body), 401, "InvalidAuthenticationToken")


# -- opaque tokens: every permission ---------------------------------------------------------------------


@pytest.mark.parametrize("token", [LOCAL_TOKEN, "local", "anything-at-all", "one.dot-only"])
def test_an_opaque_token_may_do_everything(app: Emulator, token: str) -> None:
    assert send(app, "GET", "users?$select=id,employeeLeaveDateTime", bearer(token)).status_code == 200
    assert send(app, "POST", f"groups/{PRIVILEGED}/members/$ref", bearer(token), member_ref(KARI)).status_code == 204


# -- 403: a JWT without the permission ------------------------------------------------------------------


def test_a_jwt_without_the_permission_is_403_with_graphs_error_body(app: Emulator) -> None:
    headers = {**bearer(jwt("Group.Read.All")), "client-request-id": "c0ffee00-0000-4000-8000-000000000002"}
    response = send(app, "GET", "users?$select=id", headers)
    error = assert_graph_error(response, 403, "Authorization_RequestDenied")
    assert error["message"] == FORBIDDEN
    assert error["innerError"]["client-request-id"] == "c0ffee00-0000-4000-8000-000000000002"
    assert response.headers["request-id"] == error["innerError"]["request-id"]
    assert send(app, "GET", "users?$select=id", bearer(jwt("User.Read.All"))).status_code == 200
    # A JWT with no permission claim at all may call nothing.
    assert_graph_error(send(app, "GET", "organization", bearer(jwt())), 403, "Authorization_RequestDenied")


def test_every_permission_a_need_lists_allows_it(app: Emulator) -> None:
    for permission in ("User.Read.All", "Directory.Read.All", "User.ReadWrite.All"):
        assert send(app, "GET", "users?$select=id", bearer(jwt(permission))).status_code == 200, permission
    assert send(app, "GET", f"users/{KARI}", bearer(jwt("User.Read.All"))).status_code == 200


def test_delegated_scopes_count_like_roles(app: Emulator) -> None:
    token = jwt(scp="openid User.Read.All Group.Read.All")
    assert send(app, "GET", "users?$select=id", bearer(token)).status_code == 200
    assert send(app, "GET", "groups?$select=id", bearer(token)).status_code == 200
    assert_graph_error(send(app, "GET", "applications", bearer(token)), 403, "Authorization_RequestDenied")


def test_a_read_permission_does_not_write(app: Emulator) -> None:
    token = jwt("User.Read.All", "Directory.Read.All")
    assert_graph_error(send(app, "PATCH", f"users/{KARI}", bearer(token), {"department": "X"}), 403)
    assert (
        send(app, "PATCH", f"users/{KARI}", bearer(jwt("User.ReadWrite.All")), {"department": "X"}).status_code == 204
    )
    assert app.tenant.find(app.registry.get("user"), KARI)["department"] == "X"


def test_the_403_reaches_the_products_client_as_a_graph_error(app: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    async def read(path: str) -> Any:
        client = connect(BASE_URL, transport=httpx.ASGITransport(app=app))
        try:
            return await client.list_all(path, {"$select": "id"})
        finally:
            await client.aclose()

    monkeypatch.setenv(ENV_LOCAL_TOKEN, jwt("User.Read.All"))
    assert run(read("users"))
    with pytest.raises(GraphError) as refused:
        run(read("groups"))
    assert refused.value.status == 403 and refused.value.code == "Authorization_RequestDenied"
    assert FORBIDDEN in str(refused.value)

    monkeypatch.setenv(ENV_LOCAL_TOKEN, "e30.bm90IGpzb24.")
    with pytest.raises(GraphError) as unreadable:
        run(read("users"))
    assert unreadable.value.status == 401 and unreadable.value.code == "InvalidAuthenticationToken"


def test_the_local_token_comes_from_the_environment_and_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    async def token() -> str:
        credential = build_credential("http://127.0.0.1:8080/v1.0", AuthSettings())
        return (await credential.get_token("http://127.0.0.1/.default")).token, repr(credential)

    monkeypatch.delenv(ENV_LOCAL_TOKEN, raising=False)
    assert run(token())[0] == LOCAL_TOKEN
    chosen = jwt("User.Read.All")
    monkeypatch.setenv(ENV_LOCAL_TOKEN, chosen)
    value, shown = run(token())
    assert value == chosen and chosen not in shown
    monkeypatch.setenv(ENV_LOCAL_TOKEN, "   ")  # empty, as CI exports unset secrets: the default token
    assert run(token())[0] == LOCAL_TOKEN


# -- conditional needs ----------------------------------------------------------------------------------


def test_role_assignable_group_members_need_role_management(app: Emulator) -> None:
    writer = bearer(jwt("Group.ReadWrite.All"))
    assert send(app, "POST", f"groups/{ENGINEERING}/members/$ref", writer, member_ref(KARI)).status_code == 204
    refused = send(app, "POST", f"groups/{PRIVILEGED}/members/$ref", writer, member_ref(KARI))
    assert_graph_error(refused, 403, "Authorization_RequestDenied")
    assert_graph_error(send(app, "DELETE", f"groups/{PRIVILEGED}/members/{MAGNUS}/$ref", writer), 403)
    assert KARI not in app.tenant.members(("group", "members"), PRIVILEGED)

    # GroupMember.ReadWrite.All is the least privileged way to change members; role-assignable groups also
    # need RoleManagement.ReadWrite.Directory (group-post-members, group-delete-members).
    members_only = bearer(jwt("GroupMember.ReadWrite.All"))
    assert send(app, "POST", f"groups/{SG_FINANCE}/members/$ref", members_only, member_ref(HENRIK)).status_code == 204
    assert_graph_error(send(app, "PATCH", f"groups/{SG_FINANCE}", members_only, {"description": "x"}), 403)
    both = bearer(jwt("GroupMember.ReadWrite.All", "RoleManagement.ReadWrite.Directory"))
    assert send(app, "POST", f"groups/{PRIVILEGED}/members/$ref", both, member_ref(KARI)).status_code == 204
    assert send(app, "DELETE", f"groups/{PRIVILEGED}/members/{MAGNUS}/$ref", both).status_code == 204
    assert KARI in app.tenant.members(("group", "members"), PRIVILEGED)
    # Deleting a role-assignable group needs it too (group-delete); another group does not.
    assert_graph_error(send(app, "DELETE", f"groups/{PRIVILEGED}", writer), 403)
    assert send(app, "DELETE", f"groups/{ENGINEERING}", writer).status_code == 204


def test_reading_or_writing_the_leave_date_needs_a_lifecycle_permission(app: Emulator) -> None:
    reader = jwt("User.Read.All")
    assert send(app, "GET", "users?$select=id,displayName", bearer(reader)).status_code == 200
    for path in ("users?$select=id,employeeLeaveDateTime", f"users/{NORA}?$select=employeeLeaveDateTime"):
        assert_graph_error(send(app, "GET", path, bearer(reader)), 403, "Authorization_RequestDenied")
    filtered = "users?$filter=employeeLeaveDateTime le 2027-01-01T00:00:00Z&$select=id"
    assert_graph_error(send(app, "GET", filtered, bearer(reader)), 403)
    lifecycle = jwt("User.Read.All", "User-LifeCycleInfo.Read.All")
    assert send(app, "GET", "users?$select=id,employeeLeaveDateTime", bearer(lifecycle)).status_code == 200

    leave = {"employeeLeaveDateTime": "2027-06-30T16:00:00Z"}
    assert_graph_error(send(app, "PATCH", f"users/{NORA}", bearer(jwt("User.ReadWrite.All")), leave), 403)
    writer = jwt("User.ReadWrite.All", "User-LifeCycleInfo.ReadWrite.All")
    assert send(app, "PATCH", f"users/{NORA}", bearer(writer), leave).status_code == 204


def test_conditional_access_writes_need_policy_read_all_beside(app: Emulator) -> None:
    path = f"identity/conditionalAccess/policies/{POLICY}"
    alone = bearer(jwt("Policy.ReadWrite.ConditionalAccess"))
    assert send(app, "GET", path, alone).status_code == 200
    assert_graph_error(send(app, "PATCH", path, alone, {"state": "disabled"}), 403, "Authorization_RequestDenied")
    both = bearer(jwt("Policy.ReadWrite.ConditionalAccess", "Policy.Read.All"))
    assert send(app, "PATCH", path, both, {"state": "disabled"}).status_code == 204


def test_app_role_assignments_are_created_with_application_read_all_beside(app: Emulator) -> None:
    path = f"servicePrincipals/{GRAPH_SP}/appRoleAssignedTo"
    existing = send(app, "GET", f"{path}/{ASSIGNMENT}", ADMIN).json()
    assert (
        send(app, "DELETE", f"{path}/{ASSIGNMENT}", bearer(jwt("AppRoleAssignment.ReadWrite.All"))).status_code == 204
    )
    body = {k: existing[k] for k in ("principalId", "resourceId", "appRoleId")}
    assert_graph_error(send(app, "POST", path, bearer(jwt("AppRoleAssignment.ReadWrite.All")), body), 403)
    both = bearer(jwt("AppRoleAssignment.ReadWrite.All", "Application.Read.All"))
    assert send(app, "POST", path, both, body).status_code == 201


# -- routes that serve several types --------------------------------------------------------------------


def test_batch_sub_requests_are_checked_one_by_one(app: Emulator) -> None:
    body = {
        "requests": [
            {"id": "users", "method": "GET", "url": "/users?$select=id"},
            {"id": "groups", "method": "GET", "url": "/groups?$select=id"},
            # A token inside a sub-request is not how Graph authenticates it: the envelope's counts.
            {"id": "sneaky", "method": "GET", "url": "/groups?$select=id", "headers": ADMIN},
        ]
    }
    response = send(app, "POST", "$batch", bearer(jwt("User.Read.All")), body)
    assert response.status_code == 200
    answers = {r["id"]: r for r in response.json()["responses"]}
    assert answers["users"]["status"] == 200
    for refused in ("groups", "sneaky"):
        assert answers[refused]["status"] == 403
        assert answers[refused]["body"]["error"]["code"] == "Authorization_RequestDenied"
        assert set(answers[refused]["body"]["error"]["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_directory_objects_need_directory_read_all_or_the_objects_own_read(app: Emulator) -> None:
    users = bearer(jwt("User.Read.All"))
    assert send(app, "GET", f"directoryObjects/{KARI}", users).status_code == 200
    assert_graph_error(send(app, "GET", f"directoryObjects/{ENGINEERING}", users), 403, "Authorization_RequestDenied")
    directory = bearer(jwt("Directory.Read.All"))
    assert send(app, "GET", f"directoryObjects/{ENGINEERING}", directory).status_code == 200
    assert send(app, "GET", "directoryObjects/00000000-0000-4000-8000-0000000000ff", directory).status_code == 404


def test_deleted_items_are_checked_as_the_type_they_hold(app: Emulator) -> None:
    path = f"directory/deletedItems/{ERIK}"  # a soft-deleted user
    assert send(app, "GET", path, bearer(jwt("User.Read.All"))).status_code == 200
    assert_graph_error(send(app, "GET", path, bearer(jwt("Group.Read.All"))), 403, "Authorization_RequestDenied")
    assert_graph_error(send(app, "POST", f"{path}/restore", bearer(jwt("Group.ReadWrite.All"))), 403)
    assert send(app, "POST", f"{path}/restore", bearer(jwt("User.ReadWrite.All"))).status_code == 200
    listed = send(app, "GET", "directory/deletedItems/microsoft.graph.group", bearer(jwt("User.Read.All")))
    assert_graph_error(listed, 403, "Authorization_RequestDenied")


# Routes the emulator matches for which Graph v1.0 has no API (a JWT is refused them): an organization is neither
# created nor deleted, and an app role assignment has no update (serviceprincipal-post/-delete-approleassignedto).
NOT_IN_GRAPH = {("organization", "create"), ("organization", "delete"), ("appRoleAssignment", "update")}


def test_every_operation_the_emulator_serves_has_a_recorded_need() -> None:
    """An operation without a need would be refused to every JWT: the schemas must cover each one."""
    served = Emulator(Tenant(REGISTRY, "00000000-0000-4000-8000-000000000000"))
    missing = []
    for route in served.routes.routes:
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            doing = operation(route, method)
            if doing is None or route.op is Op.DIRECTORY_OBJECT:
                continue
            for rtype in route.types:
                if (rtype.name, doing) not in NOT_IN_GRAPH and not rtype.needs_for(doing):
                    missing.append(f"{rtype.name} {method} {doing}")
    assert not missing, missing


# -- sufficiency and minimality of `entra-gitops permissions` -------------------------------------------


class Recording(Emulator):
    """An emulator that remembers every 401 and 403 it answered, $batch sub-requests included."""

    def __init__(self, tenant: Tenant) -> None:
        super().__init__(tenant)
        self.refused: list[str] = []

    def handle(self, request: Request, request_id: str | None = None) -> Reply:
        reply = super().handle(request, request_id)
        if reply.status in (401, 403):
            self.refused.append(f"{reply.status} {request.method} {request.path}")
        return reply


def clone(tenant: Tenant) -> Tenant:
    """A private copy of a tenant's objects (the registry is immutable and shared)."""
    return copy.deepcopy(tenant, {id(tenant.registry): tenant.registry})


def roles(job: Job, types: Any = REGISTRY) -> tuple[str, ...]:
    return tuple(p for p, _ in permissions_for(types, job))


def granted(job: Job) -> tuple[str, ...]:
    """What `entra-gitops permissions` lists for the job, the optional ones (who changed it) included."""
    return roles(job) + tuple(p for p, _ in optional_permissions(job))


def cli_as(token: str, *args: Any) -> Result:
    """The real command line, in process, signing in to the loopback emulator with `token`."""
    return CliRunner().invoke(cli, [str(a) for a in args], env={ENV_LOCAL_TOKEN: token})


OSLO_UNIT = "5b3d1c9a-7e2f-4a8b-b6c4-0d9e1f2a3b4c"  # the Oslo office administrative unit


def make_drift(url: str) -> None:
    """An administrator's changes to every type recovery writes, through Graph with an opaque (admin) token."""
    with httpx.Client(base_url=url + "/", headers=ADMIN, timeout=30) as http:

        def write(method: str, path: str, body: Any = None) -> None:
            response = http.request(method, path, json=body)
            assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"

        write("PATCH", f"users/{KARI}", {"department": "Procurement"})
        write("PATCH", f"users/{NORA}", {"employeeLeaveDateTime": "2027-06-30T16:00:00Z"})
        write("DELETE", f"users/{HANNA}")
        write("POST", f"groups/{SG_FINANCE}/members/$ref", {"@odata.id": f"{url}/directoryObjects/{HENRIK}"})
        write("DELETE", f"groups/{PRIVILEGED}/members/{MAGNUS}/$ref")
        write("PATCH", f"groups/{ENGINEERING}", {"description": "Changed by an administrator"})
        write("PATCH", f"applications/{APPS['Contoso HR Portal']}", {"notes": "Changed"})
        write("DELETE", f"servicePrincipals/{GRAPH_SP}/appRoleAssignedTo/{ASSIGNMENT}")
        write("PATCH", f"oauth2PermissionGrants/{GRANT}", {"scope": "openid"})
        write("PATCH", f"identity/conditionalAccess/policies/{POLICY}", {"state": "disabled"})
        write(
            "PATCH",
            f"identity/conditionalAccess/namedLocations/{OSLO}",
            {"@odata.type": "#microsoft.graph.ipNamedLocation", "displayName": "Oslo head office"},
        )
        write(
            "PATCH", SMS, {"@odata.type": "#microsoft.graph.smsAuthenticationMethodConfiguration", "state": "enabled"}
        )
        write("PATCH", f"policies/authenticationStrengthPolicies/{STRENGTH}", {"description": "Changed"})
        write("PATCH", "policies/authorizationPolicy", {"blockMsolPowerShell": False})
        # A directory role removed (made again by the plan) and an administrative unit renamed.
        listed = http.get("roleManagement/directory/roleAssignments", params={"$filter": f"principalId eq '{KARI}'"})
        write("DELETE", f"roleManagement/directory/roleAssignments/{listed.json()['value'][0]['id']}")
        write("PATCH", f"directory/administrativeUnits/{OSLO_UNIT}", {"description": "Changed"})
        # Agent ID objects: their writes need Graph's Agent ID permissions beside the base type's.
        write("PATCH", f"servicePrincipals/{SPS['Contoso Sales Agent (Nordics)']}", {"accountEnabled": False})
        # The service principal update (in place of one of Contoso HR Portal's: three writes of ten service
        # principals stay within the 30% threshold).
        write("PATCH", f"servicePrincipals/{SPS['Contoso Sales Agent']}", {"notes": "Changed"})  # the blueprint's
        write("PATCH", f"applications/{APPS['Contoso Sales Agent']}", {"displayName": "Contoso Sales Agent v2"})
        blueprint = next(a["appId"] for a in SEED["applications"] if a["displayName"] == "Contoso Sales Agent")
        sponsor = [f"https://graph.microsoft.com/v1.0/users/{KARI}"]
        identity = {"displayName": "Made since", "agentIdentityBlueprintId": blueprint, "sponsors@odata.bind": sponsor}
        write("POST", "servicePrincipals/microsoft.graph.agentIdentity", identity)  # soft-deleted by the plan


@dataclass(frozen=True)
class Story:
    """A backup taken, drift made and a plan saved with the read identity's token, on a served emulator."""

    url: str
    app: Recording
    root: Path
    repo: Path
    plan: Path
    drifted: Tenant  # the tenant as the plan found it, copied for each apply
    written: frozenset[str]  # the types the plan writes
    plans: dict[str, Path] = field(default_factory=dict)  # one type's plan, made when a test first asks

    def plan_for(self, type_name: str) -> Path:
        """A plan of one type's writes (runs that prove one permission need not apply everything)."""
        if type_name not in self.plans:
            path = self.root / f"plan-{type_name}.json"
            args = ("plan", "--repo", self.repo, "--graph-url", self.url, "--type", type_name, "-o", path)
            planned = cli_as(jwt(*granted(Job.SNAPSHOT)), *args)
            assert planned.exit_code == 0 and json.loads(path.read_text())["writes"], planned.output
            self.plans[type_name] = path
        return self.plans[type_name]


@pytest.fixture(scope="module", autouse=True)
def unpaced() -> Iterator[None]:
    """No pacing of Conditional Access reads: these emulators do not throttle, and each paced read costs 1 s."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(limiter.DEFAULT_INTERVALS, ThrottleScope.CONDITIONAL_ACCESS, 0.0)  # type: ignore[index]
        yield


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    root = tmp_path_factory.mktemp("least-privilege")
    repo, plan = root / "state", root / "plan.json"
    reader = jwt(*granted(Job.SNAPSHOT))
    app = Recording(demo_tenant())
    with serving(app) as url:
        taken = cli_as(reader, "snapshot", "--repo", repo, "--graph-url", url)
        assert taken.exit_code == 0, taken.output
        make_drift(url)
        assert not app.refused
        compared = cli_as(reader, "diff", "--repo", repo, "--graph-url", url)
        assert compared.exit_code == 2, compared.output  # differences, every read allowed
        planned = cli_as(reader, "plan", "--repo", repo, "--graph-url", url, "-o", plan)
        assert planned.exit_code == 0, planned.output
        assert not app.refused, app.refused
        written = frozenset(w["type"] for w in json.loads(plan.read_text())["writes"])
        yield Story(url, app, root, repo, plan, clone(app.tenant), written)
        assert not app.refused, app.refused  # the one-type plans, made with the read identity too


@contextlib.contextmanager
def drifted_copy(story: Story, tmp_path: Path) -> Iterator[tuple[str, Recording, Path]]:
    """A served emulator holding the drifted tenant and a private copy of the repository, for one apply."""
    repo = tmp_path / "state"
    shutil.copytree(story.repo, repo, symlinks=True)
    app = Recording(clone(story.drifted))
    with serving(app) as url:
        yield url, app, repo


def apply_as(token: str, plan: Path, repo: Path, url: str) -> Result:
    return cli_as(token, "apply", plan, "--repo", repo, "--graph-url", url, "--auto-approve", "--write-rate", "1000")


def refused_by_graph(result: Result, app: Recording) -> bool:
    """The run failed, and it failed on Graph's 403 (not on anything else)."""
    return result.exit_code not in (0, 2) and bool(app.refused) and all(r.startswith("403") for r in app.refused)


def test_the_read_identitys_set_reads_everything(story: Story) -> None:
    """snapshot, diff and plan ran with exactly the snapshot set (the fixture asserts each), and nothing was refused."""
    recovered = {t.name for t in REGISTRY if any(n.access is Access.WRITE and n.listed for n in t.permissions)}
    assert story.written == recovered, "the drift must give the plan writes of every type recovery writes"
    assert not story.app.refused


def test_the_write_identitys_set_applies_the_plan(story: Story, tmp_path: Path) -> None:
    with drifted_copy(story, tmp_path) as (url, app, repo):
        applied = apply_as(jwt(*roles(Job.APPLY)), story.plan, repo, url)
        assert applied.exit_code == 0, applied.output
        assert not app.refused, app.refused
        # Recovery put the role-assignable group's member back, which only RoleManagement.ReadWrite.Directory allows.
        assert MAGNUS in app.tenant.members(("group", "members"), PRIVILEGED)
        after = cli_as(jwt(*granted(Job.SNAPSHOT)), "diff", "--repo", repo, "--graph-url", url)
        assert after.exit_code == 0, after.output


def _type_that_needs(permission: str, job: Job, candidates: Any) -> str:
    """A type whose run fails without `permission`: one of its needs (or every command's) has nothing else left."""
    granted = set(roles(job)) - {permission}
    for rtype in sorted(candidates, key=lambda t: (t.throttle_scope is ThrottleScope.CONDITIONAL_ACCESS, t.name)):
        if any(not (set(n.any_of) & granted) for _, n in needs_of([rtype], job)):
            return rtype.name
    raise AssertionError(f"no type needs {permission} for {job.value}")


@pytest.mark.parametrize("permission", roles(Job.SNAPSHOT))
def test_each_permission_of_the_read_set_is_needed(story: Story, permission: str, tmp_path: Path) -> None:
    type_name = _type_that_needs(permission, Job.SNAPSHOT, REGISTRY)
    app = Recording(clone(story.drifted))
    with serving(app) as url:
        token = jwt(*(set(roles(Job.SNAPSHOT)) - {permission}))
        result = cli_as(token, "snapshot", "--repo", tmp_path / "state", "--graph-url", url, "--type", type_name)
    assert refused_by_graph(result, app), (type_name, result.output, app.refused)
    assert "403" in result.output or FORBIDDEN in result.output, result.output


@pytest.mark.parametrize("permission", roles(Job.APPLY))
def test_each_permission_of_the_write_set_is_needed(story: Story, permission: str, tmp_path: Path) -> None:
    type_name = _type_that_needs(permission, Job.APPLY, [REGISTRY.get(n) for n in sorted(story.written)])
    plan = story.plan_for(type_name)
    with drifted_copy(story, tmp_path) as (url, app, repo):
        result = apply_as(jwt(*(set(roles(Job.APPLY)) - {permission})), plan, repo, url)
    assert refused_by_graph(result, app), (type_name, result.output, app.refused)
