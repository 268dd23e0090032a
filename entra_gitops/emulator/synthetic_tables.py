"""The reference tables synthetic tenants are drawn from, read once from seeds/synthetic-tables.yaml."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, NamedTuple

from entra_gitops.model.canonical import load
from entra_gitops.model.frozen import freeze

SOURCE = "seeds/synthetic-tables.yaml"


class Department(NamedTuple):
    name: str
    division: str
    cost_centres: tuple[str, ...]
    job_titles: tuple[str, ...]
    weight: int


class City(NamedTuple):
    city: str
    state: str | None
    country: str
    usage_location: str
    office: str
    phone_prefix: str
    language: str
    weight: int


class GraphRole(NamedTuple):
    id: str
    value: str
    display_name: str
    description: str


class GraphScope(NamedTuple):
    id: str
    value: str
    type: str
    display_name: str
    description: str


class DirectoryRole(NamedTuple):
    id: str
    name: str


class Strength(NamedTuple):
    id: str
    name: str
    description: str
    combinations: tuple[str, ...]


class PolicyTemplate(NamedTuple):
    name: str
    state: str
    conditions: Mapping[str, Any]
    grant: Mapping[str, Any]
    sign_in_frequency: Mapping[str, Any] | None


@dataclass(frozen=True)
class Tables:
    """Every table of the data file; tuples and read-only mappings, since one copy serves every tenant."""

    given_names: tuple[str, ...]
    surnames: tuple[str, ...]
    alias_letters: dict[int, str]  # a str.translate table
    departments: tuple[Department, ...]
    cities: tuple[City, ...]
    partner_domains: tuple[str, ...]
    employee_types: tuple[str, ...]  # each type repeated by its weight, so a uniform pick honours the weights
    graph_roles: tuple[GraphRole, ...]
    graph_scopes: tuple[GraphScope, ...]
    sign_in_scopes: tuple[str, ...]
    extra_scopes: tuple[str, ...]
    app_names: tuple[str, ...]
    countries: tuple[str, ...]
    blocked_countries: tuple[str, ...]
    authentication_strengths: tuple[Strength, ...]
    directory_roles: tuple[DirectoryRole, ...]
    conditional_access_templates: tuple[PolicyTemplate, ...]


_RECORDS: dict[str, type[tuple]] = {
    "departments": Department,
    "cities": City,
    "graph_roles": GraphRole,
    "graph_scopes": GraphScope,
    "authentication_strengths": Strength,
    "directory_roles": DirectoryRole,
    "conditional_access_templates": PolicyTemplate,
}


@functools.cache
def tables() -> Tables:
    """The tables, parsed on first use; a missing, unknown or misspelt field is a TypeError naming it."""
    text = resources.files("entra_gitops.emulator").joinpath(SOURCE).read_text(encoding="utf-8")
    data = freeze(load(text, f"entra_gitops/emulator/{SOURCE}"))
    fields = dict(data)
    for name, record in _RECORDS.items():
        fields[name] = tuple(record(**entry) for entry in data[name])
    fields["alias_letters"] = str.maketrans(dict(data["alias_letters"]))
    fields["employee_types"] = tuple(kind for kind, weight in data["employee_types"].items() for _ in range(weight))
    return Tables(**fields)
