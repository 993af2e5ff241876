"""Controllers: what the examiner's actions do, between the views and the operations.

A controller receives its collaborators (the op runner, other controllers, and the views it talks to,
typed by the small protocols in :mod:`sketchface_desktop.controllers.ports`); it imports no widget
module and never reaches into the main window. Only :class:`CaseController` writes the open case.
"""
