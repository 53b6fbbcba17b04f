import AgentReliability
import Foundation
import KhCore
import KhHTTP
import KhTestSupport
import Testing

/// The GitHub REST emulator (Tools/testbed/github-emulator), started by the test on a free
/// loopback port and stopped by PID.
final class GitHubEmulator: @unchecked Sendable {
    let process: Process
    let port: Int
    let directory: TemporaryDirectory
    var url: String { "http://127.0.0.1:\(port)" }

    init(data: String, token: String?) async throws {
        directory = TemporaryDirectory("kh-github-emu")
        let dataFile = try directory.write("data.json", data)
        var arguments = [
            BuiltProducts.repositoryRoot + "/Tools/testbed/github-emulator/server.py", "--data", dataFile, "--port-file", directory.path + "/port",
        ]
        if let token { arguments += ["--token-file", try directory.write("token", token)] }
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-B"] + arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let portFile = directory.path + "/port"
        try await eventually("the GitHub emulator to listen", timeout: .seconds(20)) { FileManager.default.fileExists(atPath: portFile) }
        port = Int(try String(contentsOfFile: portFile, encoding: .utf8)) ?? 0
    }

    deinit {
        // SIGKILL: a child of the test runner may inherit a blocked SIGTERM.
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// A test endpoint's JSON.
    func get(_ path: String) async throws -> JSONValue {
        let response = try await HTTPClient(configuration: .init(retry: .none)).send(HTTPRequest(.get, URL(string: url + path)!))
        return try GenericJSON.parse(response.body)
    }

    func post(_ path: String) async throws {
        _ = try await HTTPClient(configuration: .init(retry: .none)).send(HTTPRequest(.post, URL(string: url + path)!, body: Data()))
    }
}

@Suite("kh reliability reviews against a GitHub REST emulator")
struct ReviewsTests {
    static let token = "ghp_reliabilityTestToken0123456789"

    /// cipher[bot] posts 20 reviews in 40 minutes (the post-mortem); alice writes 150
    /// comments an hour apart (two pages, never a loop); bob two review comments.
    static var data: String {
        var reviews: [String] = (0..<20).map { "[\"cipher[bot]\", \(60 + $0 * 2), \"COMMENTED\", \"Security review: no issues found.\"]" }
        reviews.append("[\"alice\", 10, \"APPROVED\", \"Looks good\"]")
        let comments = (0..<150).map { "[\"alice\", \($0 * 60), \"status update \($0)\"]" }
        let reviewComments = ["[\"bob\", 5, \"nit: naming\"]", "[\"bob\", 6, \"nit: spacing\"]"]
        return """
            {"base_time": "2026-11-21T12:00:00Z", "pulls": {"5dlabs/cto#1546": {
              "reviews": [\(reviews.joined(separator: ","))],
              "issue_comments": [\(comments.joined(separator: ","))],
              "review_comments": [\(reviewComments.joined(separator: ","))]}}}
            """
    }

    static func run(_ server: GitHubEmulator, _ extra: [String], token: String? = token) async throws -> (KhBinary.Outcome, TemporaryDirectory) {
        let work = TemporaryDirectory("kh-reviews")
        let config = try work.write("kh.yaml", "reliability:\n  reviews:\n    api_url: \(server.url)\n")
        var env: [String: String] = ["GITHUB_TOKEN": "", "GH_TOKEN": ""]
        if let token { env["GH_TOKEN"] = token }
        let outcome = try await KhBinary.run(
            ["reliability", "reviews", "--config", config, "--evidence-dir", work.path + "/runs"] + extra, in: work.path, environment: env)
        return (outcome, work)
    }

