"""HTML injection through database values: a tampered case must not put live markup into its report."""

from __future__ import annotations

from html.parser import HTMLParser

from engine.cases import build_report
from tests.security.test_case_support import full_case

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>"
ALLOWED = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "div", "span", "table", "tr",
           "td", "th", "ul", "li", "br", "img", "pre"}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def _inject(case: object) -> None:
    c = case.conn  # type: ignore[attr-defined]
    c.execute("PRAGMA foreign_keys=OFF")  # the attacker's own connection would not enforce them either
    for sql in ("UPDATE results SET face_id = ?, rank = ? WHERE rank = 1",  # ids and ranks (INTEGER columns)
                "UPDATE results SET photo_sha256 = ?, thumbnail_sha256 = ? WHERE rank = 2",
                "UPDATE sketch_versions SET sha256 = ?, version = ? WHERE id = 1",  # digests, counts
                "UPDATE generated SET sha256 = ?, parent = ?",
                "UPDATE attachments SET size = ?, sha256 = ?",
                "UPDATE signoffs SET audit_count = ?, search_id = ?",
                "UPDATE search_queries SET weight = ?, kind = ?",
                "UPDATE audit SET seq = ?, action = ? WHERE pos = 3"):
        c.execute(sql, (PAYLOAD, PAYLOAD))


def test_database_values_are_escaped_in_the_html_report() -> None:
    with full_case() as case:
        _inject(case)
        html_text = build_report(case, "html", generated_at="2026-01-01T00:00:00Z").decode("utf-8")
    parser = _Tags()
    parser.feed(html_text)
    assert {t for t, _ in parser.tags} <= ALLOWED
    assert not [(t, a) for t, attrs in parser.tags for a, _ in attrs if a.startswith("on")]
    assert "<script" not in html_text and "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
    assert html_text.count("&lt;script&gt;") >= 8  # the values are shown, escaped, not dropped


def test_html_report_carries_a_restrictive_content_security_policy() -> None:
    with full_case() as case:
        html_text = build_report(case, "html").decode("utf-8")
    parser = _Tags()
    parser.feed(html_text)
    csp = [dict(a) for t, a in parser.tags if t == "meta" and dict(a).get("http-equiv") == "Content-Security-Policy"]
    assert len(csp) == 1
    policy = csp[0]["content"] or ""
    assert "default-src 'none'" in policy and "img-src data:" in policy and "script-src" not in policy
    imgs = [dict(a)["src"] or "" for t, a in parser.tags if t == "img"]
    assert imgs and all(src.startswith("data:image/png;base64,") for src in imgs)


def test_pdf_and_json_reports_survive_the_same_tampered_values() -> None:
    with full_case() as case:
        _inject(case)
        assert build_report(case, "pdf").startswith(b"%PDF")
        assert PAYLOAD.encode() in build_report(case, "json").replace(b"\\u003c", b"<")
