"""The sketch-encoder trainer (seed 000's recipe): ``python -m trainer train --config ... --set key=value``.

It imports ``engine.sketch`` for the model and the preprocessing (one definition, shared with the
app) and ``engine.faces`` for the frozen ArcFace teacher; never Qt.
"""
