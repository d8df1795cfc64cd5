#!/usr/bin/env python3
"""Verify agentwatch commands the way an enforcer should, before acting on any.

Reads commands (JSON lines) from stdin, prints `ok <command_id>` or `rejected ...` per
line, and exits 1 if any command must not be acted on. Needs the `cryptography`
package. Usage:

    python3 verify_command.py agentwatch.pub < commands.jsonl
"""
import base64
import json
import sys
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

DOMAIN = b"agentwatch.command.v1\n"


def load_public_key(path):
    with open(path) as f:
        line = next(l.strip() for l in f if l.strip() and not l.startswith("#"))
    return base64.b64decode(line)


def verify(command, public_key, now):
    signature = command.pop("signature", None)
    if signature is None:
        return "unsigned"
    if signature.get("algorithm") != "ed25519":
        return "malformed"
    # 1. The signed bytes: the domain prefix, then the command without "signature",
    #    keys sorted, no whitespace, UTF-8 (non-ASCII characters unescaped).
    message = DOMAIN + json.dumps(
        command, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            base64.b64decode(signature["value"]), message
        )
    except (InvalidSignature, ValueError):
        return "bad_signature"
    # 2. Only then trust the contents: a command is time-boxed.
    expires = datetime.fromisoformat(command["expires_at"].replace("Z", "+00:00"))
    if now >= expires:
        return "expired"
    return None


def main():
    public_key = load_public_key(sys.argv[1])
    now = (
        datetime.fromisoformat(sys.argv[2].replace("Z", "+00:00"))
        if len(sys.argv) > 2
        else datetime.now(timezone.utc)
    )
    failed = 0
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        command = json.loads(line)
        problem = verify(command, public_key, now)
        if problem:
            failed += 1
            print(f"rejected line {number} [{problem}]")
        else:
            print(f"ok {command['command_id']}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
