"""entra-gitops.yaml: defaults, every setting, each kind of mistake at file:line:column, and recording the tenant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from entra_gitops.model.errors import ConfigError
from entra_gitops.model.registry import default_registry, schemas_dir
from entra_gitops.model.settings import (
    CONFIG_FILE,
    DEFAULT_CONFIG_TEXT,
    SCHEMA_FILE,
    BreakGlassEntry,
    Config,
    ConfigFileError,
    Protected,
    SafetySettings,
    config_problems,
    load_config,
    parse_config,
    set_tenant_id,
)
from entra_gitops.workflow.scaffold import scaffold_files

TENANT = "8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
OTHER_TENANT = "11111111-2222-4333-8444-555555555555"
USER_ID = "8d3b6f0a-0000-4000-8000-000000000001"
STRENGTH_ID = "00000000-0000-0000-0000-000000000004"


def write(root: Path, text: str) -> Path:
    (root / CONFIG_FILE).write_text(text, encoding="utf-8")
    return root / CONFIG_FILE


def refusal(root: Path, text: str) -> str:
    path = write(root, text)
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    message = str(caught.value)
    assert message.startswith(f"{path}:"), message
    return message[len(str(path)) :]


# -- defaults -----------------------------------------------------------------------------------


def test_a_missing_file_means_the_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config == Config()
    assert (config.retention, config.empty_read_guard, config.shrink_guard) == (5, 5, 0.5)
    assert (config.safety.share, config.safety.minimum_objects) == (0.3, 10)
    assert config.tenant_id is None and config.break_glass == () and config.safety.protected == ()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n  # and another\n\n"])
def test_an_empty_or_comments_only_file_means_the_defaults(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    assert load_config(tmp_path) == Config()


def test_empty_lists_and_mappings_mean_none(tmp_path: Path) -> None:
    write(tmp_path, "thresholds:\n  perType:\nprotected:\nbreakGlass:\n")
    assert load_config(tmp_path) == Config()


# -- every setting --------------------------------------------------------------------------------


def test_every_setting_is_read(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"""\
tenantId: {TENANT.upper()}
graphUrl: http://127.0.0.1:8080/v1.0
retention: 7
emptyReadGuard: 0
shrinkGuard: 1
thresholds:
  share: 0.25
  minimumObjects: 3
  perType:
    conditionalAccessPolicy: 0.1
    user: 1
protected:
  - type: user
    id: {USER_ID.upper()}
  - type: conditionalAccessPolicy
    displayName: Block legacy authentication
  - id: not-a-guid-AbC==
breakGlass:
  - {USER_ID.upper()}
  - account: breakglass2@Contoso.onmicrosoft.com
    satisfies: [mfa, compliantDevice, {STRENGTH_ID.upper()}]
  - account: breakglass3@contoso.onmicrosoft.com
