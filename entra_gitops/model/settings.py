"""entra-gitops.yaml: a state repository's settings, checked against one JSON Schema, each mistake at file:line:column.

The schema is `schemas/settings/entra-gitops.schema.json`. Resource type names are not in it: the registry's
names are added where the schema says `x-entra-type-name`, so a misspelt type is a schema error like any other.
"""

from __future__ import annotations

import difflib
import functools
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from entra_gitops.model import canonical
from entra_gitops.model.errors import ConfigError, StateFileError
from entra_gitops.model.ids import fold_id, is_guid
from entra_gitops.model.registry import Registry, default_registry, schemas_dir

CONFIG_FILE = "entra-gitops.yaml"
SCHEMA_FILE = Path("settings") / "entra-gitops.schema.json"
TENANTS_SCHEMA_FILE = Path("settings") / "tenants.schema.json"  # a fleet's tenants.yaml (workflow/fleet.py)
DEFAULT_RETENTION = 5
# The shrink and empty-read guards only judge types that had at least this many objects in the last complete backup.
DEFAULT_EMPTY_READ_GUARD = 5
# A snapshot where a type's live objects shrink by more than this share is a suspect read.
DEFAULT_SHRINK_GUARD = 0.5
DEFAULT_SHARE = 0.30
DEFAULT_MINIMUM_OBJECTS = 10

DEFAULT_CONFIG_TEXT = f"""\
# entra-gitops settings for this state repository. Every key is optional; a mistake is refused
# with its line and column. The first snapshot adds tenantId, the tenant it read.

# How many complete backup tags to keep; older tags are removed, their commits stay in history.
retention: {DEFAULT_RETENTION}

# A snapshot in which a type that had at least emptyReadGuard objects in the last complete backup
# reads empty, or shrinks by more than shrinkGuard (a share), is a suspect read: exit 1, no commit,
# no tag. `entra-gitops snapshot --accept-shrink TYPE` takes it anyway, when the objects really are gone.
# emptyReadGuard: {DEFAULT_EMPTY_READ_GUARD}
# shrinkGuard: {DEFAULT_SHRINK_GUARD}

# A plan that changes more than this share of a type (with at least minimumObjects objects) is
# refused (exit 3) unless --force.
thresholds:
  share: {DEFAULT_SHARE}
  minimumObjects: {DEFAULT_MINIMUM_OBJECTS}
  # perType:
  #   conditionalAccessPolicy: 0.2

# Objects no plan may touch unless --force, by object id or by display name. A display name is
# resolved to object ids when the plan is made, in the backup and in the live tenant, so renaming
# the object does not unprotect it. It covers every write, group membership changes included.
# protected:
#   - type: user
#     id: 00000000-0000-0000-0000-000000000000
#   - type: conditionalAccessPolicy
#     displayName: Block legacy authentication

# Break-glass (emergency access) accounts, by object id or user principal name. A plan that would
# leave one unable to sign in under Conditional Access is refused (exit 3); only --allow-lockout
# overrides that, never --force. `satisfies` lists the grant controls the account can meet: mfa,
# compliantDevice, domainJoinedDevice, approvedApplication, compliantApplication, passwordChange,
# or an authentication strength policy id.
# breakGlass:
#   - 00000000-0000-0000-0000-000000000000
#   - account: breakglass2@contoso.onmicrosoft.com
#     satisfies: [mfa]

# Sign every backup tag with git's own signing (ssh or gpg), using git's user.signingkey. `entra-gitops
# verify` then proves each backup unaltered (ssh signatures against .entra-gitops/allowed_signers),
# and diff, plan and apply refuse a backup that fails it unless --no-verify.
# signing: ssh
"""


@dataclass(frozen=True)
class Protected:
    """An object no plan may touch without --force: by id, or by display name (a named CA policy)."""

    type_name: str | None
    object_id: str | None
    display_name: str | None

    def matches(self, type_name: str, object_id: str, display: str | None) -> bool:
        """Whether this entry names the object: by id when it has one, else by display name."""
        if self.type_name and self.type_name != type_name:
            return False
        if self.object_id:
            return self.object_id.lower() == object_id.lower()
        return self.display_name is not None and self.display_name == display

    def describe(self) -> str:
        """Where the protection comes from, for a refusal's message."""
        what = f"id {self.object_id}" if self.object_id else f"name {self.display_name!r}"
        return f"listed under protected in {CONFIG_FILE} by {what}"


