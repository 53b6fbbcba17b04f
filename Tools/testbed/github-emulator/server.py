#!/usr/bin/env python3
"""GitHub REST emulator for kh's agent-reliability tests: pull-request reviews, issue
comments and review comments with GitHub's documented shapes and Link-header pagination.
See README.md beside this file for what it emulates and what it leaves out."""
import argparse
import datetime
import json
import os
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCS = "https://docs.github.com/rest"


def iso(base, minutes):
    moment = base + datetime.timedelta(minutes=minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class State:
    def __init__(self, data, token):
        self.lock = threading.Lock()
        self.token = token
        self.requests = []
        self.hooks = {}
        self.failures = {}
        base = datetime.datetime.strptime(data.get("base_time", "2026-01-01T12:00:00Z"), "%Y-%m-%dT%H:%M:%SZ")
        self.listings = {}
        next_id = 1000
        users = {}

        def user(login):
            if login not in users:
                users[login] = {"login": login, "id": 500 + len(users),
                                "type": "Bot" if login.endswith("[bot]") else "User"}
            return users[login]

        for key, pull in data.get("pulls", {}).items():
            repo, number = key.split("#")
            reviews, issue_comments, review_comments = [], [], []
            for login, minute, state, body in pull.get("reviews", []):
                next_id += 1
                reviews.append({
                    "id": next_id, "node_id": "PRR_%d" % next_id, "user": user(login), "body": body, "state": state,
                    "html_url": "https://github.example/%s/pull/%s#pullrequestreview-%d" % (repo, number, next_id),
                    "pull_request_url": "https://api.github.example/repos/%s/pulls/%s" % (repo, number),
                    "author_association": "CONTRIBUTOR", "submitted_at": iso(base, minute), "commit_id": "0" * 40})
            for login, minute, body in pull.get("issue_comments", []):
                next_id += 1
                issue_comments.append({
                    "id": next_id, "node_id": "IC_%d" % next_id, "user": user(login), "body": body,
                    "html_url": "https://github.example/%s/pull/%s#issuecomment-%d" % (repo, number, next_id),
                    "author_association": "CONTRIBUTOR", "created_at": iso(base, minute), "updated_at": iso(base, minute)})
            for login, minute, body in pull.get("review_comments", []):
                next_id += 1
                review_comments.append({
                    "id": next_id, "node_id": "PRRC_%d" % next_id, "user": user(login), "body": body,
                    "pull_request_review_id": next_id - 1, "path": "src/main.rs", "position": 1,
                    "html_url": "https://github.example/%s/pull/%s#discussion_r%d" % (repo, number, next_id),
                    "author_association": "CONTRIBUTOR", "created_at": iso(base, minute), "updated_at": iso(base, minute)})
            self.listings["/repos/%s/pulls/%s/reviews" % (repo, number)] = reviews
            self.listings["/repos/%s/issues/%s/comments" % (repo, number)] = issue_comments
            self.listings["/repos/%s/pulls/%s/comments" % (repo, number)] = review_comments


class Handler(BaseHTTPRequestHandler):
    server_version = "GitHub.com-emulator"

    def log_message(self, fmt, *args):  # quiet: tests read /_emulator/requests instead
        pass

    def send(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def authorized(self, state):
        if not state.token:
            return True
        header = self.headers.get("Authorization", "")
        return header in ("Bearer " + state.token, "token " + state.token)

    def do_GET(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path == "/_emulator/requests":
            with state.lock:
                return self.send(200, state.requests)
        if url.path.startswith("/_emulator/hooks/"):
            with state.lock:
                return self.send(200, state.hooks.get(url.path.rsplit("/", 1)[1], []))
        ok = self.authorized(state)
        with state.lock:
            state.requests.append({"method": "GET", "path": url.path, "query": url.query, "authorized": ok,
                                   "accept": self.headers.get("Accept", ""),
                                   "apiVersion": self.headers.get("X-GitHub-Api-Version", "")})
        if not ok:
            return self.send(401, {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"})
        items = state.listings.get(url.path)
        if items is None:
            return self.send(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})
        try:
            per_page = min(100, max(1, int(query.get("per_page", ["30"])[0])))
            page = max(1, int(query.get("page", ["1"])[0]))
        except ValueError:
            return self.send(422, {"message": "Validation Failed", "documentation_url": DOCS, "status": "422"})
        last = max(1, (len(items) + per_page - 1) // per_page)
        chunk = items[(page - 1) * per_page: page * per_page]
        host = "http://%s" % self.headers.get("Host", "127.0.0.1")

        def link(number):
            params = dict((k, v[0]) for k, v in query.items())
            params["per_page"] = str(per_page)
            params["page"] = str(number)
            return "<%s%s?%s>" % (host, url.path, urllib.parse.urlencode(params))

        links = []
        if page > 1:
            links.append('%s; rel="prev"' % link(min(page - 1, last)))
        if page < last:
            links.append('%s; rel="next"' % link(page + 1))
            links.append('%s; rel="last"' % link(last))
        if page > 1:
            links.append('%s; rel="first"' % link(1))
        headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Used": "1",
                   "X-RateLimit-Reset": "4102444800", "X-RateLimit-Resource": "core",
                   "X-GitHub-Api-Version-Selected": "2022-11-28"}
        if links:
            headers["Link"] = ", ".join(links)
        self.send(200, chunk, headers)

    def do_POST(self):
        state = self.server.state
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length", "0") or "0")
        body = self.rfile.read(length) if length else b""
        if url.path.startswith("/_emulator/hooks/") and url.path.endswith("/fail"):
            name = url.path.split("/")[3]
            count = int(urllib.parse.parse_qs(url.query).get("count", ["1"])[0])
            with state.lock:
                state.failures[name] = count
            return self.send(200, {"failing": count})
        if url.path.startswith("/_hooks/"):
            name = url.path.rsplit("/", 1)[1]
            with state.lock:
                if state.failures.get(name, 0) > 0:
                    state.failures[name] -= 1
                    return self.send(503, {"message": "Service Unavailable"})
                try:
                    parsed = json.loads(body or b"null")
                except ValueError:
                    return self.send(400, {"message": "Problems parsing JSON"})
                bearer = self.headers.get("Authorization", "").startswith("Bearer ")
                state.hooks.setdefault(name, []).append({"body": parsed, "bearer": bearer})
            return self.send(200, {"ok": True})
        self.send(404, {"message": "Not Found", "documentation_url": DOCS, "status": "404"})


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--token-file")
    args = parser.parse_args()
    with open(args.data) as handle:
        data = json.load(handle)
    token = None
    if args.token_file:
        with open(args.token_file) as handle:
            token = handle.read().strip()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state = State(data, token)
    temp = args.port_file + ".tmp"
    with open(temp, "w") as handle:
        handle.write(str(server.server_address[1]))
    os.rename(temp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
