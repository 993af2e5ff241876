"""Icons, style sheet and fonts shipped with SketchFace (a package so importlib.resources finds them)."""
