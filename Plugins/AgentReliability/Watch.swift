import ArgumentParser
import Foundation
import KhCore
import KhHTTP
import KhPluginAPI

extension Reliability {
    /// `kh reliability watch`: the audit on a loop, changes as JSON lines.
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "watch",
            abstract: "Repeat the audit; print each finding once when it appears and once when it clears (JSON lines), optionally POST them.",
            discussion: """
                Each line: {"event": "appeared"|"cleared"|"error", "at": …, "iteration": N, "finding": {…}}. Findings are \
                deduplicated by their stable key; the only state kept between rounds is the current set of findings, so \
                memory stays bounded over days. With a webhook (--webhook or reliability.watch.webhook, bearer token from \
                reliability.watch.webhook_token or KH_WEBHOOK_TOKEN) each line is POSTed as JSON, with bounded retries. \
                SIGINT/SIGTERM stops it between lines (exit 130).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Time between audits (default: reliability.watch.interval, 1m).", valueName: "duration"))
        var interval: KhDuration?

        @Option(name: .long, help: ArgumentHelp("Stop after this many audits (default: run until interrupted).", valueName: "n"))
        var iterations: Int?

        @Option(name: .long, help: ArgumentHelp("Watch manifests in this folder instead of the cluster.", valueName: "dir"))
        var manifests: String?

        @Option(name: .long, help: ArgumentHelp("POST each change to this URL.", valueName: "url"))
        var webhook: String?

        @Option(name: .long, help: ArgumentHelp("Run only this rule (repeatable).", valueName: "rule"))
        var only: [String] = []

        @Option(name: [.customShort("n"), .long], help: ArgumentHelp("Namespace to read (repeatable).", valueName: "namespace"))
        var namespace: [String] = []

        func validate() throws {
            if let iterations, iterations < 1 { throw ValidationError("--iterations: expected a positive number, got \(iterations)") }
            if let interval, interval.duration <= .zero { throw ValidationError("--interval: expected a duration above zero such as 30s") }
            for rule in only where Rule.named(rule) == nil {
                throw ValidationError("--only \(rule): unknown rule; expected one of \(Rule.all.map(\.id).joined(separator: ", "))")
            }
            if let webhook, URL(string: webhook)?.scheme?.hasPrefix("http") != true {
                throw ValidationError("--webhook \(webhook): expected an http:// or https:// URL")
            }
        }

        func run() async throws {
            let context = try global.makeContext()
            let config = try context.section("reliability", as: ReliabilityConfig.self)
            let hookURL = (webhook ?? config.watch.webhook).flatMap(URL.init(string:))
            if let raw = webhook ?? config.watch.webhook, hookURL == nil { throw KhError.usage("reliability.watch.webhook \(raw): not a URL") }
            let token = config.watch.webhookToken?.value ?? context.environment["KH_WEBHOOK_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            let poster = hookURL.map { WebhookPoster(url: $0, token: token, attempts: config.watch.webhookAttempts, context: context) }
            let watcher = Watcher()
            let interval = (self.interval ?? config.watch.interval).duration
            let code = try await context.withEvidence { run in
                var iteration = 0
                var failedRounds = 0
                while iterations.map({ iteration < $0 }) ?? true {
                    iteration += 1
                    let now = context.clock.now()
                    let auditor = Auditor(config: config, now: now, only: Set(only))
                    var lines: [WatchEvent] = []
                    do {
                        // No kubectl log: a watch runs for days and the listings would fill the disk.
                        let report = try await AuditRunner.run(
                            auditor: auditor, manifests: manifests, namespaces: namespace.isEmpty ? config.namespaces : namespace, context: context,
                            logPath: nil)
                        lines = watcher.update(report.findings, at: now, iteration: iteration)
                    } catch let error as CancellationError {
                        throw error
                    } catch {
                        failedRounds += 1
                        lines = [WatchEvent(event: .error, at: now, iteration: iteration, finding: nil, message: "\(error)")]
                    }
                    for line in lines {
                        context.console.write(try line.jsonLine() + "\n", to: .stdout)
                        if let poster { await poster.post(line) }
                    }
                    if iterations.map({ iteration >= $0 }) ?? false { break }
                    try await context.clock.sleep(interval)
                }
                let totals = watcher.totals
                try run.record(
                    EvidenceRecord(
                        kind: "watch", name: "watch", status: failedRounds == 0 ? .pass : .warn,
                        message: "\(iteration) rounds, \(totals.appeared) appeared, \(totals.cleared) cleared, \(watcher.current.count) open",
                        data: [
                            "rounds": .number(Double(iteration)), "appeared": .number(Double(totals.appeared)),
                            "cleared": .number(Double(totals.cleared)), "open": .number(Double(watcher.current.count)),
                            "failedRounds": .number(Double(failedRounds)), "webhookFailures": .number(Double(poster?.failures ?? 0)),
                        ]))
                return (.success, "\(iteration) rounds, \(watcher.current.count) findings open")
            }
            if code != .success { throw ExitCode(code.rawValue) }
        }
    }
}

/// One line of `watch` output.
public struct WatchEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case appeared, cleared, error
    }

    public var event: Kind
    public var at: Date
    public var iteration: Int
    public var finding: Finding?
    public var message: String?

    public init(event: Kind, at: Date, iteration: Int, finding: Finding?, message: String? = nil) {
        self.event = event
        self.at = at
        self.iteration = iteration
        self.finding = finding
        self.message = message
    }

    func jsonLine() throws -> String { String(decoding: try KhJSON.encoder().encode(self), as: UTF8.self) }
}

/// The findings open now, and what changed since the last round. The only state a
/// watch keeps: its size is the number of open findings, whatever the run time.
public final class Watcher: @unchecked Sendable {
    /// Open findings by key.
    public private(set) var current: [String: Finding] = [:]
    public private(set) var totals = (appeared: 0, cleared: 0)

    public init() {}

    /// Replaces the open set; returns the changes (appeared sorted by key, then cleared).
    public func update(_ findings: [Finding], at: Date, iteration: Int) -> [WatchEvent] {
        var next: [String: Finding] = [:]
        for finding in findings { next[finding.key] = finding }
        let appeared = next.keys.filter { current[$0] == nil }.sorted()
        let cleared = current.keys.filter { next[$0] == nil }.sorted()
        var events = appeared.map { WatchEvent(event: .appeared, at: at, iteration: iteration, finding: next[$0]) }
        events += cleared.map { WatchEvent(event: .cleared, at: at, iteration: iteration, finding: current[$0]) }
        totals.appeared += appeared.count
        totals.cleared += cleared.count
        current = next
        return events
    }
}

/// POSTs watch events to a webhook: each attempt bounded in time, at most `attempts`
/// tries with doubling waits on connection errors, 429 and 5xx. A webhook that stays
/// down is reported on stderr; the watch goes on.
final class WebhookPoster: @unchecked Sendable {
    let url: URL
    let attempts: Int
    let client: HTTPClient
    let context: CommandContext
    private(set) var failures = 0

    init(url: URL, token: String?, attempts: Int, context: CommandContext) {
        self.url = url
        self.attempts = max(1, attempts)
        self.context = context
        if let token { context.redactor.register(name: "KH_WEBHOOK_TOKEN", value: token) }
        self.client = HTTPClient(
            configuration: .init(
                connectTimeout: .seconds(5), timeout: .seconds(15), retry: .none,
                authentication: token.map { .bearer($0, name: "KH_WEBHOOK_TOKEN", redactor: context.redactor) }),
            clock: context.clock, redactor: context.redactor)
    }

    func post(_ event: WatchEvent) async {
        var delay = Duration.seconds(1)
        var last = ""
        for attempt in 1...attempts {
            do {
                let response = try await client.send(HTTPRequest.json(.post, url, body: event))
                if response.isSuccess { return }
                last = "HTTP \(response.status)"
                if response.status != 429 && response.status < 500 { break }
            } catch is CancellationError {
                return
            } catch {
                last = "\(error)"
            }
            if attempt < attempts {
                try? await context.clock.sleep(delay)
                delay = delay * 2
            }
        }
        failures += 1
        context.console.warning("webhook \(url.absoluteString): \(event.event.rawValue) not delivered after \(attempts) attempt(s): \(last)")
    }
}
