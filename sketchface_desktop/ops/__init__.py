"""The desktop's operations: one module per domain, each operation a function that picks its lane.

Anki's ``aqt/operations`` pattern: an operation is built by a function (``ops.cases.sign_off(...)``),
given its success and failure handlers, and run on the job hub (:mod:`sketchface_desktop.workers`).
Views and controllers never choose a lane or call ``submit`` themselves.
"""

from sketchface_desktop.ops.base import Lane, Op, Runner

__all__ = ["Lane", "Op", "Runner"]
