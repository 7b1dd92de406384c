#!/usr/bin/env python3
"""An agent written without the Rust SDK: it speaks the Fabraix API with Python's urllib.

Usage: FABRAIX_BASE_URL=... FABRAIX_API_KEY=... python3 agent.py PLAN_JSON

PLAN_JSON: {"agent_id": UUID, "system_prompt": str,
            "steps": [{"event": TYPE, "content": any JSON},
                      {"check": NAME, "description": str, "arguments": {...}}]}
Registers one run, sends each step in order, and prints
{"trace_id": ..., "answers": [{"status": int, "body": ...}, ...]} on stdout.
"""

import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request


def post(base_url, key, path, body):
    request = urllib.request.Request(
        base_url + path,
        data=json.dumps(body).encode("utf-8"),
        headers={"x-api-key": key, "content-type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def now_iso():
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000)


def main():
    base_url = os.environ["FABRAIX_BASE_URL"].rstrip("/")
    key = os.environ["FABRAIX_API_KEY"]
    plan = json.loads(sys.argv[1])

    status, registered = post(base_url, key, "/register-agent-run", {
        "agent_id": plan["agent_id"],
        "timestamp": now_iso(),
        "system_prompt": plan["system_prompt"],
    })
    if status != 200:
        print(json.dumps({"error": registered, "status": status}))
        return 1
    trace_id = registered["trace_id"]

    answers = []
    for step in plan["steps"]:
        if "event" in step:
            status, body = post(base_url, key, "/event", {
                "event_type": step["event"],
                "trace_id": trace_id,
                "timestamp": time.time(),
                "content": json.dumps(step["content"]),
                "schema": json.dumps(step.get("schema", {"type": "object"})),
            })
        else:
            arguments = step.get("arguments", {})
            status, body = post(base_url, key, "/check", {
                "event_type": "action_check",
                "trace_id": trace_id,
                "timestamp": time.time(),
                "content": json.dumps(arguments),
                "schema": json.dumps({
                    "type": "function",
                    "name": step["check"],
                    "description": step.get("description", ""),
                    "parameters": {
                        "type": "object",
                        "properties": {name: {} for name in arguments},
                    },
                }),
            })
        answers.append({"status": status, "body": body})

    print(json.dumps({"trace_id": trace_id, "answers": answers}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
