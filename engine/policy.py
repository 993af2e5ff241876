"""The agency's search authorization policy: an administrator's file in the configuration folder.

Why a file and not a setting: it is the agency's rule, not the examiner's preference, so the window
offers no switch for it. It names which authorization fields every search needs (purpose, offence or
legal basis, requesting officer, supervisor approval), the longest candidate list a search may
return, whether searching a server gallery needs supervisor approval, and whether each probe needs
an intake in the case before it is searched. Without the file nothing changes.

Example ``search_policy.toml``::

    required = ["purpose", "legal_basis", "requesting_officer", "supervisor_approval"]
    max_candidates = 50
    server_galleries_need_approval = true
    require_intake = false
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import paths
from engine.errors import ConfigError, EngineError

POLICY_FILE = "search_policy.toml"
FIELDS: dict[str, str] = {"purpose": "purpose", "legal_basis": "offence or legal basis",
                          "requesting_officer": "requesting officer", "supervisor_approval": "supervisor approval"}


class SearchRefused(EngineError):
    """The agency's search policy refuses this search; the message says which rule and what to add."""

    title = "Search refused by the agency's policy"


@dataclass(frozen=True)
class SearchPolicy:
    """The parsed policy file; ``sha256`` identifies the exact file a search was checked against."""

    required: tuple[str, ...]
    max_candidates: int | None
    server_galleries_need_approval: bool
    require_intake: bool
    sha256: str
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {"required": list(self.required), "max_candidates": self.max_candidates,
                "server_galleries_need_approval": self.server_galleries_need_approval,
                "require_intake": self.require_intake, "sha256": self.sha256}


def policy_path() -> Path:
    """Where the administrator puts the policy file."""
    return paths.config_dir() / POLICY_FILE


RETENTION_FILE = "retention_policy.toml"


def retention_policy_path() -> Path:
    """Where the administrator puts the gallery retention rules (read by :mod:`engine.gallery.retention`)."""
    return paths.config_dir() / RETENTION_FILE


def load_policy() -> SearchPolicy | None:
    """The agency's policy, or None when there is no policy file; ConfigError when it is unreadable or wrong.

    A broken policy file refuses searches rather than being ignored: ignoring it would lift the rules.
    """
    path = policy_path()
    if not path.is_file():
        return None
    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"The search policy file {path} cannot be read ({exc}); searches are refused until it is "
                          "fixed.", hint="Ask the administrator to correct it.") from exc
    required = tuple(str(f) for f in doc.get("required", []))
    unknown = [f for f in required if f not in FIELDS]
    limit = doc.get("max_candidates")
    if unknown or (limit is not None and (not isinstance(limit, int) or limit < 1)):
        raise ConfigError(f"The search policy file {path} is not valid: required fields must be among "
                          f"{', '.join(FIELDS)} and max_candidates a positive whole number.",
                          hint="Ask the administrator to correct it.")
    return SearchPolicy(required, limit, bool(doc.get("server_galleries_need_approval", False)),
                        bool(doc.get("require_intake", False)), hashlib.sha256(raw).hexdigest(), str(path))


def check_search(policy: SearchPolicy, fields: dict[str, str], *, k: int | None, server: bool,
                 recorded: bool) -> dict[str, str]:
    """The authorization fields to record with the search; SearchRefused with the reason when a rule fails.

    Args:
        fields: the values given (empty ones count as missing).
        k: the candidate list length asked for explicitly (None: the default, capped by the caller).
        server: the search includes a server gallery.
        recorded: the search is recorded in a case (where the fields are kept).
    """
    given = {k_: v.strip() for k_, v in fields.items() if v and v.strip()}
    need = list(policy.required)
    if server and policy.server_galleries_need_approval and "supervisor_approval" not in need:
        need.append("supervisor_approval")
    missing = [f for f in need if f not in given]
    if missing:
        flags = " ".join(f"--{f.replace('_', '-')} ..." for f in missing)
        why = " (server galleries need supervisor approval)" if server and "supervisor_approval" in missing else ""
        raise SearchRefused(f"The agency's search policy requires {', '.join(FIELDS[f] for f in missing)}{why}; the "
                            "search was not run.", hint=f"Add {flags}.")
    if need and not recorded:
        raise SearchRefused("The agency's search policy requires authorization fields, which are kept with the "
                            "search in its case; the search was not run.", hint="Add --case CASE.")
    if policy.max_candidates is not None and k is not None and k > policy.max_candidates:
        raise SearchRefused(f"The agency's search policy allows at most {policy.max_candidates} candidates; "
                            f"{k} were asked for. The search was not run.",
                            hint=f"Use --top {policy.max_candidates} or fewer.")
    return given
