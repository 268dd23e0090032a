"""The real msgraph-sdk cannot tell the emulator from Graph: typed calls work and every served object parses.

Typed calls go through `client.sdk` (msgraph-sdk's GraphServiceClient on the tool's own request adapter) over
httpx.ASGITransport. Served JSON is parsed with kiota's JSON parse node into msgraph's models, and every
property name is checked against Graph's v1.0 metadata (shared/graph/graph-v1.0-metadata.xml).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import SyncGraph, demo_seed, tenant_with_users, user_objects, with_graph
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_serialization_json.json_serialization_writer_factory import JsonSerializationWriterFactory
from msgraph.generated.models.administrative_unit import AdministrativeUnit
from msgraph.generated.models.app_role_assignment import AppRoleAssignment
from msgraph.generated.models.application import Application
from msgraph.generated.models.authentication_method_configuration import AuthenticationMethodConfiguration
from msgraph.generated.models.authentication_methods_policy import AuthenticationMethodsPolicy
from msgraph.generated.models.authentication_strength_policy import AuthenticationStrengthPolicy
from msgraph.generated.models.authorization_policy import AuthorizationPolicy
from msgraph.generated.models.conditional_access_policy import ConditionalAccessPolicy
from msgraph.generated.models.directory_object import DirectoryObject
from msgraph.generated.models.group import Group
from msgraph.generated.models.named_location import NamedLocation
from msgraph.generated.models.o_auth2_permission_grant import OAuth2PermissionGrant
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.organization import Organization
from msgraph.generated.models.reference_create import ReferenceCreate
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.models.unified_role_assignment import UnifiedRoleAssignment
from msgraph.generated.models.unified_role_definition import UnifiedRoleDefinition
from msgraph.generated.models.unified_role_eligibility_schedule_instance import UnifiedRoleEligibilityScheduleInstance
from msgraph.generated.models.user import User
from msgraph_core import PageIterator
from test_schema_metadata import GraphModel, graph_model, graph_name

from entra_gitops.emulator import Emulator
from entra_gitops.graph.client import BatchRequest, GraphClient
from entra_gitops.model.registry import default_registry

# msgraph-sdk's generated request builders warn about their own deprecated configuration classes on import.
pytestmark = [
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
]

REGISTRY = default_registry()
INGRID = "612d7050-db34-4834-96a9-fc94a9c226a7"
DELETED_USER = "ba46568c-c633-4163-ad2e-907effbb464b"
SG_FINANCE = "47469706-55e1-4537-a7f8-5bf63e58ff06"
KARI = "b4c45912-fe49-436c-a90e-b5df519c7319"  # member of SG-Finance
DIRECTORY_OBJECTS = "https://graph.microsoft.com/v1.0/directoryObjects"

MODELS: dict[str, type[Parsable]] = {
    "user": User,
    "group": Group,
    "application": Application,
    "servicePrincipal": ServicePrincipal,
    "appRoleAssignment": AppRoleAssignment,
    "oauth2PermissionGrant": OAuth2PermissionGrant,
    "conditionalAccessPolicy": ConditionalAccessPolicy,
    "namedLocation": NamedLocation,
    "authenticationMethodsPolicy": AuthenticationMethodsPolicy,
    "authenticationStrengthPolicy": AuthenticationStrengthPolicy,
    "authorizationPolicy": AuthorizationPolicy,
    "organization": Organization,
    "unifiedRoleAssignment": UnifiedRoleAssignment,
    "unifiedRoleDefinition": UnifiedRoleDefinition,
    "unifiedRoleEligibilityScheduleInstance": UnifiedRoleEligibilityScheduleInstance,
    "administrativeUnit": AdministrativeUnit,
}

# Keys Graph itself sends that a typed model has no property for: they land in additional_data.
ALLOWED_ADDITIONAL_DATA = {
    "@odata.context",  # the entity-level context URL of a single-object response
}

# Values Graph sends that msgraph-sdk's Python models drop on parsing (an SDK limitation, not the emulator's):
# kiota reads flag enums (authenticationMethodModes, authenticationStrengthRequirements) only one member at a
# time, so "password,sms" in allowedCombinations and requirementsSatisfied come back as null.
SDK_LOSSY_PATHS = ("requirementsSatisfied", "allowedCombinations[]")


# ---------------------------------------------------------------------------- helpers


def parse(raw: bytes, model: type[Parsable]) -> Any:
    """Parse Graph JSON bytes into a typed model as msgraph-sdk does."""
    return JsonParseNodeFactory().get_root_parse_node("application/json", raw).get_object_value(model)


def serialize(value: Parsable) -> Any:
    writer = JsonSerializationWriterFactory().get_serialization_writer("application/json")
    writer.write_object_value(None, value)
    return json.loads(writer.get_serialized_content())


def unknown_keys(value: Any, path: str = "") -> Iterator[str]:
    """Every additional_data key anywhere inside a parsed model, as a dotted path."""
    if isinstance(value, list):
        for item in value:
            yield from unknown_keys(item, path + "[]")
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for key in getattr(value, "additional_data", None) or {}:
            if not (path == "" and key in ALLOWED_ADDITIONAL_DATA):
                yield f"{path}.{key}" if path else key
        for field in dataclasses.fields(value):
            if field.name not in ("backing_store", "additional_data"):
                yield from unknown_keys(getattr(value, field.name), f"{path}.{field.name}" if path else field.name)


def _same_instant(a: Any, b: Any) -> bool:
    try:
        return dt.datetime.fromisoformat(a.replace("Z", "+00:00")) == dt.datetime.fromisoformat(
            b.replace("Z", "+00:00")
        )
    except (AttributeError, ValueError):
        return False


def lost_values(sent: Any, kept: Any, path: str = "") -> Iterator[str]:
    """Paths where a value the emulator sent did not survive parse-and-serialize through the typed model."""
    if isinstance(sent, dict):
        for key, value in sent.items():
            if key.startswith("@odata.") or value is None or value == []:
                continue
            here = f"{path}.{key}" if path else key
            yield from lost_values(value, kept.get(key) if isinstance(kept, dict) else None, here)
    elif isinstance(sent, list):
        if not isinstance(kept, list) or len(kept) != len(sent):
            yield path
            return
        for a, b in zip(sent, kept, strict=True):
            yield from lost_values(a, b, path + "[]")
    elif sent != kept and not _same_instant(sent, kept) and not path.endswith(SDK_LOSSY_PATHS):
        yield f"{path}: {sent!r} became {kept!r}"


def served_objects(api: SyncGraph, seed: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(type name, where, JSON object) for everything a tenant loaded from `seed` serves, type by type.

    Users are read twice: with Graph's default properties, and with every property the seed gives any user.
    """
    for rtype in REGISTRY:
        if rtype.singleton_path:
            yield rtype.name, rtype.singleton_path, api.get(rtype.singleton_path).json()
        elif rtype.parent is not None:
            assert rtype.collection
            for parent in api.list_all("servicePrincipals", params={"$select": "id"}):
                path = rtype.collection.replace("{" + rtype.parent.param + "}", parent["id"])
                for obj in api.list_all(path):
                    yield rtype.name, path, obj
        else:
            assert rtype.collection
            for obj in api.list_all(rtype.collection):
                yield rtype.name, rtype.collection, obj
            if rtype.item:
                first = api.list_all(rtype.collection, params={"$top": 1, "$select": "id"})[0]
                path = rtype.item.replace("{id}", first["id"])
                yield rtype.name, path, api.get(path).json()
        if rtype.soft_delete:
            for obj in api.list_all(rtype.soft_delete.list_path):
                yield rtype.name, rtype.soft_delete.list_path, obj
    every_user_property = sorted({k for u in seed["users"] for k in u})
    for obj in api.list_all("users", params={"$select": ",".join(every_user_property)}):
        yield "user", "users?$select=<every seeded property>", obj


