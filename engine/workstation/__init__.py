"""The use-case layer: the workstation the command line and the desktop talk to (see :mod:`.core`)."""

from engine.workstation.core import SERVER_PREFIX, Workstation, is_server_key, server_key, split_server_key
from engine.workstation.record import record_finished, record_search

__all__ = ["SERVER_PREFIX", "Workstation", "is_server_key", "record_finished", "record_search", "server_key",
           "split_server_key"]