@dataclass(frozen=True)
class BreakGlassEntry:
    """An emergency access account (object id or user principal name) and the grant controls it can meet."""

    account: str
    satisfies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SafetySettings:
    """How much of a type a plan may change, and what it may never touch, without --force."""

    share: float = DEFAULT_SHARE
    minimum_objects: int = DEFAULT_MINIMUM_OBJECTS
    per_type: tuple[tuple[str, float], ...] = ()
    protected: tuple[Protected, ...] = ()

    def share_for(self, type_name: str) -> float:
        """The share of `type_name` a plan may change: its perType entry, else the general share."""
        return dict(self.per_type).get(type_name, self.share)


@dataclass(frozen=True)
class Config:
    """The settings in force for one state repository."""

    retention: int = DEFAULT_RETENTION
    tenant_id: str | None = None
    graph_url: str | None = None
    empty_read_guard: int = DEFAULT_EMPTY_READ_GUARD
    safety: SafetySettings = SafetySettings()
    shrink_guard: float = DEFAULT_SHRINK_GUARD
    break_glass: tuple[BreakGlassEntry, ...] = ()
    signing: str | None = None  # "ssh" or "gpg": backup tags are signed, and verified before they are used


class SettingProblem(NamedTuple):
    """One mistake in a settings file, where a person can find it."""

    path: str
    line: int
    column: int
    setting: str  # `thresholds.perType.user`, `protected[0].type`; empty for a YAML error
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:{self.column}"
        return f"{where}: {self.setting}: {self.message}" if self.setting else f"{where}: {self.message}"


class ConfigFileError(ConfigError):
    """A settings file with mistakes: the first in file order is the message, all of them are in `problems`."""

    def __init__(self, problems: list[SettingProblem], *, hint: str | None = None) -> None:
        more = len(problems) - 1
        if hint is None and more:
            hint = f"and {more} more problem{'s' if more > 1 else ''} in this file"
        super().__init__(str(problems[0]), hint=hint)
        self.problems = tuple(problems)
        self.path, self.line, self.column = problems[0].path, problems[0].line, problems[0].column


def load_config(root: Path, registry: Registry | None = None) -> Config:
    """The repository's entra-gitops.yaml, or the defaults when it has none; a mistake raises ConfigFileError."""
    path = root / CONFIG_FILE
    if not path.is_file():
        return Config()
    return parse_config(path.read_bytes(), str(path), registry)


def parse_config(content: bytes, source: str, registry: Registry | None = None) -> Config:
    """The settings a file's bytes hold; `source` names the file in messages."""
    data = _read(content, source)
    problems = _schema_problems(content, source, data, registry or default_registry())
    if problems:
        raise ConfigFileError(problems)
    return _config(data)


def config_problems(content: bytes, source: str, registry: Registry | None = None) -> list[SettingProblem]:
    """Every mistake in a settings file, in file order; none for a valid one."""
    try:
        data = _read(content, source)
    except ConfigFileError as error:
        return list(error.problems)
    return _schema_problems(content, source, data, registry or default_registry())


# A check the schema cannot state (say, names that must be unique): (where, message) for each mistake in the data.
ExtraCheck = Callable[[Mapping[str, Any]], Iterable[tuple[list[Any], str]]]


def checked_settings(content: bytes, source: str, schema_file: Path, extra: ExtraCheck | None = None) -> dict[str, Any]:
    """Another settings-style file (a fleet's tenants.yaml): read as strictly as entra-gitops.yaml, checked against
    `schema_file` (under schemas/) and then `extra`; every mistake at file:line:column, raised as ConfigFileError."""
    data = _read(content, source)
    errors = list(_file_validator(str(schema_file)).iter_errors(data))
    if errors:
        problems = _placed(content, source, (found for error in errors for found in _describe(error)))
    elif extra is not None:
        problems = _placed(content, source, ((where, False, message) for where, message in extra(data)))
    else:
        problems = []
    if problems:
        raise ConfigFileError(problems)
    return data


