"""SearchController: runs searches and keeps the last query for "more like this" and "exclude".

Refining adds a candidate's photo as a further fused query ("more like this") or a
``photo_sha256!=`` filter ("exclude"); both are recorded in the run manifest.

Under the agency's search policy (:mod:`sketchface_desktop.ops.policy`) every search, refinements
included, passes one pre-search step before its job is submitted: the probe intake the policy may ask
for, the candidate list capped at the policy's longest, and the authorization fields asked for through
an :class:`AuthorizationPort` (a dialog, in the window). Every rule is the engine's
(:func:`sketchface_desktop.ops.policy.authorize` asks :mod:`engine.workstation.authorize`), and the
search carries the engine's authorization, which the engine's search checks again. Without a policy
file a search is submitted at once, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from sketchface_desktop.engine_session import EngineSession
from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import policy as policy_ops
from sketchface_desktop.ops import search as search_ops
from sketchface_desktop.ops.policy import PolicyRefused, PolicyView
from sketchface_desktop.ops.search import QueryImage, SearchRequest
from sketchface_desktop.workers import Job


@dataclass(frozen=True)
class AuthorizationAsk:
    """What the authorization form asks for one search.

    Attributes:
        fields: (key, label) of each field the policy needs, in the policy's order.
        prefill: values from the case's last authorized search (never a supervisor approval).
        note: what the policy did to the search as asked (e.g. the capped list), "" when nothing.
        title: the search's title.
    """

    fields: tuple[tuple[str, str], ...]
    prefill: dict[str, str]
    note: str
    title: str


class AuthorizationPort(Protocol):
    """What the search controller needs of the view to apply the policy (a dialog, in the window)."""

    def ask_authorization(self, ask: AuthorizationAsk, submit: Callable[[dict[str, str]], str | None]) -> None:
        """Ask for the fields; ``submit(values)`` returns the engine's refusal ("" or None: submitted)."""

    def ask_intake(self, text: str) -> None:
        """The policy needs the probe's intake first: say ``text`` and offer the intake form."""


class PolicyCase(Protocol):
    """The open case, as the pre-search step reads it."""

    @property
    def is_open(self) -> bool: ...
    @property
    def slot(self) -> Any: ...
    @property
    def info(self) -> Any: ...


