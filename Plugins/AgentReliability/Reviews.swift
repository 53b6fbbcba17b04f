import ArgumentParser
import Foundation
import KhCore
import KhHTTP
import KhPluginAPI

extension Reliability {
    /// `kh reliability reviews`: review and comment loops on a pull request.
    struct Reviews: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reviews",
            abstract: "Count reviews and comments per author on a pull request and flag loops (more than --max within --window).",
            discussion: """
                Reads the pull request's reviews, issue comments and review comments through the GitHub REST API \
                (reliability.reviews.api_url, default https://api.github.com), 100 per page, following Link headers. \
                The token comes from GITHUB_TOKEN or GH_TOKEN and never reaches output, logs or evidence. Exit 1 when an \
                author posted more than --max items within any --window (the post-mortem's bot: 20 reviews in 40 minutes).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("The repository, OWNER/NAME.", valueName: "owner/name"))
        var repo: String

        @Option(name: .long, help: ArgumentHelp("The pull request number.", valueName: "n"))
        var pr: Int

        @Option(name: .long, help: ArgumentHelp("Only this author (login).", valueName: "login"))
        var author: String?

        @Option(
            name: .long, help: ArgumentHelp("More than this many within the window is a loop (default: reliability.reviews.max, 3).", valueName: "k"))
        var max: Int?

        @Option(name: .long, help: ArgumentHelp("The sliding window (default: reliability.reviews.window, 1h).", valueName: "duration"))
        var window: KhDuration?

        func validate() throws {
            let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { throw ValidationError("--repo \(repo): expected OWNER/NAME") }
            guard pr > 0 else { throw ValidationError("--pr: expected a pull request number above 0") }
            if let max, max < 1 { throw ValidationError("--max: expected a positive number") }
            if let window, window.duration <= .zero { throw ValidationError("--window: expected a duration above zero such as 40m") }
        }

        func run() async throws {
            let context = try global.makeContext()
            let config = try context.section("reliability", as: ReliabilityConfig.self)
            guard let api = URL(string: config.reviews.apiURL) else { throw KhError.usage("reliability.reviews.api_url: not a URL") }
            let tokenName = ["GITHUB_TOKEN", "GH_TOKEN"].first { !(context.environment[$0] ?? "").isEmpty }
            if tokenName == nil { context.console.warning("no GITHUB_TOKEN or GH_TOKEN: reading without authentication (60 requests an hour)") }
            let client = GitHubClient(
                api: api, token: tokenName.flatMap { context.environment[$0] }, tokenName: tokenName ?? "GITHUB_TOKEN",
                maxPages: config.reviews.maxPages, context: context)
            let limit = max ?? config.reviews.max
            let span = (window ?? config.reviews.window).duration
            var loops = false
            let code = try await context.withEvidence { run in
                let items = try await client.activity(repo: repo, pr: pr)
                let report = ReviewLoopDetector(max: limit, window: span).analyze(items.filter { author == nil || $0.author == author })
                loops = report.authors.contains { $0.loop }
                try run.record(
                    EvidenceRecord(
                        kind: "check", name: "reviews \(repo)#\(pr)", status: loops ? .fail : .pass, message: report.summary,
                        data: try JSONValue(encoding: report)))
                if context.console.format == .json {
                    try context.console.json(report)
                } else {
                    context.console.result("\(repo)#\(pr): " + report.text)
                }
                return (loops ? .checkFailed : .success, report.summary)
            }
            if code != .success { throw ExitCode(code.rawValue) }
        }
    }
}

/// A review or comment on a pull request.
public struct ReviewActivity: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case review, issueComment = "issue-comment", reviewComment = "review-comment"
    }

    public var kind: Kind
    public var author: String
    public var at: Date
    public var body: String
}

/// Reads a pull request's activity from the GitHub REST API.
struct GitHubClient: Sendable {
    let api: URL
    let client: HTTPClient
    let maxPages: Int
    let console: Console

    init(api: URL, token: String?, tokenName: String, maxPages: Int, context: CommandContext) {
        self.api = api
        self.maxPages = maxPages
        self.console = context.console
        self.client = HTTPClient(
            configuration: .init(
                connectTimeout: .seconds(10), timeout: .seconds(30), retry: .default,
                headers: ["User-Agent": "kh/\(KhVersion.current)", "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"],
                authentication: token.map { .bearer($0, name: tokenName, redactor: context.redactor) }),
            clock: context.clock, redactor: context.redactor)
    }

    /// Reviews, issue comments and review comments, oldest first.
    func activity(repo: String, pr: Int) async throws -> [ReviewActivity] {
        async let reviews = list("repos/\(repo)/pulls/\(pr)/reviews", kind: .review, time: "submitted_at")
        async let issueComments = list("repos/\(repo)/issues/\(pr)/comments", kind: .issueComment, time: "created_at")
        async let reviewComments = list("repos/\(repo)/pulls/\(pr)/comments", kind: .reviewComment, time: "created_at")
        return try await (reviews + issueComments + reviewComments).sorted { $0.at < $1.at }
    }

    /// Every page of a listing (`per_page=100`, following `rel="next"`), at most `maxPages`.
    func list(_ path: String, kind: ReviewActivity.Kind, time: String) async throws -> [ReviewActivity] {
        var next: URL? = URL(string: api.absoluteString.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + "/" + path + "?per_page=100")
        var items: [ReviewActivity] = []
        var pages = 0
        while let url = next {
            pages += 1
            if pages > maxPages {
                console.warning("\(path): stopped after \(maxPages) pages (reliability.reviews.max_pages)")
                break
            }
            let response = try await client.send(HTTPRequest(.get, url))
            guard response.isSuccess else {
                let message = (try? GenericJSON.parse(response.body))?["message"]?.stringValue ?? response.text.prefix(200).description
                let hint: String? =
                    switch response.status {
                    case 401: "check GITHUB_TOKEN / GH_TOKEN"
                    case 403, 429: "rate limited or forbidden: wait for X-RateLimit-Reset or use a token with access"
                    case 404: "check --repo and --pr (a private repository needs a token that can read it)"
                    default: nil
                    }
                throw KhError.external("GET \(api.host ?? "")/\(path): HTTP \(response.status) \(message)", hint: hint)
            }
            for entry in try GenericJSON.parse(response.body).arrayValue ?? [] {
                guard let author = entry.at(["user", "login"])?.stringValue, let at = entry[time]?.dateValue else { continue }
                items.append(ReviewActivity(kind: kind, author: author, at: at, body: entry["body"]?.stringValue ?? ""))
            }
            next = GitHubLink.next(response.headers["Link"])
        }
        return items
    }

}

/// GitHub's pagination header.
public enum GitHubLink {
    /// The `rel="next"` URL of a Link header.
    public static func next(_ header: String?) -> URL? {
        guard let header else { return nil }
        for part in header.split(separator: ",") {
            let pieces = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard pieces.count >= 2, pieces.dropFirst().contains(where: { $0 == "rel=\"next\"" }) else { continue }
            let target = pieces[0].trimmingCharacters(in: CharacterSet(charactersIn: "<>"))
            return URL(string: target)
        }
        return nil
    }
}

/// Per-author counts and the densest window: more than `max` in any `window` is a loop.
public struct ReviewLoopDetector: Sendable {
    public var max: Int
    public var window: Duration

    public init(max: Int, window: Duration) {
        self.max = max
        self.window = window
    }

    public struct AuthorReport: Codable, Sendable, Equatable {
        public var author: String
        public var total: Int
        public var reviews: Int
        public var issueComments: Int
        public var reviewComments: Int
        /// The most items within any window.
        public var maxInWindow: Int
        public var windowStart: Date?
        public var windowEnd: Date?
        /// Items whose body repeats an earlier one of the same author.
        public var repeatedBodies: Int
        public var loop: Bool
    }

    public struct Report: Codable, Sendable, Equatable {
        public var max: Int
        public var windowSeconds: Double
        public var total: Int
        public var authors: [AuthorReport]

        public var summary: String {
            let loops = authors.filter(\.loop)
            guard !loops.isEmpty else {
                return "\(total) reviews and comments, no loop (max \(max) per \(Duration.seconds(windowSeconds).humanDescription))"
            }
            return loops.map { "\($0.author): \($0.maxInWindow) within \(Duration.seconds(windowSeconds).humanDescription) (max \(max))" }
                .joined(separator: "; ")
        }

        var text: String {
            var lines = ["\(total) reviews and comments; a loop is more than \(max) within \(Duration.seconds(windowSeconds).humanDescription)"]
            for author in authors {
                var line = "  \(author.loop ? "LOOP" : "ok  ")  \(author.author): \(author.total) (\(author.reviews) reviews, "
                line += "\(author.issueComments) comments, \(author.reviewComments) review comments), at most \(author.maxInWindow) in a window"
                if author.loop, let start = author.windowStart, let end = author.windowEnd {
                    line += " (\(Timestamp.iso8601(start)) – \(Timestamp.iso8601(end)))"
                }
                if author.repeatedBodies > 0 { line += ", \(author.repeatedBodies) repeated bodies" }
                lines.append(line)
            }
            lines.append(summary)
            return lines.joined(separator: "\n")
        }
    }

    public func analyze(_ items: [ReviewActivity]) -> Report {
        var byAuthor: [String: [ReviewActivity]] = [:]
        for item in items { byAuthor[item.author, default: []].append(item) }
        let span = window.seconds
        var authors: [AuthorReport] = []
        for (author, list) in byAuthor {
            let sorted = list.sorted { $0.at < $1.at }
            var best = 0
            var bestRange: (Date, Date)?
            var start = 0
            for end in sorted.indices {
                while sorted[end].at.timeIntervalSince(sorted[start].at) > span { start += 1 }
                if end - start + 1 > best {
                    best = end - start + 1
                    bestRange = (sorted[start].at, sorted[end].at)
                }
            }
            var seen = Set<String>()
            var repeated = 0
            for item in sorted {
                let normalized = item.body.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
                if !normalized.isEmpty && !seen.insert(normalized).inserted { repeated += 1 }
            }
            authors.append(
                AuthorReport(
                    author: author, total: sorted.count, reviews: sorted.filter { $0.kind == .review }.count,
                    issueComments: sorted.filter { $0.kind == .issueComment }.count,
                    reviewComments: sorted.filter { $0.kind == .reviewComment }.count, maxInWindow: best, windowStart: bestRange?.0,
                    windowEnd: bestRange?.1, repeatedBodies: repeated, loop: best > max))
        }
        authors.sort { ($0.loop ? 0 : 1, -$0.total, $0.author) < ($1.loop ? 0 : 1, -$1.total, $1.author) }
        return Report(max: max, windowSeconds: span, total: items.count, authors: authors)
    }
}
