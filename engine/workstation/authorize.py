"""Search authorization under the agency's policy: the one place its rules are applied to a search.

Why here, in the use-case layer: the policy (:mod:`engine.policy`) binds every way of searching, and a
front-end that applies it on its own leaves the next caller (a script over the engine API) free to
search without it. :func:`authorize` loads the policy file, checks the authorization fields, caps the
candidate list, checks the intake-before-search rule, and hands back an immutable
:class:`Authorization` the search and its record carry; it raises :class:`SearchRefused` with the
policy's reason otherwise. Without a policy file it returns None and nothing changes.

:meth:`Workstation.search` calls :func:`enforce` (no authorization, one for another policy file, or one
stretched to more candidates or a server gallery is refused) and :meth:`Workstation.record` calls
:func:`check_recordable` and keeps the authorization with the search in one transaction. Re-runs and
watch runs of an already recorded search keep the original search's authorization: they repeat what
was authorized and are not asked again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from engine import policy
from engine import settings as settings_mod
from engine.cases import Case
from engine.cases.examination import intake_for
from engine.policy import SearchRefused
from engine.search.core import Query

__all__ = ["Authorization", "SearchRefused", "authorize", "authorize_with_intakes", "check_recordable", "enforce",
           "require_intakes"]


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
    return authorize_with_intakes(fields, k=k, server=server, recorded=case is not None, queries=queries,
                                  intakes=lambda: _case_intakes(case, queries), default_k=default_k)


def authorize_with_intakes(fields: Mapping[str, str | None], *, k: int | None, server: bool, recorded: bool,
                           queries: Sequence[Query], intakes: Callable[[], Collection[str]],
                           default_k: int | None = None) -> Authorization | None:
    """:func:`authorize` for a caller that already knows which probes have an intake in the case.

    Why: the window must not read the case on its GUI thread; it keeps the SHA-256s of the case's probes
    that have an intake and passes them as ``intakes`` (called only when the policy asks for intakes).
    ``recorded`` says whether the search will be recorded in a case.
    """
    rules = policy.load_policy()
    if rules is None:
        return None
    given = policy.check_search(rules, {f: str(fields.get(f) or "") for f in policy.FIELDS}, k=k, server=server,
                                recorded=recorded)
    effective = k
    if effective is None and rules.max_candidates is not None:
        base = default_k if default_k is not None else settings_mod.load().search_top_k
        effective = min(base, rules.max_candidates)
    if rules.require_intake:
        require_intakes(queries, intakes() if recorded else None)
    return Authorization(rules.sha256, tuple(sorted(given.items())), effective, server, recorded)


def require_intakes(queries: Sequence[Query], intakes: Collection[str] | None) -> None:
    """Under a policy that asks for it, every query image needs an intake in the case before it is searched.

    Args:
        intakes: the SHA-256s of the case's probes that have an intake (None: no case, where intakes are kept).

    Raises:
        SearchRefused: naming every query image without an intake.
    """
    if intakes is None:
        raise SearchRefused("The agency's search policy requires an intake of each probe before it is searched, "
                            "and intakes are kept in a case; the search was not run.", hint="Add --case CASE.")
    have = set(intakes)
    missing = [q.name or f"query image {i}" for i, q in enumerate(queries, 1)
               if hashlib.sha256(q.data).hexdigest() not in have]
    if missing:
        raise SearchRefused(f"The agency's search policy requires an intake of each probe before it is "
                            f"searched; {', '.join(missing)} has none in this case. The search was not run.",
                            hint="Store it ('sketchface case add-sketch') and record its intake "
                                 "('sketchface case intake').")


def _case_intakes(case: Case | None, queries: Sequence[Query]) -> set[str]:
    """The SHA-256s of ``queries`` that have an intake in ``case`` (only asked when there is a case)."""
    if case is None:
        return set()
    shas = {hashlib.sha256(q.data).hexdigest() for q in queries}
    return {sha for sha in shas if intake_for(case, sha) is not None}


def enforce(authorization: Authorization | None, *, k: int | None, server: bool) -> int | None:
    """The check :meth:`Workstation.search` makes; the candidate list length to search with.

    Without a policy file nothing changes (``k`` is returned as asked). With one, a search needs an
    authorization from :func:`authorize` checked against the same file (its SHA-256 still matches), and
    the policy's rules are checked again on the fields it carries, for the galleries and list length
    actually searched: a caller cannot widen what was authorized. Without an authorization the policy's
    own reason is given (the fields it asks for), else a plain refusal.

    Raises:
        SearchRefused: no authorization, one for another policy file, or a rule that no longer holds.
    """
    rules = policy.load_policy()
    if rules is None:
        return k
    if authorization is None:
        policy.check_search(rules, {}, k=k, server=server, recorded=False)
        raise SearchRefused("The agency's search policy applies to every search, and this one was not "
                            "authorized; the search was not run.",
                            hint="Check it against the policy first (engine.workstation.authorize).")
    if authorization.policy_sha256 != rules.sha256:
        raise SearchRefused("The agency's search policy file changed after this search was authorized; the search "
                            "was not run.", hint="Authorize the search again.")
    effective = authorization.k if k is None else k
    policy.check_search(rules, authorization.fields, k=effective, server=server, recorded=authorization.recorded)
    return effective


def check_recordable(authorization: Authorization | None) -> None:
    """The check :meth:`Workstation.record` makes: under a policy file, a search is recorded with its
    authorization (a search authorized without a case carries none of the fields a case keeps)."""
    if policy.load_policy() is None:
        return
    if authorization is None or not authorization.recorded:
        raise SearchRefused("The agency's search policy requires the authorization a search was run under to be "
                            "recorded with it; the search was not recorded.",
                            hint="Authorize the search for this case first (engine.workstation.authorize).")
