"""The agency's search policy binds the engine's use case itself, not only the front-ends.

Attack: a script over the engine API (``Workstation.search`` then ``Workstation.record``) under a policy
that requires supervisor approval must be refused with the policy's reason, as the command line and
the window are. The engine function :func:`engine.workstation.authorize.authorize` is tested directly
too, with a negative control for each rule.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from engine import paths
from engine.cases import create_case, open_case
from engine.policy import SearchRefused
from engine.search import Query
from engine.workstation import Workstation
from engine.workstation.authorize import Authorization, authorize
from tests.fixtures.photos import small_photo_folder

CASE = "2026-0222"
POLICY = """required = ["purpose", "supervisor_approval"]
max_candidates = 3
"""


def _write_policy(text: str) -> None:
    paths.config_dir().mkdir(parents=True, exist_ok=True)
    (paths.config_dir() / "search_policy.toml").write_text(text, encoding="utf-8")


def _query() -> list[Query]:
    return [Query("photo", b"not decoded by the policy check", name="probe.png")]


def _script_search_and_record(tmp_path: Path) -> int:
    """What a script over the engine API does: search a gallery, record the search in a case."""
    small_photo_folder(tmp_path / "photos", 4, seed=3)
    create_case(CASE, "Robbery", witnesses=["W1"]).close()
    with Workstation() as ws:
        ws.add_photos(ws.create_gallery("Mugshots").id, [tmp_path / "photos"])
        queries = [Query.from_path(next(iter(sorted((tmp_path / "photos").iterdir()))), "photo")]
        finished = ws.search(queries, ["Mugshots"], k=5)
        with open_case(CASE) as case, case.write():
            return ws.record(case, finished, label="script").id


def _searches() -> int:
    with open_case(CASE) as case:
        return int(case.conn.execute("SELECT COUNT(*) FROM searches").fetchone()[0])


def test_without_a_policy_file_a_script_searches_and_records(installed_models: Path, tmp_path: Path) -> None:
    """Negative control: the engine path itself works, so the refusal below is the policy's."""
    _script_search_and_record(tmp_path)
    assert _searches() == 1


def test_a_script_over_the_engine_is_refused_without_supervisor_approval(installed_models: Path,
                                                                         tmp_path: Path) -> None:
    _write_policy(POLICY)
    with pytest.raises(SearchRefused, match="requires .*supervisor approval"):
        _script_search_and_record(tmp_path)
    assert _searches() == 0


GIVEN = {"purpose": "robbery", "supervisor_approval": "Sgt. Dunn #17"}


def test_an_authorized_script_search_is_recorded_with_it_and_cannot_be_widened(installed_models: Path,
                                                                               tmp_path: Path) -> None:
    """The engine path with the engine's authorization: capped, recorded with its fields; nothing else passes."""
    from engine.cases.authorization import authorization
    from engine.workstation import record_finished

    _write_policy(POLICY)
    small_photo_folder(tmp_path / "photos", 5, seed=3)
    create_case(CASE, "Robbery", witnesses=["W1"]).close()
    with Workstation() as ws, open_case(CASE) as case:
        ws.add_photos(ws.create_gallery("Mugshots").id, [tmp_path / "photos"])
        queries = [Query.from_path(next(iter(sorted((tmp_path / "photos").iterdir()))), "photo")]
        auth = authorize(GIVEN, k=None, server=False, case=case, queries=queries)
        assert auth is not None
        finished = ws.search(queries, ["Mugshots"], authorization=auth)
        assert len(finished.result.matches) == 3  # the policy's longest list
        with pytest.raises(SearchRefused, match="at most 3 candidates"):
            ws.search(queries, ["Mugshots"], k=5, authorization=auth)  # a longer list than authorized
        with pytest.raises(SearchRefused, match="run under to be recorded"):
            ws.record(case, finished, label="script")  # recorded without its authorization
        with pytest.raises(SearchRefused, match="run under to be recorded"):
            record_finished(case, finished, label="window path")  # the recording path the window's ops use
        record = ws.record(case, finished, label="script", authorization=auth)
        kept = authorization(case, record.id)
        assert kept is not None and kept["fields"] == GIVEN and kept["policy_sha256"] == auth.policy_sha256
        _write_policy(POLICY + "# amended by the administrator\n")
        with pytest.raises(SearchRefused, match="changed after this search was authorized"):
            ws.search(queries, ["Mugshots"], authorization=auth)
        (paths.config_dir() / "search_policy.toml").unlink()  # control: without the file nothing is asked
        assert len(ws.search(queries, ["Mugshots"]).result.matches) > 3
    assert _searches() == 1


