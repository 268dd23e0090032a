"""The least-privilege Graph permissions: every type covered, read-only snapshots, and the command's output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from entra_gitops.cli import cli
from entra_gitops.permissions import NEVER_GRANT, PERMISSIONS, Access, Job, markdown_table, permissions_for
from entra_gitops.registry import Scope, default_registry

WRITE_PERMISSIONS = {
    "User.ReadWrite.All",
    "Group.ReadWrite.All",
    "Application.ReadWrite.All",
    "AppRoleAssignment.ReadWrite.All",
    "DelegatedPermissionGrant.ReadWrite.All",
    "Policy.ReadWrite.ConditionalAccess",
    "Policy.ReadWrite.AuthenticationMethod",
    "Policy.ReadWrite.Authorization",
}


def names(granted: list[tuple[str, tuple[str, ...]]]) -> set[str]:
    return {permission for permission, _ in granted}


def test_every_registry_type_has_an_entry_and_nothing_else_does() -> None:
    registry = default_registry()
    assert set(PERMISSIONS) == set(registry.names)
    for rtype in registry:
        needs = PERMISSIONS[rtype.name]
        assert any(n.access is Access.READ for n in needs), f"{rtype.name} has no read permission"
        for need in needs:
            assert need.reason.strip() and "\n" not in need.reason
            assert need.any_of and len(set(need.any_of)) == len(need.any_of)


def test_types_that_recovery_writes_have_write_permissions() -> None:
    """A type with recoverable properties, links or soft delete needs a write permission; one without, none."""
    for rtype in default_registry():
        writes = (
            rtype.recreate or rtype.soft_delete is not None or any(p.scope is Scope.RECOVER for p in rtype.properties)
        )
        has_write = any(n.access is Access.WRITE for n in PERMISSIONS[rtype.name])
        assert has_write == writes, rtype.name


def test_the_snapshot_set_only_reads() -> None:
    granted = permissions_for(default_registry(), Job.SNAPSHOT)
    assert granted, "a snapshot needs permissions"
    for permission, reasons in granted:
        assert ".ReadWrite." not in permission and "Write" not in permission, permission
        assert reasons
    assert {"Policy.Read.All"} <= names(granted)


def test_the_apply_set_holds_the_write_permissions_and_still_reads() -> None:
    registry = default_registry()
    granted = names(permissions_for(registry, Job.APPLY))
    assert granted >= WRITE_PERMISSIONS
    # Conditional Access writes need Policy.Read.All beside Policy.ReadWrite.ConditionalAccess.
    assert "Policy.Read.All" in granted
    # apply re-reads every type first: each read need is met by something in the apply set.
    for name, needs in PERMISSIONS.items():
        for need in needs:
            assert any(p in granted for p in need.any_of), (name, need.reason)


def test_every_need_is_met_and_nothing_is_redundant() -> None:
    registry = default_registry()
    for job in Job:
        granted = names(permissions_for(registry, job))
        needs = [n for ns in PERMISSIONS.values() for n in ns if n.access in job.access]
        for need in needs:
            assert any(p in granted for p in need.any_of), need.reason
        for permission in granted:
            rest = granted - {permission}
            assert not all(any(p in rest for p in n.any_of) for n in needs), f"{permission} is redundant for {job}"


def test_directory_read_write_all_never_appears() -> None:
    registry = default_registry()
    assert "Directory.ReadWrite.All" in NEVER_GRANT
    for needs in PERMISSIONS.values():
        for need in needs:
            assert "Directory.ReadWrite.All" not in need.any_of
    for job in Job:
        assert not names(permissions_for(registry, job)) & set(NEVER_GRANT)


def test_a_narrower_scope_gets_a_narrower_set() -> None:
    users = permissions_for(["user"], "snapshot")
    assert names(users) == {"User.Read.All", "User-LifeCycleInfo.Read.All"}
    methods = permissions_for(["authenticationMethodsPolicy"], "snapshot")
    assert names(methods) == {"Policy.Read.AuthenticationMethod"}
    assert names(permissions_for(["conditionalAccessPolicy"], "apply")) == {
        "Policy.Read.All",
        "Policy.ReadWrite.ConditionalAccess",
    }


def test_reasons_name_the_type_and_the_table_renders_them() -> None:
    table = markdown_table(["group"], Job.APPLY)
    assert table.splitlines()[0] == "| application permission | why |"
    assert "`Group.ReadWrite.All`" in table and "group: " in table
    with pytest.raises(KeyError):
        permissions_for(["notAType"], Job.SNAPSHOT)


def test_permissions_command_text(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["permissions", "--repo", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.startswith("snapshot: ")
    assert "\napply: " in text
    assert "  Policy.ReadWrite.ConditionalAccess\n" in text
    assert "      conditionalAccessPolicy: " in text
    assert "Never grant Directory.ReadWrite.All" in text

    only = CliRunner().invoke(cli, ["permissions", "--for", "snapshot", "--repo", str(tmp_path)])
    assert only.exit_code == 0, only.output
    assert "ReadWrite" not in only.output.replace("Directory.ReadWrite.All", "")
    assert "apply:" not in only.output


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


def test_permissions_command_refuses_a_broken_settings_file(tmp_path: Path) -> None:
    (tmp_path / "entra-gitops.yaml").write_text("retention: 5\nretention: 6\n")
    result = CliRunner().invoke(cli, ["permissions", "--repo", str(tmp_path)])
    assert result.exit_code == 1
    assert "entra-gitops.yaml" in result.output
