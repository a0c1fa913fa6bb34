"""A process that is started as an MCP stdio server but never answers: it reads stdin
(so the client's writes succeed) and never writes a byte. gekko's `initialize` to it must
time out and report the server down."""

import sys

for _line in sys.stdin:
    pass
