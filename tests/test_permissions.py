"""The least-privilege Graph permissions: read from the schemas, read-only snapshots, and the command's output."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from entra_gitops.cli.main import cli
from entra_gitops.model.errors import SchemaError, UnknownTypeError
from entra_gitops.model.registry import (
    Scope,
    default_registry,
    load_registry,
    load_schema_file,
    parse_schema,
    schemas_dir,
)
from entra_gitops.workflow.permissions import (
    NEVER_GRANT,
    Access,
    Job,
    directory_roles_for,
    markdown_table,
    needs_of,
    permissions_for,
)

WRITE_PERMISSIONS = {
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.ReadWrite.Authorization",
    "RoleManagement.ReadWrite.Directory",
}


def names(granted: list[tuple[str, tuple[str, ...]]]) -> set[str]:
    return {permission for permission, _ in granted}


def all_needs(job: Job) -> list[Any]:
    return [need for _, need in needs_of(default_registry(), job)]


def test_every_schema_records_its_needs_with_their_sources() -> None:
    for rtype in default_registry():
        assert any(n.access is Access.READ for n in rtype.permissions), f"{rtype.name} has no read need"
        for need in rtype.permissions:
            assert need.reason.strip() and "\n" not in need.reason
            assert need.any_of and len(set(need.any_of)) == len(need.any_of)
            assert need.operations, (rtype.name, need.reason)
            assert need.note, f"{rtype.name}: {need.reason!r} names no Graph page"
        assert dataclasses.is_dataclass(rtype.permissions[0])
        with pytest.raises(dataclasses.FrozenInstanceError):
            rtype.permissions[0].reason = "changed"  # type: ignore[misc]


def test_types_that_recovery_writes_have_write_permissions() -> None:
    """A type with recoverable properties, links or soft delete lists a write need; one without, none."""
    for rtype in default_registry():
        writes = (
            rtype.recreate or rtype.soft_delete is not None or any(p.scope is Scope.RECOVER for p in rtype.properties)
        )
        has_write = any(n.access is Access.WRITE and n.listed for n in rtype.permissions)
        assert has_write == writes, rtype.name


def test_the_snapshot_set_only_reads() -> None:
    granted = permissions_for(default_registry(), Job.SNAPSHOT)
    assert granted, "a snapshot needs permissions"
    for permission, reasons in granted:
        assert ".ReadWrite." not in permission and "Write" not in permission, permission
        assert reasons
    assert {"Policy.Read.All"} <= names(granted)
    assert directory_roles_for(default_registry(), Job.SNAPSHOT) == []


def test_the_apply_set_holds_the_write_permissions_and_still_reads() -> None:
    registry = default_registry()
    granted = names(permissions_for(registry, Job.APPLY))
    assert granted >= WRITE_PERMISSIONS
    # Conditional Access writes need Policy.Read.All beside Policy.ReadWrite.ConditionalAccess.
    assert "Policy.Read.All" in granted
    # apply re-reads every type first: each read need is met by something in the apply set.
    for rtype in registry:
        for need in rtype.permissions:
            if need.listed:
                assert any(p in granted for p in need.any_of), (rtype.name, need.reason)


def test_every_need_is_met_and_nothing_is_redundant() -> None:
    registry = default_registry()
    for job in Job:
        granted = names(permissions_for(registry, job))
        needs = all_needs(job)
        for need in needs:
            assert any(p in granted for p in need.any_of), need.reason
        for permission in granted:
            rest = granted - {permission}
            assert not all(any(p in rest for p in n.any_of) for n in needs), f"{permission} is redundant for {job}"


def test_directory_read_write_all_never_appears() -> None:
    registry = default_registry()
    assert "Directory.ReadWrite.All" in NEVER_GRANT
    for rtype in registry:
        for need in rtype.permissions:
            assert "Directory.ReadWrite.All" not in need.any_of
    for job in Job:
        assert not names(permissions_for(registry, job)) & set(NEVER_GRANT)


def test_a_narrower_scope_gets_a_narrower_set() -> None:
    # Every command reads the organization first (the tenant check), whatever the scope.
    users = permissions_for(["user"], "snapshot")
    assert names(users) == {"User.Read.All", "User-LifeCycleInfo.Read.All", "Organization.Read.All"}
    methods = permissions_for(["authenticationMethodsPolicy"], "snapshot")
    assert names(methods) == {"Policy.Read.AuthenticationMethod", "Organization.Read.All"}
    assert names(permissions_for(["conditionalAccessPolicy"], "apply")) == {
        "Policy.Read.All",
        "Policy.ReadWrite.ConditionalAccess",
        "Organization.Read.All",
    }
    # Creating an app role assignment needs Application.Read.All beside AppRoleAssignment.ReadWrite.All.
    assert names(permissions_for(["appRoleAssignment"], "apply")) == {
        "AppRoleAssignment.ReadWrite.All",
        "Application.Read.All",
        "Organization.Read.All",
    }
    # Reading members alone takes the narrowest permission that reads groups with all their properties.
    assert names(permissions_for(["group"], "snapshot")) == {"Group.Read.All", "Organization.Read.All"}


def test_the_organization_read_comes_from_the_schema_as_every_commands_need() -> None:
    organization = default_registry().get("organization")
    (always,) = [n for n in organization.permissions if n.always]
    assert always.access is Access.READ and always.any_of[0] == "Organization.Read.All"
    for job in Job:
        assert any(name == "organization" and need is always for name, need in needs_of(["user"], job))


def test_role_assignable_memberships_need_role_management_for_apply_only() -> None:
    granted = dict(permissions_for(["group"], Job.APPLY))
    (reason,) = granted["RoleManagement.ReadWrite.Directory"]
    assert reason.startswith("group: ") and "role-assignable" in reason and "Privileged Role Administrator" in reason
    assert "Group.ReadWrite.All" in granted
    assert "RoleManagement.ReadWrite.Directory" not in names(permissions_for(["group"], Job.SNAPSHOT))
    need = next(n for n in default_registry().get("group").permissions if n.when)
    assert dict(need.when) == {"isAssignableToRole": True}
    assert {"members.add", "members.remove"} <= set(need.operations)


def test_writes_behind_a_directory_role_are_listed_apart() -> None:
    found = directory_roles_for(default_registry(), Job.APPLY)
    by_type = {(w.type_name, w.requirement.operations) for w in found}
    assert ("user", ("delete", "restore")) in by_type
    user_update = next(w for w in found if w.type_name == "user" and "update" in w.requirement.operations)
    assert "Privileged Authentication Administrator" in user_update.requirement.roles
    assert {"accountEnabled", "userPrincipalName"} <= set(user_update.requirement.properties)
    assert user_update.requirement.context == "any"
    group = next(w for w in found if w.type_name == "group")
    assert group.requirement.roles == ("Privileged Role Administrator",) and group.requirement.context == "delegated"
    # What binds the app-only identities comes before what binds a signed-in person.
    contexts = [w.requirement.context == "delegated" for w in found]
    assert contexts == sorted(contexts)
    assert "Privileged Authentication Administrator" in user_update.summary and "app-only" in user_update.summary


def test_reasons_name_the_type_and_the_table_renders_them() -> None:
    table = markdown_table(["group"], Job.APPLY)
    assert table.splitlines()[0] == "| application permission | why |"
    assert "`Group.ReadWrite.All`" in table and "group: " in table
    with pytest.raises(UnknownTypeError, match="notAType"):
        permissions_for(["notAType"], Job.SNAPSHOT)


# -- the annotation is data: a new type brings its own needs --------------------------------------------


def schema_copy(tmp_path: Path, name: str = "user") -> tuple[Path, dict[str, Any]]:
    path = tmp_path / f"{name}.schema.json"
    shutil.copy(schemas_dir() / f"{name}.schema.json", path)
    return path, json.loads(path.read_text(encoding="utf-8"))


def test_a_new_schema_brings_its_permissions_with_it(tmp_path: Path) -> None:
    path, raw = schema_copy(tmp_path)
    raw["x-entra-graph"]["x-entra-permissions"]["needs"][0]["anyOf"] = ["Example.Read.All"]
    path.write_text(json.dumps(raw), encoding="utf-8")
    (rtype,) = load_registry(tmp_path)
    assert "Example.Read.All" in names(permissions_for([rtype], Job.SNAPSHOT))


def test_a_schema_without_permissions_cannot_be_listed(tmp_path: Path) -> None:
    path, raw = schema_copy(tmp_path)
    del raw["x-entra-graph"]["x-entra-permissions"]
    (rtype,) = load_registry(_write(path, raw))
    assert rtype.permissions == () and rtype.directory_roles == ()
    with pytest.raises(SchemaError, match="no x-entra-permissions"):
        permissions_for([rtype], Job.SNAPSHOT)


def _write(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(json.dumps(raw), encoding="utf-8")
    return path.parent


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda p: p.update(needs=[]), "needs: must be a non-empty list"),
        (lambda p: p.update(extra=1), "must be an object with needs"),
        (lambda p: p["needs"][0].update(access="own"), "access: must be read or write"),
        (lambda p: p["needs"][0].update(anyOf=[]), "anyOf: must be a non-empty list"),
        (lambda p: p["needs"][0].update(anyOf=["A", "A"]), "anyOf: must hold distinct"),
        (lambda p: p["needs"][0].update(reason="two\nlines"), "reason: must be one line"),
        (lambda p: p["needs"][0].update(operations=["list", "fly"]), "unknown operation 'fly'"),
        (lambda p: p["needs"][0].update(operations=["update"]), "update not a read operation"),
        (lambda p: p["needs"][0].update(operations=["manager.list"]), "unknown operation 'manager.list'"),
        (lambda p: p["needs"][0].update(properties=["shoeSize"]), "shoeSize not a property"),
        (lambda p: p["needs"][0].update(when=[]), "when: must be a non-empty object"),
        (lambda p: p["needs"][0].update(always=True), "unknown key(s) always"),
        (lambda p: p["needs"][0].update(anyof=["X"]), "unknown key(s) anyof"),
        (lambda p: p["directoryRoles"][0].update(context="sometimes"), "context: must be one of"),
        (lambda p: p["directoryRoles"][0].update(operations=["list"]), "for writes only"),
    ],
)
def test_malformed_annotations_are_schema_errors(tmp_path: Path, change: Any, message: str) -> None:
    path, raw = schema_copy(tmp_path)
    change(raw["x-entra-graph"]["x-entra-permissions"])
    with pytest.raises(SchemaError) as error:
        parse_schema(path, json.loads(json.dumps(raw)))
    assert message in str(error.value) and "user.schema.json" in str(error.value)


def test_link_operations_name_link_properties() -> None:
    group = default_registry().get("group")
    assert group.needs_for("members.list") and group.needs_for("owners.list")
    assert parse_schema(group.schema_path, load_schema_file(group.schema_path)) == group


# -- the command --------------------------------------------------------------------------------------


def test_permissions_command_text(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["permissions", "--repo", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("snapshot: ")
    assert "\napply: " in text
    assert "  Policy.ReadWrite.ConditionalAccess\n" in text
    assert "      conditionalAccessPolicy: " in text
    assert "  RoleManagement.ReadWrite.Directory\n      group: add and remove members of role-assignable" in text
    assert "apply: writes Graph also puts behind a directory role" in text
    assert "  user: delete, restore of users who hold a privileged administrator role needs the role" in text
    assert "Never grant Directory.ReadWrite.All" in text

    only = CliRunner().invoke(cli, ["permissions", "--for", "snapshot", "--repo", str(tmp_path)])
    assert only.exit_code == 0, only.output
    assert "ReadWrite" not in only.output.replace("Directory.ReadWrite.All", "")
    assert "apply:" not in only.output and "behind a directory role" not in only.output


def test_permissions_command_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["permissions", "--for", "apply", "--format", "json", "--repo", str(tmp_path)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document["jobs"]) == {"apply"}
    assert set(document["scope"]) == set(default_registry().names)
    granted = {row["permission"]: row["reasons"] for row in document["jobs"]["apply"]}
    assert set(granted) == names(permissions_for(default_registry(), Job.APPLY))
    assert all(isinstance(r, list) and r for r in granted.values())
    assert document["neverGrant"][0]["permission"] == "Directory.ReadWrite.All"
    roles = document["directoryRoles"]
    assert {r["type"] for r in roles} == {"user", "group", "authorizationPolicy"}
    assert all(set(r) == {"type", "operations", "properties", "target", "roles", "context", "reason"} for r in roles)

    read_only = CliRunner().invoke(
        cli, ["permissions", "--for", "snapshot", "--format", "json", "--repo", str(tmp_path)]
    )
    assert json.loads(read_only.output)["directoryRoles"] == []


def test_permissions_command_refuses_a_broken_settings_file(tmp_path: Path) -> None:
    (tmp_path / "entra-gitops.yaml").write_text("retention: 5\nretention: 6\n")
    result = CliRunner().invoke(cli, ["permissions", "--repo", str(tmp_path)])
    assert result.exit_code == 1
    assert "entra-gitops.yaml" in result.output
