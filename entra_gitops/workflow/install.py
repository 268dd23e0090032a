"""What a state repository's workflows and pre-commit hook install: `init --install SPEC`, and whether the default
(this very version from PyPI) can be installed at all.

The spec is written once, to `.github/entra-gitops-requirements.txt`: every workflow installs with
`pip install -r` that file, setup-python's pip cache is keyed on it, and the pre-commit hook gets the same
requirement as its `additional_dependencies`. Upgrading is a one-line pull request.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import httpx

from entra_gitops import __version__
from entra_gitops.model.errors import ConfigError

REQUIREMENTS_FILE = ".github/entra-gitops-requirements.txt"
PYPI_SIMPLE = "https://pypi.org/simple"
INDEX_ENV = "ENTRA_GITOPS_INDEX_URL"  # the index init asks whether this version is published; "off" asks none
INDEX_TIMEOUT_SECONDS = 3.0

# pip options a requirements file may hold, long form by short form; the first four take a value.
_VALUED = {"--index-url": "--index-url", "-i": "--index-url", "--extra-index-url": "--extra-index-url"}
_VALUED |= {"--find-links": "--find-links", "-f": "--find-links", "--trusted-host": "--trusted-host"}
_FLAGS = ("--pre",)
_NAME = r"entra[-_.]gitops(?:\[[A-Za-z0-9,._ -]*\])?"
_VERSION_CLAUSE = r"(?:===?|~=|!=|<=?|>=?)\s*[A-Za-z0-9.*+!_-]+"
_REQUIREMENT = re.compile(
    rf"{_NAME}(?:\s*{_VERSION_CLAUSE}(?:\s*,\s*{_VERSION_CLAUSE})*|\s*@\s*\S+)?"  # entra-gitops==X, … @ URL
    r"|(?:git\+)?(?:https?|file|ssh)://\S+|git\+\S+"  # a URL: git+https://…@REF, a wheel or sdist
    r"|(?:/|\./|\.\./)\S*",  # a local path (a checkout, a wheel)
    re.IGNORECASE,
)
_RELEASE = re.compile(r"\d+(?:\.\d+)*(?:(?:a|b|rc)\d+)?(?:\.post\d+)?")
EXAMPLES = (
    "entra-gitops==X.Y.Z, git+https://github.com/ORG/entra-gitops@vX.Y.Z "
    "or '--extra-index-url https://pkgs.example.com/simple entra-gitops==X.Y.Z'"
)


@dataclass(frozen=True)
class InstallSpec:
    """One pip requirement for entra-gitops, with the pip options (an index) it needs."""

    requirement: str
    options: tuple[tuple[str, ...], ...] = ()  # ("--extra-index-url", URL), ("--pre",)
    default: bool = False  # this version from PyPI, init's choice rather than the user's

    @classmethod
    def parse(cls, text: str | None) -> InstallSpec:
        """`--install`'s value (None: this version, `entra-gitops==<version>`); refuses what is no such spec."""
        if text is None:
            return cls(f"entra-gitops=={__version__}", default=True)
        if any(c in text for c in "\"'`\n\r\\$") or not text.strip():
            raise ConfigError(f"--install {text!r}: a pip requirement has no quotes, line breaks or $", hint=EXAMPLES)
        words, options, rest = text.split(), [], []
        while words:
            word = words.pop(0)
            name, equals, value = word.partition("=")
            if word.startswith("-") and name in _VALUED:
                if not equals:
                    if not words:
                        raise ConfigError(f"--install {text!r}: {word} needs a value", hint=EXAMPLES)
                    value = words.pop(0)
                options.append((_VALUED[name], value))
            elif word in _FLAGS:
                options.append((word,))
            elif word.startswith("-"):
                raise ConfigError(f"--install {text!r}: pip option {word} is not one a requirements file holds here")
            else:
                rest.append(word)
        requirement = " ".join(rest)
        if not _REQUIREMENT.fullmatch(requirement):
            raise ConfigError(f"--install {text!r}: not a pip requirement for entra-gitops", hint=f"like {EXAMPLES}")
        return cls(requirement, tuple(options))

    def __str__(self) -> str:
        return " ".join([*(" ".join(option) for option in self.options), self.requirement])

    def requirements_text(self) -> str:
        """The requirements file every workflow installs from (and keys its pip cache on)."""
        lines = [
            "# What the entra-gitops workflows install: `pip install -r` this file (written by entra-gitops init).",
            "# setup-python's pip cache is keyed on it. Upgrade by changing the requirement in a pull request;",
            "# change .pre-commit-config.yaml's additional_dependencies to the same.",
            *(" ".join(option) for option in self.options),
            self.requirement,
        ]
        return "\n".join(lines) + "\n"

    def pre_commit_dependencies(self) -> str:
        """The hook's additional_dependencies as a YAML flow list: pip's arguments for this spec."""
        arguments = ["=".join(option) for option in self.options] + [self.requirement]
        return "[" + ", ".join(json.dumps(argument) for argument in arguments) + "]"


def install_warning(spec: InstallSpec, environ: dict[str, str] | None = None) -> str | None:
    """Why the workflows may not be able to install `spec`, when init chose it and cannot confirm it; else None.

    Only the default (this version from PyPI) is checked, with one short request to the index's simple API
    (PEP 691 JSON); no answer within a few seconds, or no network, is a warning too, never a failure."""
    if not spec.default:
        return None
    version = __version__
    hint = (
        f"pass --install git+https://github.com/ORG/entra-gitops@v{version} (or an index: --install "
        f"'--extra-index-url URL entra-gitops=={version}'), or edit {REQUIREMENTS_FILE}"
    )
    if not _RELEASE.fullmatch(version):
        return f"entra-gitops {version} is a development version, which no package index has: {hint}"
    index = (environ if environ is not None else os.environ).get(INDEX_ENV) or PYPI_SIMPLE
    where = "PyPI" if index == PYPI_SIMPLE else index
    if index == "off":
        return f"did not check that entra-gitops {version} is on PyPI ({INDEX_ENV}=off): if it is not, {hint}"
    found, reason = published(index, version)
    if found:
        return None
    if found is None:
        return f"could not check that entra-gitops {version} is on {where} ({reason}): if it is not, {hint}"
    return f"entra-gitops {version} is not on {where} yet, so the generated workflows cannot install it: {hint}"


def published(index: str, version: str) -> tuple[bool | None, str]:
    """Whether the simple index at `index` lists entra-gitops `version`: True, False, or None (and why) when it
    cannot tell."""
    try:
        response = httpx.get(
            f"{index.rstrip('/')}/entra-gitops/",
            headers={"Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"},
            timeout=INDEX_TIMEOUT_SECONDS,
            follow_redirects=True,
        )
    except httpx.HTTPError as error:
        return None, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else 'no answer'}"
    if response.status_code == 404:
        return False, "not found"
    if response.status_code != 200:
        return None, f"HTTP {response.status_code}"
    try:
        document = response.json()
        versions = set(document.get("versions") or ())
        files = [str(item.get("filename", "")) for item in document.get("files") or ()]
    except (ValueError, AttributeError):
        versions, files = set(), re.findall(r"entra[-_]gitops-[^\"'<>/#]+", response.text, re.IGNORECASE)
    prefixes = (f"entra_gitops-{version}-", f"entra_gitops-{version}.tar", f"entra-gitops-{version}.tar")
    return version in versions or any(name.lower().startswith(prefixes) for name in files), "listed"
