"""The agency's search policy, as the window applies it before a search is submitted.

The policy is the engine's (:mod:`engine.policy`): an administrator's file that names the authorization
fields a search needs, the longest candidate list, whether server galleries need supervisor approval
and whether each probe needs an intake first. The window reads it with :func:`current` and checks the
examiner's answers with :func:`authorize`, both the engine's own functions (the engine's use case,
:func:`engine.workstation.authorize.authorize_with_intakes`), so the window and the command line
refuse the same searches with the same words; the window keeps only its form (which fields to ask,
the cap note).

Why on the GUI thread: reading the policy is one small TOML file read and :func:`check` is pure, a few
milliseconds at most (see the test module for the figure), and the dialog that follows needs the answer
at once. The intake rule is checked against the SHA-256s the window already keeps, never a case read. Reading the last authorization of a case is a case read, so it is an op in the case lane.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine import policy as engine_policy
from engine.errors import EngineError
from engine.search.core import Query
from engine.workstation import is_server_key
from engine.workstation.authorize import Authorization, authorize_with_intakes
from engine.workstation.authorize import require_intakes as engine_require_intakes
from sketchface_desktop.ops.base import Op

FIELDS: dict[str, str] = dict(engine_policy.FIELDS)  # field key -> the words the engine uses for it
NEVER_PREFILLED = frozenset({"supervisor_approval"})  # an approval is given for one search, never carried over


class PolicyRefused(Exception):
    """The policy refuses the search as asked (the engine's words in ``message``); nothing was submitted."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class PolicyView:
    """What the window needs of the policy file (``sha256`` is recorded with each authorization)."""

    required: tuple[str, ...]
    max_candidates: int | None
    server_galleries_need_approval: bool
    require_intake: bool
    sha256: str
    source: Any  # the engine's SearchPolicy

    def needed(self, gallery_ids: Iterable[str]) -> tuple[str, ...]:
        """The fields a search of these galleries needs (server galleries may add supervisor approval)."""
        need = list(self.required)
        if (self.server_galleries_need_approval and any(is_server_key(g) for g in gallery_ids)
                and "supervisor_approval" not in need):
            need.append("supervisor_approval")
        return tuple(need)

    def capped(self, k: int) -> int:
        """The candidate list length the policy allows for ``k`` asked."""
        return min(k, self.max_candidates) if self.max_candidates is not None else k


def current() -> PolicyView | None:
    """The policy in force, or None without a policy file (nothing changes then).

    Raises PolicyRefused when the file is unreadable or wrong: the engine refuses every search until the
    administrator fixes it, and so does the window.
    """
    try:
        rules = engine_policy.load_policy()
    except EngineError as exc:
        raise PolicyRefused(str(getattr(exc, "message", "") or exc), str(getattr(exc, "hint", "") or "")) from exc
    if rules is None:
        return None
    return PolicyView(rules.required, rules.max_candidates, rules.server_galleries_need_approval,
                      rules.require_intake, rules.sha256, rules)


def authorize(fields: dict[str, str], *, k: int, gallery_ids: Iterable[str], recorded: bool,
              queries: Sequence[Any], intakes: Callable[[], Collection[str]]) -> Authorization | None:
    """The engine's authorization of a search as the window asks it (None without a policy file).

    The engine applies every rule (:func:`engine.workstation.authorize.authorize_with_intakes`); the
    window passes the SHA-256s it keeps of the case's probes that have an intake (``intakes``), so the
    GUI thread never reads the case. ``k`` is the already capped list length, so the cap itself never
    refuses in the window. PolicyRefused with the engine's reason otherwise.
    """
    server = any(is_server_key(g) for g in gallery_ids)
    try:
        return authorize_with_intakes(fields, k=k, server=server, recorded=recorded, queries=_named(queries),
                                      intakes=intakes)
    except EngineError as exc:
        raise PolicyRefused(str(getattr(exc, "message", "") or exc), str(getattr(exc, "hint", "") or "")) from exc


def require_intakes(queries: Sequence[Any], intakes: Collection[str] | None) -> None:
    """The engine's intake-before-search check on the window's query images (None: no case open);
    PolicyRefused with its reason, naming each query image without an intake."""
    try:
        engine_require_intakes(_named(queries), intakes)
    except engine_policy.SearchRefused as exc:
        raise PolicyRefused(exc.message, str(getattr(exc, "hint", "") or "")) from exc


def _named(queries: Sequence[Any]) -> list[Query]:
    """The window's query images as the engine checks them, named as the window shows them (the first
    sketch is the one on the sheet)."""
    return [Query(q.kind, q.data, q.weight, "the sketch on the sheet" if i == 0 and q.kind == "sketch"
                  else (q.name or f"query {i + 1}"), face_box=q.face_box) for i, q in enumerate(queries)]


def last_authorization(slot: Any) -> Op[dict[str, str]]:
    """The fields recorded with the case's latest authorized search ({} when none), to prefill the form.

    Supervisor approval is left out: it is given for one search.
    """
    def work(_p: Any, _c: Any) -> dict[str, str]:
        from engine.cases import list_searches
        from engine.cases.authorization import authorization

        case = slot.get()
        for record in sorted(list_searches(case), key=lambda s: s.id, reverse=True):
            auth = authorization(case, record.id)
            if auth is not None:
                return {k: str(v) for k, v in dict(auth["fields"]).items() if k not in NEVER_PREFILLED}
        return {}

    return Op("Reading the last authorization", work, lane="case", visible=False, cancellable=False)
