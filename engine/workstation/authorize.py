"""Search authorization under the agency's policy: the one place its rules are applied to a search.

Why here, in the use-case layer: the policy (:mod:`engine.policy`) binds every way of searching, and a
front-end that applies it on its own leaves the next caller (a script over the engine API) free to
search without it. :func:`authorize` loads the policy file, checks the authorization fields, caps the
candidate list, checks the intake-before-search rule, and hands back an immutable
:class:`Authorization` the search and its record carry; it raises :class:`SearchRefused` with the
policy's reason otherwise. Without a policy file it returns None and nothing changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine import policy
from engine import settings as settings_mod
from engine.cases import Case
from engine.cases.examination import intake_for
from engine.policy import SearchRefused
from engine.search.core import Query

__all__ = ["Authorization", "SearchRefused", "authorize"]


@dataclass(frozen=True)
class Authorization:
    """A search the agency's policy allowed: the policy file it was checked against and what it allows.

    Attributes:
        policy_sha256: the SHA-256 of the policy file (recorded with the search; a changed file no
            longer matches).
        field_items: the authorization fields given, as sorted (key, value) pairs (immutable).
        k: the candidate list length the search may return (the policy's cap applied).
        server: whether the authorization covers a server gallery.
        recorded: whether the search was authorized to be recorded in a case.
    """

    policy_sha256: str
    field_items: tuple[tuple[str, str], ...]
    k: int | None
    server: bool
    recorded: bool

    @property
    def fields(self) -> dict[str, str]:
        """The authorization fields as a new dict (the one kept with the search in its case)."""
        return dict(self.field_items)


def authorize(fields: Mapping[str, str | None], *, k: int | None, server: bool, case: Case | None,
              queries: Sequence[Query], default_k: int | None = None) -> Authorization | None:
    """Check a search against the agency's policy before anything runs; None when there is no policy file.

    Args:
        fields: the authorization fields given (keys of :data:`engine.policy.FIELDS`; empty counts as missing).
        k: the candidate list length asked for (None: ``default_k``, else the settings' ``search_top_k``).
        server: the search includes a server gallery.
        case: the case the search will be recorded in (None: not recorded).
        queries: the query images (checked for an intake in ``case`` when the policy asks for one).

    Returns:
        the authorization to pass to :meth:`Workstation.search` and :meth:`Workstation.record`.

    Raises:
        SearchRefused: a rule fails; the message names it and what to add. ConfigError: the policy file
            is unreadable or wrong (searches are refused until it is fixed).
    """
    rules = policy.load_policy()
    if rules is None:
        return None
    given = policy.check_search(rules, {f: str(fields.get(f) or "") for f in policy.FIELDS}, k=k, server=server,
                                recorded=case is not None)
    effective = k
    if effective is None and rules.max_candidates is not None:
        base = default_k if default_k is not None else settings_mod.load().search_top_k
        effective = min(base, rules.max_candidates)
    if rules.require_intake:
        _require_intakes(case, queries)
    return Authorization(rules.sha256, tuple(sorted(given.items())), effective, server, case is not None)


def _require_intakes(case: Case | None, queries: Sequence[Query]) -> None:
    """Under a policy that asks for it, every query image needs an intake in the case before it is searched."""
    if case is None:
        raise SearchRefused("The agency's search policy requires an intake of each probe before it is searched, "
                            "and intakes are kept in a case; the search was not run.", hint="Add --case CASE.")
    for i, q in enumerate(queries, 1):
        if intake_for(case, hashlib.sha256(q.data).hexdigest()) is None:
            name = q.name or f"query image {i}"
            raise SearchRefused(f"The agency's search policy requires an intake of each probe before it is "
                                f"searched; {name} has none in this case. The search was not run.",
                                hint="Store it ('sketchface case add-sketch') and record its intake "
                                     "('sketchface case intake').")