# -- the engine function ------------------------------------------------------------------------------
def test_no_policy_file_authorizes_nothing(sketchface_home: Path) -> None:
    assert authorize({}, k=None, server=False, case=None, queries=_query()) is None


def test_missing_supervisor_approval_is_refused_with_the_policy_reason(sketchface_home: Path) -> None:
    _write_policy(POLICY)
    with pytest.raises(SearchRefused, match="requires supervisor approval") as err:
        authorize({"purpose": "robbery"}, k=None, server=False, case=None, queries=_query())
    assert "--supervisor-approval" in str(err.value.hint)


def test_fields_without_a_case_are_refused_and_given_with_one_are_authorized(sketchface_home: Path) -> None:
    _write_policy(POLICY)
    fields = {"purpose": "robbery", "supervisor_approval": "Sgt. Dunn #17", "legal_basis": "  "}
    with pytest.raises(SearchRefused, match="kept with the search in its case"):
        authorize(fields, k=None, server=False, case=None, queries=_query())
    case = create_case(CASE, "Robbery", witnesses=["W1"])
    try:
        auth = authorize(fields, k=None, server=False, case=case, queries=_query(), default_k=50)
    finally:
        case.close()
    assert isinstance(auth, Authorization)
    assert auth.fields == {"purpose": "robbery", "supervisor_approval": "Sgt. Dunn #17"}  # blank = not given
    assert auth.k == 3 and auth.recorded  # the default list is capped at the policy's longest
    policy_file = paths.config_dir() / "search_policy.toml"
    assert auth.policy_sha256 == hashlib.sha256(policy_file.read_bytes()).hexdigest()
    with pytest.raises(AttributeError):
        auth.k = 99  # type: ignore[misc]


def test_a_longer_list_than_the_policy_allows_is_refused(sketchface_home: Path) -> None:
    _write_policy('max_candidates = 3\n')
    assert authorize({}, k=3, server=False, case=None, queries=_query()) is not None  # control: at the cap
    with pytest.raises(SearchRefused, match="at most 3 candidates"):
        authorize({}, k=4, server=False, case=None, queries=_query())


def test_server_galleries_need_approval_only_where_the_policy_says_so(sketchface_home: Path) -> None:
    _write_policy('server_galleries_need_approval = true\n')
    assert authorize({}, k=None, server=False, case=None, queries=_query()) is not None  # control: local
    with pytest.raises(SearchRefused, match="server galleries need supervisor approval"):
        authorize({}, k=None, server=True, case=None, queries=_query())


def test_intake_before_search_is_required_where_the_policy_says_so(sketchface_home: Path) -> None:
    _write_policy('require_intake = true\n')
    with pytest.raises(SearchRefused, match="intakes are kept in a case"):
        authorize({}, k=None, server=False, case=None, queries=_query())
    case = create_case(CASE, "Robbery", witnesses=["W1"])
    try:
        with pytest.raises(SearchRefused, match="probe.png has none in this case"):
            authorize({}, k=None, server=False, case=case, queries=_query())
    finally:
        case.close()
    _write_policy('require_intake = false\n')  # control: the same search without the rule
    assert authorize({}, k=None, server=False, case=None, queries=_query()) is not None
