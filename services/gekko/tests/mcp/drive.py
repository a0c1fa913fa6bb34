"""Drives gekko's MCP server with the official MCP Python SDK (mcp 2.3.0).

Usage:
  drive.py http URL TOKEN|- MODE STEPS_JSON
  drive.py stdio GEKKO_BIN GRPC_URL TOKEN|- MODE STEPS_JSON

MODE is the SDK's connect mode: "auto" (server/discover, falling back to initialize) or
"legacy" (the 2025-11-25 initialize handshake). STEPS_JSON is a list of steps:
  {"op": "list_tools"}
  {"op": "call", "tool": NAME, "args": {...}}
Prints one JSON object per line: first {"connected": true, "protocol": VERSION} (or
{"connect_error": TEXT} and exit 3), then one result per step:
  {"tools": [...]}                       for list_tools (name, inputSchema, annotations)
  {"is_error": B, "text": T, "structured": S}   for a call answered with a result
  {"exception": TEXT}                    for a call answered with a JSON-RPC error
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def out(obj):
    print(json.dumps(obj), flush=True)


def flatten(exc):
    """The messages of an exception and everything grouped or chained inside it."""
    parts = [f"{type(exc).__name__}: {exc}"]
    for inner in getattr(exc, "exceptions", ()) or ():
        parts.append(flatten(inner))
    if exc.__cause__ is not None:
        parts.append(flatten(exc.__cause__))
    return " | ".join(parts)


async def run(server, mode, steps):
    try:
        client = Client(server, mode=mode, read_timeout_seconds=60)
        await client.__aenter__()
    except BaseException as e:  # noqa: BLE001 - any failure to connect is the answer
        out({"connect_error": flatten(e)})
        return 3
    try:
        session = client.session
        out({"connected": True, "protocol": str(getattr(session, "protocol_version", ""))})
        for step in steps:
            if step["op"] == "list_tools":
                res = await client.list_tools()
                out({"tools": [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in res.tools]})
            elif step["op"] == "call":
                try:
                    res = await client.call_tool(step["tool"], step.get("args"))
                except Exception as e:  # noqa: BLE001 - a JSON-RPC error is an answer
                    out({"exception": flatten(e)})
                    continue
                text = "\n".join(c.text for c in res.content if getattr(c, "type", "") == "text")
                out({"is_error": bool(res.is_error), "text": text, "structured": res.structured_content})
            else:
                raise SystemExit(f"unknown step {step!r}")
    finally:
        try:
            await client.__aexit__(None, None, None)
        except BaseException:  # noqa: BLE001 - closing is best effort
            pass
    return 0


def main():
    kind = sys.argv[1]
    if kind == "http":
        url, token, mode, steps = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
        headers = {} if token == "-" else {"Authorization": f"Bearer {token}"}
        server = streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))
    elif kind == "stdio":
        gekko, grpc, token, mode, steps = sys.argv[2:7]
        args = ["mcp", "--grpc", grpc]
        if token != "-":
            args += ["--token", token]
        # The child's environment: only what gekko mcp reads, so the test decides the guard.
        env = {k: v for k, v in __import__("os").environ.items() if k in ("PATH", "MCP_SETTINGS", "COMPLIANCE_SETTINGS", "GEKKO_MCP_LOG")}
        server = StdioServerParameters(command=gekko, args=args, env=env)
    else:
        raise SystemExit(f"unknown transport {kind!r}")
    sys.exit(asyncio.run(run(server, mode, json.loads(steps))))


if __name__ == "__main__":
    main()