class SearchController(QObject):
    """Starts searches and refinements; the examiner flow shows what it reports.

    Signals:
        search_started(object): the SearchRequest being run.
        search_finished(object, object): the request and the engine's FinishedSearch (result, query
            images, and each candidate's thumbnail keyed by (gallery id, face id)).
        submitted_later(object): the Job of a search submitted after the policy's form was answered.
        policy_note(str): what the policy did or refused (a capped list, a refusal), for the examiner.
    """

    search_started = Signal(object)
    search_finished = Signal(object, object)
    submitted_later = Signal(object)
    policy_note = Signal(str)

    def __init__(self, runner: Runner, session: EngineSession, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.session = session
        self.last_request: SearchRequest | None = None
        self.last_result: Any = None
        self.job: Job | None = None
        self.port: AuthorizationPort | None = None
        self.case: PolicyCase | None = None
        self.intakes: Callable[[], Collection[str]] = lambda: ()

    def attach_policy(self, port: AuthorizationPort, case: PolicyCase,
                      intakes: Callable[[], Collection[str]]) -> None:
        """Where the pre-search step asks (the view), which case records the search, and the SHA-256s of
        the case's probes that have an intake."""
        self.port, self.case, self.intakes = port, case, intakes

    def run(self, request: SearchRequest) -> Job | None:
        """Submit ``request``, first through the agency's policy when there is one.

        Returns the job, or None when the policy first asks the examiner (the job follows through
        ``submitted_later``) or refuses (said through ``policy_note``).
        """
        try:
            rules = policy_ops.current()  # one small file read, on the GUI thread (see ops.policy)
        except PolicyRefused as exc:
            self._refuse(exc.message + (f" {exc.hint}" if exc.hint else ""))
            return None
        if rules is None:
            return self._submit(replace(request, authorization=None))
        return self._apply_policy(rules, request)

    def _refuse(self, text: str) -> None:
        self.policy_note.emit(f"Search not run: {text}")

    def _apply_policy(self, rules: PolicyView, request: SearchRequest) -> Job | None:
        recorded = self.case is not None and self.case.is_open
        if rules.require_intake:  # asked first, so the intake form is offered before any field
            try:
                policy_ops.require_intakes(request.queries, self.intakes() if recorded else None)
            except PolicyRefused as exc:
                self._refuse(exc.message + ("" if recorded else " Create or open a case first."))
                if recorded and self.port is not None and "the sketch on the sheet" in exc.message:
                    self.port.ask_intake(exc.message)
                return None
        k = rules.capped(request.k)
        note = ""
        if k != request.k:
            note = f"The agency's search policy allows at most {k} candidates: this search lists {k}, not {request.k}."
            request = replace(request, k=k, label=f"{request.title} (top {k}: the policy's longest list)")
            self.policy_note.emit(note)
        need = rules.needed(request.gallery_ids)
        if not need or not recorded:
            try:
                auth = self._authorize(request, {}, recorded=recorded)
            except PolicyRefused as exc:
                self._refuse(exc.message + (" Create or open a case first." if not recorded else ""))
                return None
            return self._submit(replace(request, authorization=auth))
        if self.port is None or self.case is None:
            self._refuse("The agency's search policy requires authorization fields, and this window cannot ask "
                         "for them here.")
            return None
        port, asked, case_number = self.port, request, self._case_number()

        def ask(prefill: dict[str, str]) -> None:
            ask_ = AuthorizationAsk(tuple((f, policy_ops.FIELDS[f]) for f in need),
                                    {f: v for f, v in prefill.items() if f in need}, note, asked.title)
            port.ask_authorization(ask_, lambda values: self._authorized(asked, values, case_number))

        policy_ops.last_authorization(self.case.slot).success(ask).failure(lambda _e: ask({})).run(self.runner)
        return None

    def _authorize(self, request: SearchRequest, values: dict[str, str], *, recorded: bool) -> Any:
        """The engine's authorization of ``request`` (PolicyRefused with its reason)."""
        return policy_ops.authorize(values, k=request.k, gallery_ids=request.gallery_ids, recorded=recorded,
                                    queries=request.queries, intakes=self.intakes)

    def _case_number(self) -> str | None:
        info = getattr(self.case, "info", None) if self.case is not None and self.case.is_open else None
        return getattr(info, "case_number", None)

    def _authorized(self, request: SearchRequest, values: dict[str, str], case_number: str | None) -> str | None:
        """The form's answer: the engine's refusal (nothing submitted), or None once the job is submitted.

        The fields were given for the case open when Search was pressed: if another case (or none) is
        open now, nothing is submitted.
        """
        if self._case_number() != case_number:
            text = (f"The case changed while the authorization form was open; the fields were given for case "
                    f"{case_number}. The search was not run.")
            self._refuse(text)
            return text
        try:
            auth = self._authorize(request, values, recorded=True)
        except PolicyRefused as exc:
            self._refuse(exc.message)
            return exc.message
        self.submitted_later.emit(self._submit(replace(request, authorization=auth)))
        return None

    def _submit(self, request: SearchRequest) -> Job:
        self.search_started.emit(request)
        self.job = search_ops.search(self.session, request).success(
            lambda res: self._finished(request, res)).run(self.runner)
        return self.job

    def _finished(self, request: SearchRequest, finished: Any) -> None:
        self.last_request, self.last_result = request, finished.result
        self.search_finished.emit(request, finished)

    def more_like_this(self, photo_path: str, weight: float = 1.0) -> Job | None:
        """Repeat the last search with the candidate's photo fused into the query."""
        req = self.last_request
        if req is None:
            return None
        data = Path(photo_path).read_bytes()
        new = replace(req, queries=(*req.queries, QueryImage("photo", data, weight, Path(photo_path).name)),
                      label=f"More like {Path(photo_path).name}")
        return self.run(new)

    def exclude(self, photo_sha256: str, name: str = "") -> Job | None:
        """Repeat the last search without this photo (recorded as a filter in the manifest)."""
        req = self.last_request
        if req is None:
            return None
        new = replace(req, excluded=(*req.excluded, photo_sha256), label=f"Excluding {name or photo_sha256[:12]}")
        return self.run(new)
