"""A small MCP server written with the official Python SDK (mcp 2.x, MCPServer), for
gekko's MCP client tests.

Tools:
  add(a, b)        -> a + b (integers), with structured content
  echo(text)       -> text
  fail(reason)     -> a tool error (isError: true) carrying `reason`
  slow(seconds)    -> sleeps, then answers "done" (call timeouts)
  die()            -> the process exits at once, without answering (a server that dies
                      mid-session)

Transports:
  --transport stdio                 MCP on stdin/stdout
  --transport http --port P         streamable HTTP at http://127.0.0.1:P/mcp
      [--token T]                   requires `Authorization: Bearer T`, else 401

--die-after N makes the server exit after its N-th tool call (the N-th call gets no
answer), a second way to die mid-session.
"""

import argparse
import asyncio
import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

parser = argparse.ArgumentParser()
parser.add_argument("--transport", choices=["stdio", "http"], required=True)
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--token", default=None)
parser.add_argument("--die-after", type=int, default=0)
parser.add_argument("--name", default="gekko-test-tools")
args = parser.parse_args()

server = MCPServer(args.name, version="1.0.0")
calls = 0


def count_call():
    """Exits the process (no answer) on the --die-after'th call."""
    global calls
    calls += 1
    if args.die_after and calls >= args.die_after:
        sys.stderr.write(f"dying after {calls} calls\n")
        sys.stderr.flush()
        os._exit(3)


@server.tool(description="Adds two integers.")
def add(a: int, b: int) -> int:
    count_call()
    return a + b


@server.tool(description="Returns the text it was given.")
def echo(text: str) -> str:
    count_call()
    return text


@server.tool(description="Always fails, with the given reason.")
def fail(reason: str) -> str:
    count_call()
    # ToolError: the SDK passes its message to the client (other exceptions are hidden).
    raise ToolError(reason)


@server.tool(description="Sleeps for the given seconds, then answers done.")
async def slow(seconds: float) -> str:
    count_call()
    await asyncio.sleep(seconds)
    return "done"


@server.tool(description="Exits the server process at once, without answering.")
def die() -> str:
    sys.stderr.write("die called\n")
    sys.stderr.flush()
    os._exit(3)


class BearerGate:
    """ASGI wrapper: every HTTP request must carry `Authorization: Bearer <token>`."""

    def __init__(self, app, token):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != self.expected:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"www-authenticate", b'Bearer error="invalid_token"'),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": b'{"error":"invalid_token"}'})
                return
        await self.app(scope, receive, send)


if args.transport == "stdio":
    server.run("stdio")
else:
    import uvicorn

    app = server.streamable_http_app()
    if args.token:
        app = BearerGate(app, args.token)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")
