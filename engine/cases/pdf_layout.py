"""Page layout for the PDF report: defined in :mod:`engine.pdf_layout` (below cases and validate)."""

from engine.pdf_layout import DECISION_LABEL, GREEN, GREY, RED, RULE, Cell, ReportPDF

__all__ = ["DECISION_LABEL", "GREEN", "GREY", "RED", "RULE", "Cell", "ReportPDF"]