def served_directory_objects(api: SyncGraph) -> Iterator[tuple[str, dict[str, Any]]]:
    """Group members and owners: directoryObject lists whose items carry their own @odata.type."""
    for group in api.list_all("groups", params={"$select": "id"}):
        for link in ("members", "owners"):
            path = f"groups/{group['id']}/{link}"
            for obj in api.list_all(path):
                yield path, obj


# ---------------------------------------------------------------------------- typed parsing


def test_every_registry_type_has_a_model():
    assert set(MODELS) == set(REGISTRY.names)


def test_every_served_object_parses_into_its_typed_model(api: SyncGraph):
    problems, counts = [], dict.fromkeys(MODELS, 0)
    for type_name, where, obj in served_objects(api, demo_seed()):
        counts[type_name] += 1
        model = parse(json.dumps(obj).encode(), MODELS[type_name])
        assert isinstance(model, MODELS[type_name])
        assert model.id == obj["id"]
        problems += [f"{where} {obj['id']}: unknown {key}" for key in unknown_keys(model)]
        problems += [f"{where} {obj['id']}: {lost}" for lost in lost_values(obj, serialize(model))]
    assert all(counts.values()), counts
    assert not problems, "\n".join(problems)


def test_named_locations_resolve_their_subtypes(api: SyncGraph):
    kinds = {}
    for obj in api.list_all("identity/conditionalAccess/namedLocations"):
        model = parse(json.dumps(obj).encode(), NamedLocation)
        kinds[obj["@odata.type"]] = type(model).__name__
    assert kinds == {
        "#microsoft.graph.ipNamedLocation": "IpNamedLocation",
        "#microsoft.graph.countryNamedLocation": "CountryNamedLocation",
    }


