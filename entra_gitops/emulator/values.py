"""Written values against the registry's schemas: a wrong JSON type or an unknown enum value is refused.

user-update.md and conditionalaccesspolicy-update.md document the types but no errors. Real Graph
answers a directory object's wrong type with 400 Request_BadRequest "Cannot convert the literal … to
the expected type 'Edm.Boolean'" (msgraph-sdk-powershell#3202) and accepts the OData spellings "true"
and "false" for a boolean (microsoft-graph-docs#12816, from Microsoft); Conditional Access answers a
body that does not match its schema with 400 BadRequest "1007: Incoming … object is null or does not
match the schema" (microsoft-graph-docs-contrib#4162). Only types and enums are checked: the schemas
name what entra-gitops keeps, not every member Graph accepts.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from entra_gitops.emulator.protocol import bad_request
from entra_gitops.model.frozen import thaw
from entra_gitops.model.registry import ResourceType, ThrottleScope

EDM = {"boolean": "Edm.Boolean", "string": "Edm.String", "integer": "Edm.Int32", "number": "Edm.Double"}
CHECKED = frozenset({"type", "enum", "const"})


@functools.cache
def _validator(schema_text: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(schema_text))


def _coerced(schema: Mapping[str, Any], value: Any) -> Any:
    """OData's quoted booleans read as booleans, at any depth the schema describes."""
    types = schema.get("type")
    kinds = set(types) if isinstance(types, list) else {types}
    if "boolean" in kinds and value in ("true", "false"):
        return value == "true"
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        return {k: _coerced(props.get(k) or {}, v) for k, v in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [_coerced(schema["items"], v) for v in value]
    return value


def checked(rtype: ResourceType, body: Mapping[str, Any]) -> dict[str, Any]:
    """The body as Graph would store it, or the 400 Graph answers for a value of the wrong type or enum."""
    out: dict[str, Any] = {}
    for name, value in body.items():
        prop = rtype.prop(name)
        if prop is None or prop.link is not None:
            out[name] = value
            continue
        schema = thaw(prop.schema)
        value = _coerced(schema, value)
        errors = [
            e for e in _validator(json.dumps(schema, sort_keys=True)).iter_errors(value) if e.validator in CHECKED
        ]
        if errors:
            raise _refusal(rtype, name, min(errors, key=lambda e: len(e.absolute_path)))
        out[name] = value
    return out


def _refusal(rtype: ResourceType, name: str, error: jsonschema.ValidationError) -> Exception:
    where = ".".join([name, *map(str, error.absolute_path)])
    if rtype.throttle_scope is ThrottleScope.CONDITIONAL_ACCESS:
        kind = rtype.odata_type.rsplit(".", 1)[-1]
        return bad_request(
            f"1007: Incoming {kind[:1].upper()}{kind[1:]} object is null or does not match the schema of "
            f"{kind[:1].upper()}{kind[1:]} type ({where}: {error.message}).",
            "BadRequest",
        )
    expected = error.validator_value if error.validator == "type" else None
    names = expected if isinstance(expected, list) else [expected]
    edm = next((EDM[t] for t in names if t in EDM), None)
    if edm is not None:
        return bad_request(f"Cannot convert the literal '{error.instance}' to the expected type '{edm}' ({where}).")
    return bad_request(f"Invalid value specified for property '{where}' of resource '{rtype.name}'.")
