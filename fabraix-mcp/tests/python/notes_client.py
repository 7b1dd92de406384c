"""Drives notes_server over stdio with the official MCP Python SDK (`mcp` from PyPI).

Usage: python3 notes_client.py <notes_server> <calls.json>

`calls.json` lists the calls to make, in order: `{"tool", "name", "meta"}`, where `meta`
(an object, or null for none) is sent as the request's `_meta`. The server gets this
process's `FABRAIX_*` and `NOTES_AUDIT` variables. Prints one JSON document: the tools the server lists, and for each
call whether it answered a tool error and its text.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(server: str, calls_path: str) -> None:
    with open(calls_path, encoding="utf-8") as file:
        calls = json.load(file)
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith("FABRAIX_") or key == "NOTES_AUDIT"
    }
    params = StdioServerParameters(command=server, env=env)
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            results = []
            for call in calls:
                result = await session.call_tool(
                    call["tool"], {"name": call["name"]}, meta=call["meta"]
                )
                text = "\n".join(
                    block.text for block in result.content if block.type == "text"
                )
                results.append({"is_error": bool(result.is_error), "text": text})
    print(json.dumps({"tools": sorted(tool.name for tool in listed.tools), "results": results}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
