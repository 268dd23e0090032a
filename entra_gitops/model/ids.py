"""Object ids as Graph and the files use them: the GUID shape, case folding, and percent-encoding in paths (pure)."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

# The one GUID shape: GUID_TEXT for patterns that embed it, GUID to match a whole string.
GUID_TEXT = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
GUID = re.compile(f"^{GUID_TEXT}$")


def is_guid(value: object) -> bool:
    """True for a string shaped like a GUID, in any case."""
    return isinstance(value, str) and len(value) == 36 and GUID.match(value) is not None


def fold_id(value: str) -> str:
    """An id as compared: GUIDs without regard to case, every other id (base64 relationship ids) exactly."""
    return value.lower() if is_guid(value) else value


def graph_path(template: str, **values: str) -> str:
    """A registry path template filled with ids, each percent-encoded so no id can add a path segment or query."""
    return template.format(**{name: quote(str(value), safe="") for name, value in values.items()})


def utc_text(moment: dt.datetime, timespec: str = "seconds") -> str:
    """A UTC time as Graph and the files write it: ISO 8601 with a Z."""
    return moment.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")
