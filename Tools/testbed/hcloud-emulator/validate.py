#!/usr/bin/env python3
"""Validates what an emulator recorded against the official Hetzner Cloud OpenAPI spec.

    validate.py --endpoint http://127.0.0.1:PORT/v1 --token-file FILE [--since N] [--requests] [--responses]
                [--user-agent PREFIX] [--spec PATH] [--json]

Reads GET /__emulator/requests and checks, per recorded request, its query parameters and JSON body
(--requests; strict: no parameter or top-level body field the spec does not name) and the
emulator's response (--responses; default both). --user-agent keeps only requests whose
User-Agent starts with PREFIX (e.g. `kh/` for kh's own client). Prints every problem and
`N passed, M failed`; exit 1 when anything failed or nothing was checked.
"""

import argparse
import json
import sys
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hcloudemu.spec import SpecChecker  # noqa: E402


def fetch_log(endpoint, token, since=0):
    base = endpoint.rstrip("/")
    base = base[:-3] if base.endswith("/v1") else base
    request = urllib.request.Request(f"{base}/__emulator/requests?since={since}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def check(entries, checker, requests=True, responses=True):
    passed, problems = 0, []
    for entry in entries:
        found = []
        if requests:
            found += checker.check_request(entry["method"], entry["path"], entry["query"], entry["body"])
        if responses:
            found += checker.check_response(entry["method"], entry["path"], entry["status"], entry.get("response"))
        if found:
            problems += found
        else:
            passed += 1
    return passed, problems


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--since", type=int, default=0)
    parser.add_argument("--requests", action="store_true")
    parser.add_argument("--responses", action="store_true")
    parser.add_argument("--user-agent", default="")
    parser.add_argument("--spec")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    both = not args.requests and not args.responses
    token = Path(args.token_file).read_text().strip()
    log = fetch_log(args.endpoint, token, args.since)
    entries = [e for e in log["requests"] if e.get("user_agent", "").startswith(args.user_agent)]
    checker = SpecChecker(args.spec)
    passed, problems = check(entries, checker, args.requests or both, args.responses or both)
    failed = len(entries) - passed
    if args.json:
        print(json.dumps({"checked": len(entries), "passed": passed, "failed": failed, "problems": problems}))
    else:
        for problem in problems:
            print(f"  FAIL  {problem}")
        print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or not entries else 0)


if __name__ == "__main__":
    main()
