"""Keep gRPC's C-core log lines (``E1130 ... add_port.cc:83] ...``) off the terminal.

gRPC reads ``GRPC_VERBOSITY`` once, when it is first imported, so this module
is imported before anything imports grpc. capsync reports every failure itself,
in one line that says the cause; set ``GRPC_VERBOSITY`` (e.g. ``debug``) to
see gRPC's own lines again.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRPC_VERBOSITY", "NONE")