def test_authentication_method_configurations_parse_into_their_subtypes(api: SyncGraph):
    path = "policies/authenticationMethodsPolicy/authenticationMethodConfigurations"
    items = api.get(path).json()["value"]
    assert len(items) >= 8
    for obj in items:
        model = parse(json.dumps(obj).encode(), AuthenticationMethodConfiguration)
        assert type(model) is not AuthenticationMethodConfiguration, obj["@odata.type"]
        assert model.odata_type == obj["@odata.type"]
        assert not list(unknown_keys(model)), obj["id"]
        assert not list(lost_values(obj, serialize(model))), obj["id"]


def test_members_and_owners_parse_as_directory_objects_of_their_type(api: SyncGraph):
    seen = set()
    for where, obj in served_directory_objects(api):
        model = parse(json.dumps(obj).encode(), DirectoryObject)
        expected = {"#microsoft.graph.user": User, "#microsoft.graph.group": Group}[obj["@odata.type"]]
        assert type(model) is expected, where
        assert not list(unknown_keys(model)), (where, obj["id"])
        seen.add(expected)
    assert seen == {User, Group}


# ---------------------------------------------------------------------------- Graph metadata


@pytest.fixture(scope="module")
def metadata() -> GraphModel:
    return graph_model()


def undeclared(graph: GraphModel, type_name: str, value: Any, path: str) -> Iterator[str]:
    """Property names inside `value` that the Graph type (or the subtype its @odata.type names) lacks."""
    if isinstance(value, list):
        for item in value:
            yield from undeclared(graph, type_name, item, path + "[]")
        return
    if not isinstance(value, dict):
        return
    if isinstance(value.get("@odata.type"), str):
        type_name = graph_name(value["@odata.type"].lstrip("#"))
    if not graph.is_structured(type_name):
        yield f"{path}: {type_name} is not a Graph type"
        return
    for key, sub in value.items():
        if key.startswith("@"):
            continue
        found = graph.lookup(type_name, key)
        here = f"{path}.{key}" if path else key
        if found is None:
            yield f"{here}: no property {key!r} on {type_name}"
        elif graph.is_structured(found.type):
            yield from undeclared(graph, found.type, sub, here)


def test_every_served_property_exists_in_graph_metadata(api: SyncGraph, metadata: GraphModel):
    problems = []
    for type_name, where, obj in served_objects(api, demo_seed()):
        odata_type = graph_name(REGISTRY.get(type_name).odata_type)
        problems += [f"{where}: {p}" for p in undeclared(metadata, odata_type, obj, "")]
    for where, obj in served_directory_objects(api):
        problems += [f"{where}: {p}" for p in undeclared(metadata, "directoryObject", obj, "")]
    assert not problems, "\n".join(sorted(set(problems)))


# ---------------------------------------------------------------------------- typed SDK calls


def test_page_iterator_collects_every_user():
    app = Emulator(tenant_with_users(250))

    # Imported here: the module's own deprecation warnings then fall under this file's filter.
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder

    async def work(client: GraphClient) -> list[User]:
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(top=100, select=["id", "displayName"])
        first = await client.sdk.users.get(request_configuration=RequestConfiguration(query_parameters=query))
        assert first is not None and len(first.value) == 100 and first.odata_next_link
        collected: list[User] = []
        iterator = PageIterator(first, client.adapter)
        await iterator.iterate(lambda user: collected.append(user) or True)
        return collected

    users = with_graph(app, work)
    assert len(users) == 250 and all(isinstance(u, User) for u in users)
    assert {u.id for u in users} == {u["id"] for u in user_objects(250)}
    assert app.request_count == 3