    @Test("the review loop is flagged; pagination is followed with per_page=100; the token never appears")
    func loopFlagged() async throws {
        let server = try await GitHubEmulator(data: Self.data, token: Self.token)
        let (outcome, work) = try await Self.run(
            server, ["--repo", "5dlabs/cto", "--pr", "1546", "--max", "3", "--window", "40m", "--output", "json"])
        #expect(outcome.code == 1, "\(outcome.stderr)")
        let report = try JSONDecoder.kh.decode(ReviewLoopDetector.Report.self, from: Data(outcome.stdout.utf8))
        #expect(report.total == 20 + 1 + 150 + 2)
        let cipher = try #require(report.authors.first { $0.author == "cipher[bot]" })
        #expect(cipher.loop && cipher.maxInWindow == 20 && cipher.reviews == 20 && cipher.repeatedBodies == 19)
        let alice = try #require(report.authors.first { $0.author == "alice" })
        #expect(!alice.loop && alice.total == 151 && alice.issueComments == 150 && alice.maxInWindow == 2)
        #expect(report.authors.first { $0.author == "bob" }?.loop == false)

        let requests = try await server.get("/_emulator/requests").arrayValue ?? []
        let paths = requests.compactMap { $0["path"]?.stringValue }
        #expect(paths.filter { $0 == "/repos/5dlabs/cto/issues/1546/comments" }.count == 2, "two pages of 100")
        #expect(requests.allSatisfy { $0["authorized"]?.boolValue == true })
        #expect(requests.allSatisfy { ($0["query"]?.stringValue ?? "").contains("per_page=100") })
        #expect(requests.allSatisfy { $0["accept"]?.stringValue == "application/vnd.github+json" && $0["apiVersion"]?.stringValue == "2022-11-28" })
        #expect(!outcome.stdout.contains(Self.token) && !outcome.stderr.contains(Self.token))
        for file in FileManager.default.enumerator(atPath: work.path + "/runs")?.compactMap({ $0 as? String }) ?? [] {
            let text = (try? String(contentsOfFile: work.path + "/runs/" + file, encoding: .utf8)) ?? ""
            #expect(!text.contains(Self.token), "token in evidence \(file)")
        }
    }

    @Test("one author without a loop passes; text output names the loop")
    func authorFilterAndText() async throws {
        let server = try await GitHubEmulator(data: Self.data, token: Self.token)
        let (alice, _) = try await Self.run(server, ["--repo", "5dlabs/cto", "--pr", "1546", "--author", "alice", "--max", "3", "--window", "40m"])
        #expect(alice.code == 0, "\(alice.stderr)")
        let (all, _) = try await Self.run(server, ["--repo", "5dlabs/cto", "--pr", "1546", "--max", "3", "--window", "40m"])
        #expect(all.code == 1)
        #expect(all.stdout.contains("LOOP  cipher[bot]: 20 (20 reviews, 0 comments, 0 review comments), at most 20 in a window"))
        // Twenty in forty minutes is fine with --max 20.
        #expect(try await Self.run(server, ["--repo", "5dlabs/cto", "--pr", "1546", "--max", "20", "--window", "40m"]).0.code == 0)
    }

    @Test("a wrong token is exit 4 naming the 401; an unknown pull request is exit 4 naming the 404")
    func apiErrors() async throws {
        let server = try await GitHubEmulator(data: Self.data, token: Self.token)
        let (bad, _) = try await Self.run(server, ["--repo", "5dlabs/cto", "--pr", "1546"], token: "ghp_wrongwrongwrong")
        #expect(bad.code == 4)
        #expect(bad.stderr.contains("HTTP 401 Bad credentials") && !bad.stderr.contains("ghp_wrongwrongwrong"))
        let (missing, _) = try await Self.run(server, ["--repo", "5dlabs/cto", "--pr", "9"])
        #expect(missing.code == 4 && missing.stderr.contains("HTTP 404 Not Found"))
    }

    @Test("Link header parsing")
    func linkHeader() {
        let next = URL(string: "https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3")
        let header =
            "<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=1>; rel=\"prev\", "
            + "<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=3>; rel=\"next\", "
            + "<https://api.github.com/repositories/1/issues/2/comments?per_page=100&page=5>; rel=\"last\""
        #expect(GitHubLink.next(header) == next)
        #expect(GitHubLink.next("<https://x/y?page=1>; rel=\"first\"") == nil)
    }
}

extension JSONDecoder {
    static var kh: JSONDecoder { KhJSON.decoder() }
}