""",
    )
    config = load_config(tmp_path)
    assert config == Config(
        retention=7,
        tenant_id=TENANT,
        graph_url="http://127.0.0.1:8080/v1.0",
        empty_read_guard=0,
        safety=SafetySettings(
            share=0.25,
            minimum_objects=3,
            per_type=(("conditionalAccessPolicy", 0.1), ("user", 1.0)),
            protected=(
                Protected("user", USER_ID, None),
                Protected("conditionalAccessPolicy", None, "Block legacy authentication"),
                Protected(None, "not-a-guid-AbC==", None),  # only GUIDs are folded: other ids are case-sensitive
            ),
        ),
        shrink_guard=1.0,
        break_glass=(
            BreakGlassEntry(USER_ID, frozenset()),
            BreakGlassEntry("breakglass2@Contoso.onmicrosoft.com", frozenset({"mfa", "compliantDevice", STRENGTH_ID})),
            BreakGlassEntry("breakglass3@contoso.onmicrosoft.com", frozenset()),
        ),
    )
    assert isinstance(config.shrink_guard, float) and isinstance(config.safety.share_for("user"), float)
    assert config.safety.share_for("conditionalAccessPolicy") == 0.1
    assert config.safety.share_for("group") == 0.25


def test_protected_entries_match_and_describe_as_before() -> None:
    by_id = Protected("user", USER_ID, None)
    by_name = Protected("conditionalAccessPolicy", None, "Block legacy authentication")
    assert by_id.matches("user", USER_ID.upper(), None)
    assert not by_id.matches("group", USER_ID, None)
    assert by_name.matches("conditionalAccessPolicy", "anything", "Block legacy authentication")
    assert not by_name.matches("conditionalAccessPolicy", "anything", "Block Legacy Authentication")
    assert by_id.describe() == f"listed under protected in {CONFIG_FILE} by id {USER_ID}"
    assert by_name.describe() == f"listed under protected in {CONFIG_FILE} by name 'Block legacy authentication'"


# -- mistakes -------------------------------------------------------------------------------------


def test_an_unknown_setting_is_refused_with_the_closest_name(tmp_path: Path) -> None:
    message = refusal(tmp_path, "retention: 5\ntresholds:\n  share: 0.2\n")
    assert message == ":2:1: tresholds: unknown setting; did you mean 'thresholds'?"


def test_an_unknown_nested_setting_points_at_its_key(tmp_path: Path) -> None:
    message = refusal(tmp_path, "thresholds:\n  share: 0.2\n  minimumObject: 3\n")
    assert message == ":3:3: thresholds.minimumObject: unknown setting; did you mean 'minimumObjects'?"


def test_an_unknown_setting_without_a_close_name_lists_the_known_ones(tmp_path: Path) -> None:
    message = refusal(tmp_path, "scope: [user]\n")
    assert message.startswith(":1:1: scope: unknown setting; known here: tenantId, graphUrl, retention")


def test_an_unknown_type_in_per_type_is_refused_at_its_key(tmp_path: Path) -> None:
    message = refusal(tmp_path, "thresholds:\n  perType:\n    user: 0.5\n    conditionalAccesPolicy: 0.2\n")
    assert message == (
        ":4:5: thresholds.perType.conditionalAccesPolicy: unknown resource type 'conditionalAccesPolicy'; "
        "did you mean 'conditionalAccessPolicy'?"
    )


def test_an_unknown_protected_type_is_refused_at_its_value(tmp_path: Path) -> None:
    message = refusal(tmp_path, f"protected:\n  - type: usr\n    id: {USER_ID}\n")
    assert message == ":2:11: protected[0].type: unknown resource type 'usr'; did you mean 'user'?"


def test_a_protected_entry_needs_an_id_or_a_display_name(tmp_path: Path) -> None:
    message = refusal(tmp_path, f"protected:\n  - id: {USER_ID}\n  - type: user\n")
    assert message == ":3:5: protected[1]: needs 'id' or 'displayName'"


def test_a_protected_entry_must_be_a_mapping(tmp_path: Path) -> None:
    message = refusal(tmp_path, f"protected:\n  - {USER_ID}\n")
    assert message == (
        f":2:5: protected[0]: must be a mapping with an id or a displayName, and optionally a type, not '{USER_ID}'"
    )


def test_a_share_above_one_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "thresholds:\n  share: 1.5\n")
    assert message == ":2:10: thresholds.share: must be a share between 0 and 1, like 0.3, not 1.5"


def test_a_per_type_share_is_checked_too(tmp_path: Path) -> None:
    message = refusal(tmp_path, "thresholds:\n  perType:\n    user: -0.1\n")
    assert message == ":3:11: thresholds.perType.user: must be a share between 0 and 1, like 0.3, not -0.1"


@pytest.mark.parametrize(
    ("value", "shown"), [("0", "0"), ("yes", "'yes'"), ("true", "true"), ("2.5", "2.5"), ("'5'", "'5'")]
)
def test_retention_must_be_a_whole_number_of_at_least_one(tmp_path: Path, value: str, shown: str) -> None:
    message = refusal(tmp_path, f"# settings\nretention: {value}\n")
    assert message == f":2:12: retention: must be a whole number, at least 1, not {shown}"


def test_an_empty_value_is_refused_at_its_key(tmp_path: Path) -> None:
    message = refusal(tmp_path, "retention: 5\nshrinkGuard:\n")
    assert message == ":2:1: shrinkGuard: must be a share above 0 and at most 1, like 0.5, not an empty value"


def test_the_shrink_guard_must_be_a_share_above_zero(tmp_path: Path) -> None:
    assert refusal(tmp_path, "shrinkGuard: 0\n").startswith(":1:14: shrinkGuard: must be a share above 0")
    assert refusal(tmp_path, "shrinkGuard: 1.1\n").startswith(":1:14: shrinkGuard: must be a share above 0")


def test_the_tenant_id_must_be_a_guid(tmp_path: Path) -> None:
    message = refusal(tmp_path, "tenantId: not-a-guid\n")
    assert message == ":1:11: tenantId: must be a GUID like 8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b, not 'not-a-guid'"


def test_a_break_glass_number_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "breakGlass:\n  - 12345\n")
    assert message == (
        ":2:5: breakGlass[0]: must be a user's object id or user principal name, or a mapping with account and "
        "satisfies, not 12345"
    )


def test_a_break_glass_account_must_look_like_an_id_or_a_upn(tmp_path: Path) -> None:
    message = refusal(tmp_path, "breakGlass:\n  - breakglass1\n")
    assert message == (
        ":2:5: breakGlass[0]: must be a user's object id (a GUID) or user principal name (name@domain), "
        "not 'breakglass1'"
    )


def test_an_unknown_grant_control_is_refused_with_the_closest_one(tmp_path: Path) -> None:
    message = refusal(tmp_path, "breakGlass:\n  - account: bg@contoso.com\n    satisfies: [mfa, compliantDevise]\n")
    assert message.startswith(":3:22: breakGlass[0].satisfies[1]: must be a grant control (mfa, compliantDevice")
    assert message.endswith("not 'compliantDevise'; did you mean 'compliantDevice'?")
    assert refusal(tmp_path, "breakGlass:\n  - account: bg@contoso.com\n    satisfies: [MFA]\n").endswith(
        "not 'MFA'; did you mean 'mfa'?"
    )


def test_a_break_glass_mapping_needs_an_account(tmp_path: Path) -> None:
    message = refusal(tmp_path, "breakGlass:\n  - satisfies: [mfa]\n")
    assert message == ":2:5: breakGlass[0]: 'account' is missing: a user's object id or user principal name"


def test_an_unknown_key_in_a_break_glass_mapping_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, "breakGlass:\n  - account: bg@contoso.com\n    satisfy: [mfa]\n")
    assert message == ":3:5: breakGlass[0].satisfy: unknown setting; did you mean 'satisfies'?"


def test_a_duplicate_key_is_refused_by_the_strict_loader(tmp_path: Path) -> None:
    message = refusal(tmp_path, "retention: 5\nthresholds:\n  share: 0.2\n  share: 0.3\n")
    assert message == ":4:3: duplicate key 'share'"


def test_a_top_level_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    assert refusal(tmp_path, "# settings\n- retention: 5\n").startswith(":2:1: the top level must be a mapping")
    assert refusal(tmp_path, "5\n").startswith(":1:1: the top level must be a mapping")


def test_the_first_mistake_in_file_order_is_raised_and_every_one_is_listed(tmp_path: Path) -> None:
    path = write(tmp_path, "tenantId: nope\nretention: 0\nprotected:\n  - type: usr\n    id: x\n")
    with pytest.raises(ConfigFileError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == (
        f"{path}:1:11: tenantId: must be a GUID like 8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b, not 'nope' "
        "(and 2 more problems in this file)"
    )
    assert (caught.value.line, caught.value.column) == (1, 11)
    assert [str(p) for p in config_problems(path.read_bytes(), str(path))] == [
        f"{path}:1:11: tenantId: must be a GUID like 8d3b6f0a-1c2d-4e5f-8a9b-0c1d2e3f4a5b, not 'nope'",
        f"{path}:2:12: retention: must be a whole number, at least 1, not 0",
        f"{path}:4:11: protected[0].type: unknown resource type 'usr'; did you mean 'user'?",
    ]


# -- the schema -----------------------------------------------------------------------------------


def test_the_schema_is_valid_and_not_taken_for_a_resource_type() -> None:
    schema = json.loads((schemas_dir() / SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    registry = default_registry()
    assert "user" in registry and "conditionalAccessPolicy" in registry
    assert all(t.schema_path.parent == schemas_dir() for t in registry)


# -- the files entra-gitops writes ----------------------------------------------------------------


def test_the_default_settings_load_and_document_the_guards(tmp_path: Path) -> None:
    write(tmp_path, DEFAULT_CONFIG_TEXT)
    assert load_config(tmp_path) == Config()
    for words in ("shrinkGuard", "emptyReadGuard", "breakGlass", "--accept-shrink", "--allow-lockout", "exit 3"):
        assert words in DEFAULT_CONFIG_TEXT, words


def test_the_settings_init_writes_load(tmp_path: Path) -> None:
    text = scaffold_files(TENANT, None, None, "main")[CONFIG_FILE]
    write(tmp_path, text)
    config = load_config(tmp_path)
    assert config.tenant_id == TENANT and config.retention == 5 and config.safety == SafetySettings()
    for words in ("shrinkGuard", "emptyReadGuard", "breakGlass", "--accept-shrink", "--allow-lockout", "never --force"):
        assert words in text, words


def test_every_commented_example_loads_when_uncommented(tmp_path: Path) -> None:
    example = re.compile(r"^(\s*)# ((?:emptyReadGuard|shrinkGuard|graphUrl|perType|protected|breakGlass):|  )", re.M)
    for text in (DEFAULT_CONFIG_TEXT, scaffold_files(TENANT, None, None, "main")[CONFIG_FILE]):
        write(tmp_path, example.sub(r"\1\2", text))
        config = load_config(tmp_path)
        assert config.shrink_guard == 0.5 and config.empty_read_guard == 5
        assert config.safety.share_for("conditionalAccessPolicy") == 0.2
        assert [p.type_name for p in config.safety.protected] == ["user", "conditionalAccessPolicy"]
        assert config.break_glass == (
            BreakGlassEntry("00000000-0000-0000-0000-000000000000"),
            BreakGlassEntry("breakglass2@contoso.onmicrosoft.com", frozenset({"mfa"})),
        )


# -- set_tenant_id --------------------------------------------------------------------------------


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_set_tenant_id_adds_it_to_the_default_settings_and_keeps_every_line(tmp_path: Path) -> None:
    updated = set_tenant_id(DEFAULT_CONFIG_TEXT.encode(), TENANT.upper(), "entra-gitops.yaml").decode()
    added = [line for line in updated.splitlines() if line not in DEFAULT_CONFIG_TEXT.splitlines()]
    assert added == ["# The tenant backed up here, recorded by the first snapshot.", f"tenantId: {TENANT}"]
    assert [line for line in updated.splitlines() if line not in added and line] == [
        line for line in DEFAULT_CONFIG_TEXT.splitlines() if line
    ]
    assert updated.index("tenantId") < updated.index("retention:")  # after the file's own heading, before the rest
    write(tmp_path, updated)
    assert load_config(tmp_path) == Config(tenant_id=TENANT)


def test_set_tenant_id_replaces_the_one_init_wrote_and_changes_nothing_else(tmp_path: Path) -> None:
    text = scaffold_files(TENANT, None, None, "main")[CONFIG_FILE]
    updated = set_tenant_id(text.encode(), OTHER_TENANT, "entra-gitops.yaml").decode()
    assert updated == text.replace(f"tenantId: '{TENANT}'", f"tenantId: '{OTHER_TENANT}'")
    assert comments(updated) == comments(text)
    write(tmp_path, updated)
    assert load_config(tmp_path).tenant_id == OTHER_TENANT


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (f"tenantId: {TENANT}\n", f"tenantId: {OTHER_TENANT}\n"),
        (f'retention: 3\ntenantId: "{TENANT}"   # mine\n', f'retention: 3\ntenantId: "{OTHER_TENANT}"   # mine\n'),
        (f"tenantId: {TENANT} # old\n", f"tenantId: {OTHER_TENANT} # old\n"),
    ],
)
def test_set_tenant_id_replaces_a_value_in_its_own_style(before: str, after: str) -> None:
    assert set_tenant_id(before.encode(), OTHER_TENANT, CONFIG_FILE).decode() == after


def test_set_tenant_id_on_an_empty_or_comments_only_file(tmp_path: Path) -> None:
    empty = set_tenant_id(b"", TENANT, CONFIG_FILE).decode()
    assert empty == f"# The tenant backed up here, recorded by the first snapshot.\ntenantId: {TENANT}\n"
    commented = set_tenant_id(b"# my notes", TENANT, CONFIG_FILE).decode()
    assert commented.startswith("# my notes\n\n") and commented.endswith(f"tenantId: {TENANT}\n")
    for text in (empty, commented):
        write(tmp_path, text)
        assert load_config(tmp_path) == Config(tenant_id=TENANT)


def test_set_tenant_id_keeps_comments_in_other_shapes() -> None:
    flow = "# flow style\n{retention: 3}  # three\n"
    assert set_tenant_id(flow.encode(), TENANT, CONFIG_FILE).decode() == (
        f"# flow style\n{{tenantId: {TENANT}, retention: 3}}  # three\n"
    )
    assert set_tenant_id(b"{}\n", TENANT, CONFIG_FILE).decode() == f"{{tenantId: {TENANT} }}\n"
    flow_with_tenant = f"{{tenantId: {TENANT}, retention: 3}}  # three\n"
    assert set_tenant_id(flow_with_tenant.encode(), OTHER_TENANT, CONFIG_FILE).decode() == (
        f"{{tenantId: {OTHER_TENANT}, retention: 3}}  # three\n"
    )
    # A value in a block scalar is past a one-line edit: ruamel's round trip rewrites it, keeping the comments.
    block = f"# heading\ntenantId: |-\n  {TENANT}\nretention: 3  # three\n"
    updated = set_tenant_id(block.encode(), OTHER_TENANT, CONFIG_FILE).decode()
    assert "# heading\n" in updated and "# three\n" in updated
    assert parse_config(updated.encode(), CONFIG_FILE) == Config(retention=3, tenant_id=OTHER_TENANT)


def test_set_tenant_id_adds_it_at_the_settings_indent() -> None:
    updated = set_tenant_id(b"  retention: 3\n  graphUrl: http://x\n", TENANT, CONFIG_FILE).decode()
    assert f"  tenantId: {TENANT}\n" in updated and "  retention: 3\n" in updated


def test_set_tenant_id_refuses_what_is_not_a_tenant_id_or_not_yaml() -> None:
    with pytest.raises(ConfigError, match="a tenant id is a GUID"):
        set_tenant_id(b"", "contoso.onmicrosoft.com", CONFIG_FILE)
    with pytest.raises(ConfigError, match=r"entra-gitops.yaml:2:1: duplicate key 'retention'"):
        set_tenant_id(b"retention: 1\nretention: 2\n", TENANT, CONFIG_FILE)