def test_typed_group_create_and_member_reference(emulator: Emulator):
    async def work(client: GraphClient) -> tuple[Group, list[Any]]:
        sdk = client.sdk
        group = Group(
            display_name="SDK group",
            mail_enabled=False,
            mail_nickname="sdk-group",
            security_enabled=True,
            group_types=[],
        )
        created = await sdk.groups.post(group)
        assert created is not None and created.id
        await sdk.groups.by_group_id(created.id).members.ref.post(
            ReferenceCreate(odata_id=f"{DIRECTORY_OBJECTS}/{INGRID}")
        )
        members = await sdk.groups.by_group_id(created.id).members.get()
        fetched = await sdk.groups.by_group_id(created.id).get()
        return fetched, members.value

    group, members = with_graph(emulator, work)
    assert isinstance(group, Group) and group.display_name == "SDK group" and group.security_enabled is True
    assert group.created_date_time is not None
    assert (
        [type(m) for m in members] == [User] and members[0].id == INGRID and members[0].display_name == "Ingrid Nilsen"
    )
    raw = SyncGraph(emulator).get(f"groups/{group.id}").json()
    assert "@odata.type" not in raw, "Graph does not echo the base type of a plain entity"


def test_typed_soft_delete_list_and_restore(emulator: Emulator):
    async def work(client: GraphClient) -> tuple[set[str], Any, set[str]]:
        sdk = client.sdk
        await sdk.users.by_user_id(INGRID).delete()
        deleted = await sdk.directory.deleted_items.graph_user.get()
        restored = await sdk.directory.deleted_items.by_directory_object_id(INGRID).restore.post()
        after = await sdk.directory.deleted_items.graph_user.get()
        return {u.id for u in deleted.value}, restored, {u.id for u in after.value}

    deleted, restored, after = with_graph(emulator, work)
    assert deleted == {INGRID, DELETED_USER}
    assert isinstance(restored, User) and restored.id == INGRID and restored.display_name == "Ingrid Nilsen"
    assert after == {DELETED_USER}


def test_typed_error_parses_as_odata_error(emulator: Emulator):
    async def work(client: GraphClient) -> ODataError:
        try:
            await client.sdk.users.by_user_id("00000000-0000-4000-8000-00000000dead").get()
        except ODataError as error:
            return error
        raise AssertionError("a missing user must raise ODataError")

    error = with_graph(emulator, work)
    assert error.response_status_code == 404
    assert error.error.code == "Request_ResourceNotFound" and error.error.message
    inner = error.error.inner_error
    assert inner.request_id and inner.client_request_id and inner.date is not None


def test_typed_delta_round_trip(emulator: Emulator):
    async def work(client: GraphClient) -> tuple[list[User], list[User]]:
        builder = client.sdk.users.delta
        config = RequestConfiguration()
        config.headers.add("Prefer", "odata.maxpagesize=10")
        page = await builder.get(request_configuration=config)
        first_round = list(page.value)
        while page.odata_next_link:
            page = await builder.with_url(page.odata_next_link).get()
            first_round += page.value
        assert page.odata_delta_link
        await client.sdk.users.by_user_id(INGRID).patch(User(job_title="Chair of the board"))
        await client.sdk.users.by_user_id(KARI).delete()
        changes = await builder.with_url(page.odata_delta_link).get()
        assert changes.odata_delta_link and not changes.odata_next_link
        return first_round, changes.value

    first_round, changes = with_graph(emulator, work)
    assert len(first_round) == len(demo_seed()["users"]) == len({u.id for u in first_round})
    by_id = {u.id: u for u in changes}
    assert set(by_id) == {INGRID, KARI}
    assert by_id[INGRID].job_title == "Chair of the board" and "@removed" not in by_id[INGRID].additional_data
    assert by_id[KARI].additional_data["@removed"] == {"reason": "changed"}


def test_batch_through_the_tool_client(emulator: Emulator):
    # msgraph-core 1.5.x's BatchRequestBuilder cannot be imported without the `deprecated` package (not a
    # dependency) and serialises depends_on instead of dependsOn, so the batch goes through GraphClient.batch.
    async def work(client: GraphClient) -> dict[str, Any]:
        return await client.batch(
            [
                BatchRequest("1", "PATCH", f"users/{INGRID}", body={"jobTitle": "Chair"}),
                BatchRequest("2", "GET", f"users/{INGRID}?$select=jobTitle", depends_on=("1",)),
                BatchRequest("3", "GET", "users/00000000-0000-4000-8000-00000000dead"),
                BatchRequest("4", "GET", f"groups/{SG_FINANCE}/members?$select=id"),
            ]
        )

    answers = with_graph(emulator, work)
    assert answers["1"].status == 204
    assert answers["2"].status == 200 and answers["2"].json()["jobTitle"] == "Chair"
    assert answers["3"].status == 404 and answers["3"].json()["error"]["code"] == "Request_ResourceNotFound"
    assert answers["4"].status == 200 and len(answers["4"].json()["value"]) == 3