def set_tenant_id(content: bytes, tenant_id: str, source: str) -> bytes:
    """The same settings file with tenantId set (added or replaced), its comments and other lines kept as they were."""
    if not is_guid(tenant_id):
        raise ConfigError(f"cannot record tenant {tenant_id!r} in {source}: a tenant id is a GUID")
    tenant_id = fold_id(tenant_id)
    data = _read(content, source)
    expected = {**data, "tenantId": tenant_id}
    # A text edit keeps every other byte; ruamel's round trip is the fallback for shapes the edit
    # does not handle (a flow mapping, an odd indent), and it still keeps the comments.
    for edit in (_edit_text, _edit_round_trip):
        try:
            result = edit(content, tenant_id)
        except (YAMLError, ValueError, IndexError, AttributeError, TypeError, KeyError):
            continue
        if result is not None and _reads_as(result, expected, source):
            return result
    raise ConfigError(f"{source}: cannot add tenantId {tenant_id} to this file", hint="add `tenantId: ...` by hand")


# -- reading ----------------------------------------------------------------------------------------------------


def _read(content: bytes, source: str) -> dict[str, Any]:
    """The file's mapping, read strictly by canonical.load; an empty or comments-only file is no settings at all."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        text = None  # canonical.load reports where
    lines = text.removeprefix("\ufeff").split("\n") if text is not None else ["x"]
    if all(not line.strip() or line.lstrip().startswith("#") for line in lines):
        return {}
    try:
        return canonical.load(content, source)
    except StateFileError as error:
        problem = SettingProblem(error.path, error.line, error.column, "", error.message)
        raise ConfigFileError([problem], hint=error.hint) from None


@functools.cache
def _schema(schema_file: str = str(SCHEMA_FILE)) -> Mapping[str, Any]:
    """A settings schema as shipped (entra-gitops.yaml's without resource type names)."""
    return json.loads((schemas_dir() / schema_file).read_text(encoding="utf-8"))


@functools.cache
def _file_validator(schema_file: str) -> jsonschema.Draft202012Validator:
    """The validator of a settings schema that names no resource types."""
    return jsonschema.Draft202012Validator(_schema(schema_file))


def settings_schema(type_names: tuple[str, ...]) -> dict[str, Any]:
    """The settings schema with `type_names` as the enum of every resource type name in it."""

    def fill(node: Any) -> Any:
        """A copy of `node` with the enum added wherever x-entra-type-name says so."""
        if isinstance(node, Mapping):
            filled = {key: fill(value) for key, value in node.items()}
            if node.get("x-entra-type-name"):
                filled["enum"] = list(type_names)
            return filled
        if isinstance(node, list):
            return [fill(value) for value in node]
        return node

    return fill(_schema())


@functools.cache
def _validator(type_names: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    """One validator per set of type names (in practice, one per process)."""
    return jsonschema.Draft202012Validator(settings_schema(type_names))


def _config(data: Mapping[str, Any]) -> Config:
    """The values of a file the schema accepted, defaults filled in and GUIDs folded."""
    thresholds = data.get("thresholds") or {}
    protected = tuple(
        Protected(entry.get("type"), fold_id(entry["id"]) if "id" in entry else None, entry.get("displayName"))
        for entry in data.get("protected") or ()
    )
    return Config(
        retention=int(data.get("retention", DEFAULT_RETENTION)),
        tenant_id=fold_id(data["tenantId"]) if "tenantId" in data else None,
        graph_url=data.get("graphUrl"),
        empty_read_guard=int(data.get("emptyReadGuard", DEFAULT_EMPTY_READ_GUARD)),
        safety=SafetySettings(
            share=float(thresholds.get("share", DEFAULT_SHARE)),
            minimum_objects=int(thresholds.get("minimumObjects", DEFAULT_MINIMUM_OBJECTS)),
            per_type=tuple((name, float(share)) for name, share in (thresholds.get("perType") or {}).items()),
            protected=protected,
        ),
        shrink_guard=float(data.get("shrinkGuard", DEFAULT_SHRINK_GUARD)),
        break_glass=tuple(_break_glass(item) for item in data.get("breakGlass") or ()),
        signing=data.get("signing"),
    )


def _break_glass(item: str | Mapping[str, Any]) -> BreakGlassEntry:
    """One breakGlass item: an account on its own, or a mapping with account and satisfies."""
    if isinstance(item, str):
        return BreakGlassEntry(fold_id(item))
    return BreakGlassEntry(fold_id(item["account"]), frozenset(fold_id(c) for c in item.get("satisfies") or ()))


# -- messages ---------------------------------------------------------------------------------------------------


def _schema_problems(content: bytes, source: str, data: Any, registry: Registry) -> list[SettingProblem]:
    """Every schema error of `data`, placed in `content`, in file order."""
    errors = list(_validator(registry.names).iter_errors(data))
    return _placed(content, source, (found for error in errors for found in _describe(error)))


def _placed(content: bytes, source: str, mistakes: Iterable[tuple[list[Any], bool, str]]) -> list[SettingProblem]:
    """Mistakes (where, whether `where` is a key, message) placed at their line and column in `content`, in file
    order."""
    tree: Any = None
    found: set[SettingProblem] = set()
    for location, at_key, message in mistakes:
        if tree is None:
            tree = _round_trip(content)
        line, column = _position(tree, location, at_key=at_key)
        found.add(SettingProblem(source, line, column, _setting(location), message))
    return sorted(found, key=lambda p: (p.line, p.column, p.setting, p.message))


def _describe(error: jsonschema.ValidationError) -> Iterator[tuple[list[Any], bool, str]]:
    """What is wrong, as (where, whether `where` is a key, message): one error may name several keys."""
    path = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    value = error.instance
    if error.validator == "additionalProperties" and isinstance(value, Mapping):
        known = list(schema.get("properties") or {})
        for key in value:
            if key not in known:
                close = _suggest(key, known)
                advice = f"did you mean {close!r}?" if close else f"known here: {', '.join(known)}"
                yield [*path, key], True, f"unknown setting; {advice}"
        return
    if "propertyNames" in error.absolute_schema_path:
        path, at_key = [*path, value], True  # the error is about a key: point at it, not at its mapping
    else:
        at_key = False
    if error.validator == "enum" and schema.get("x-entra-type-name"):
        if not isinstance(value, str):
            return  # the type error at the same place says it
        close = _suggest(value, error.validator_value)
        advice = f"did you mean {close!r}?" if close else f"known types: {', '.join(error.validator_value)}"
        yield path, at_key, f"unknown resource type {value!r}; {advice}"
        return
    if error.validator == "required" and isinstance(value, Mapping):
        missing = [name for name in error.validator_value if name not in value]
        props = schema.get("properties") or {}
        for name in missing:
            what = (props.get(name) or {}).get("x-entra-expected")
            yield path, at_key, f"{name!r} is missing" + (f": {what}" if what else "")
        return
    branches = schema.get("anyOf") if error.validator == "anyOf" else None
    if branches and all(set(branch) == {"required"} for branch in branches):
        needed = " or ".join(repr(name) for branch in branches for name in branch["required"])
        yield path, at_key, f"needs {needed}"
        return
    expected = schema.get("x-entra-expected")
    if expected is None:
        yield path, at_key, error.message
        return
    close = _suggest(value, _enum_values(schema))
    yield path, at_key, f"must be {expected}, not {_shown(value)}" + (f"; did you mean {close!r}?" if close else "")


def _enum_values(schema: Mapping[str, Any]) -> list[str]:
    """The names a schema node allows, its anyOf branches' included: what a suggestion is picked from."""
    values = [v for v in schema.get("enum") or () if isinstance(v, str)]
    for branch in schema.get("anyOf") or ():
        values.extend(_enum_values(branch))
    return values


def _suggest(word: Any, choices: Any) -> str | None:
    """The closest allowed name, compared without regard to case (`MFA` is close to `mfa`)."""
    if not isinstance(word, str):
        return None
    folded = {str(choice).lower(): str(choice) for choice in choices}
    close = difflib.get_close_matches(word.lower(), list(folded), n=1)
    return folded[close[0]] if close else None


def _shown(value: Any) -> str:
    """A value as a message shows it: text quoted, collections by kind, long text shortened."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _setting(location: list[Any]) -> str:
    """A setting's path as people write it: `thresholds.perType.user`, `protected[0].type`."""
    text = ""
    for step in location:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else str(step))
    return text


def _round_trip(content: bytes) -> Any:
    """The file as ruamel's round-trip loader reads it, with line and column on every node; None if it cannot."""
    try:
        return YAML(typ="rt").load(content)
    except YAMLError:
        return None


def _position(tree: Any, location: list[Any], *, at_key: bool) -> tuple[int, int]:
    """Line and column (1-based) of the key or value at `location`, or of the deepest parent that exists."""
    line, column = 1, 1
    node = tree
    for index, step in enumerate(location):
        lc = getattr(node, "lc", None)
        try:
            if isinstance(step, int):
                row, col = lc.item(step)
            elif index == len(location) - 1 and not at_key and node[step] is not None:
                row, col = lc.value(step)
            else:
                row, col = lc.key(step)  # an empty value has no place of its own: its key's line
            node = node[step]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
        line, column = row + 1, col + 1
    return line, column


# -- recording the tenant ---------------------------------------------------------------------------------------

_TENANT_COMMENT = "# The tenant backed up here, recorded by the first snapshot.\n"
_QUOTED = {"'": re.compile(r"'(?:[^']|'')*'"), '"': re.compile(r'"(?:[^"\\]|\\.)*"')}


def _edit_text(content: bytes, tenant_id: str) -> bytes | None:
    """The file with tenantId replaced or added by editing its text, every other byte kept; None when unsure."""
    text = content.decode("utf-8")
    tree = _round_trip(content)
    if isinstance(tree, CommentedMap) and "tenantId" in tree:
        row, col = tree.lc.value("tenantId")
        lines = text.split("\n")
        line = lines[row]
        quote = line[col : col + 1]
        if quote in _QUOTED:
            match = _QUOTED[quote].match(line, col)
            if match is None:
                return None
            end, written = match.end(), f"{quote}{tenant_id}{quote}"
        else:
            # A plain scalar ends at a comment, and inside a flow mapping at the next entry too.
            stops = (" #", ",", "}") if tree.fa.flow_style() else (" #",)
            end = min((i for i in (line.find(stop, col) for stop in stops) if i >= 0), default=len(line))
            end = len(line[:end].rstrip())
            written = tenant_id
        lines[row] = line[:col] + written + line[end:]
        return "\n".join(lines).encode("utf-8")
    if isinstance(tree, CommentedMap):
        lines = text.split("\n")
        row, col = tree.lc.line, tree.lc.col
        if lines[row][col : col + 1] == "{":
            # A flow mapping has no line of its own to add: the tenant goes first inside its braces.
            lines[row] = f"{lines[row][: col + 1]}tenantId: {tenant_id}{', ' if tree else ' '}{lines[row][col + 1 :]}"
            return "\n".join(lines).encode("utf-8")
    added = f"{_TENANT_COMMENT}tenantId: {tenant_id}\n"
    if not isinstance(tree, CommentedMap) or not tree:
        # No settings yet (an empty or comments-only file): the tenant goes at the end.
        if text and not text.endswith("\n"):
            text += "\n"
        return (text + ("\n" if text.strip() else "") + added).encode("utf-8")
    row, col = tree.lc.key(next(iter(tree)))
    lines = text.split("\n")
    # The comment lines right above the first setting describe it: the tenant goes before them.
    while row > 0 and lines[row - 1].lstrip().startswith("#"):
        row -= 1
    indent = " " * col
    block = "".join(f"{indent}{part}\n" for part in added.splitlines()) + "\n"
    lines[row] = block + lines[row]
    return "\n".join(lines).encode("utf-8")


def _edit_round_trip(content: bytes, tenant_id: str) -> bytes:
    """The file with tenantId set through ruamel's round trip, which keeps comments but may re-indent."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    tree = yaml.load(content)
    if not isinstance(tree, CommentedMap):
        tree = CommentedMap()
    if "tenantId" in tree:
        tree["tenantId"] = tenant_id
    else:
        tree.insert(0, "tenantId", tenant_id)
    out = io.BytesIO()
    yaml.dump(tree, out)
    return out.getvalue()


def _reads_as(content: bytes, expected: Mapping[str, Any], source: str) -> bool:
    """Whether an edited file reads back as exactly the settings it should hold."""
    try:
        return _read(content, source) == expected
    except ConfigError:
        return False
