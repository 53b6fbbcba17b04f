import Foundation
import KhCore

/// One pass over the matrix (the first run, the targeted rerun, the full regression rerun).
public struct MatrixPass: Sendable, Codable, Equatable {
    public var label: String
    public var results: [ScenarioResult]

    public init(label: String, results: [ScenarioResult]) {
        self.label = label
        self.results = results
    }

    public var failed: [ScenarioResult] { results.filter { $0.status.isFailure } }
    public var allPassed: Bool { !results.isEmpty && results.allSatisfy { $0.status == .passed } }
}

/// A step of gates, clean or upgrade: status, one line, log.
public struct StepOutcome: Sendable, Codable, Equatable {
    public var name: String
    public var status: CheckStatus
    public var message: String
    public var log: String?

    public init(name: String, status: CheckStatus, message: String, log: String? = nil) {
        self.name = name
        self.status = status
        self.message = message
        self.log = log
    }
}

/// The upgrade path test of one distro.
public struct UpgradeResult: Sendable, Codable, Equatable {
    public var distro: String
    public var tag: String
    public var scenario: String
    public var status: CheckStatus
    public var steps: [StepOutcome]
    public var adds: Int
    public var changes: Int
    public var destroys: Int
    /// Servers the plan would destroy (flagged).
    public var serverDestroys: [String]
    public var message: String

    public init(
        distro: String, tag: String, scenario: String, status: CheckStatus, steps: [StepOutcome], adds: Int = 0, changes: Int = 0, destroys: Int = 0,
        serverDestroys: [String] = [], message: String
    ) {
        self.distro = distro
        self.tag = tag
        self.scenario = scenario
        self.status = status
        self.steps = steps
        self.adds = adds
        self.changes = changes
        self.destroys = destroys
        self.serverDestroys = serverDestroys
        self.message = message
    }
}

/// What cleanup did and what is left.
public struct CleanupReport: Sendable, Codable, Equatable {
    public var destroyed: [StepOutcome]
    public var locksRemoved: [String]
    public var locksKept: [String]
    public var reaped: [HetznerResource]
    public var remaining: [HetznerResource]
    public var failures: [String]
    public var dryRun: Bool

    public init(
        destroyed: [StepOutcome] = [], locksRemoved: [String] = [], locksKept: [String] = [], reaped: [HetznerResource] = [],
        remaining: [HetznerResource] = [], failures: [String] = [], dryRun: Bool
    ) {
        self.destroyed = destroyed
        self.locksRemoved = locksRemoved
        self.locksKept = locksKept
        self.reaped = reaped
        self.remaining = remaining
        self.failures = failures
        self.dryRun = dryRun
    }

    /// Nothing failed and nothing prefixed is left.
    public var isClean: Bool { !dryRun && remaining.isEmpty && failures.isEmpty && destroyed.allSatisfy { $0.status != .fail } }
}

/// A snapshot the config expects and what was found.
public struct SnapshotStatus: Sendable, Codable, Equatable {
    public var name: String
    public var architecture: String
    public var required: Bool
    public var found: [HetznerImage]
    public var built: StepOutcome?

    public init(name: String, architecture: String, required: Bool, found: [HetznerImage], built: StepOutcome? = nil) {
        self.name = name
        self.architecture = architecture
        self.required = required
        self.found = found
        self.built = built
    }
}

/// Files of the module changed since the loop began.
public struct FilesChanged: Sendable, Codable, Equatable {
    public var from: String
    public var to: String
    /// `M path`, `A path`, … (committed since `from`, then uncommitted).
    public var files: [String]

    public init(from: String, to: String, files: [String]) {
        self.from = from
        self.to = to
        self.files = files
    }
}

/// `summary-<RUN_ID>.json`: everything a `kh stabilize` run found. Schema version 1.
public struct StabilizeSummary: Sendable, Codable, Equatable {
    public static let currentSchemaVersion = 1

    public var schemaVersion = Self.currentSchemaVersion
    public var runID: String
    public var command: String
    public var startedAt: Date
    public var endedAt: Date?
    public var exitCode: Int32?
    /// The evidence folder of the run.
    public var evidence: String
    public var gates: [StepOutcome]?
    public var snapshots: [SnapshotStatus]?
    public var passes: [MatrixPass]
    public var upgrades: [UpgradeResult]?
    public var filesChanged: FilesChanged?
    public var cleanup: CleanupReport?
    public var notes: [String]

    public init(runID: String, command: String, startedAt: Date, evidence: String) {
        self.runID = runID
        self.command = command
        self.startedAt = startedAt
        self.evidence = evidence
        self.passes = []
        self.notes = []
    }

    /// The last pass's result per scenario: what the matrix looks like now.
    public var finalResults: [ScenarioResult] {
        var order: [String] = []
        var latest: [String: ScenarioResult] = [:]
        for pass in passes {
            for result in pass.results {
                if latest[result.name] == nil { order.append(result.name) }
                latest[result.name] = result
            }
        }
        return order.compactMap { latest[$0] }
    }

    /// The scenarios whose latest result is a failure.
    public var failedScenarios: [String] { finalResults.filter { $0.status.isFailure }.map(\.name) }
}

/// Markdown and JUnit renderings of a summary.
public enum SummaryRenderer {
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
    }

    static func seconds(_ value: Double) -> String { Duration.milliseconds(Int64(value * 1000)).humanDescription }

    static func icon(_ status: ScenarioStatus) -> String {
        switch status {
        case .passed: "PASS"
        case .failed: "FAIL"
        case .timedOut: "TIMEOUT"
        case .skipped: "SKIP"
        case .error: "ERROR"
        }
    }

    /// The summary a person reads first.
    public static func markdown(_ summary: StabilizeSummary) -> String {
        var out: [String] = []
        let final = summary.finalResults
        let passed = final.filter { $0.status == .passed }.count
        out.append("# kh stabilize \(summary.runID)")
        out.append("")
        out.append("- command: `\(summary.command)`")
        out.append("- started: \(Timestamp.iso8601(summary.startedAt))" + (summary.endedAt.map { ", ended: \(Timestamp.iso8601($0))" } ?? ""))
        if let code = summary.exitCode { out.append("- exit code: \(code)") }
        if !final.isEmpty {
            out.append(
                "- matrix: \(passed)/\(final.count) passed"
                    + (summary.failedScenarios.isEmpty ? "" : "; failed: \(summary.failedScenarios.joined(separator: ", "))"))
        }
        out.append("- evidence: `\(summary.evidence)`")
        for note in summary.notes { out.append("- \(note)") }
        out.append("")
        if let gates = summary.gates {
            out.append("## Gates")
            out.append("")
            out.append(contentsOf: steps(gates))
        }
        if let snapshots = summary.snapshots {
            out.append("## Snapshots")
            out.append("")
            out.append("| snapshot | arch | required | found | build |")
            out.append("|---|---|---|---|---|")
            for s in snapshots {
                let found = s.found.isEmpty ? "**missing**" : s.found.map { "\($0.id) \($0.description)" }.joined(separator: ", ")
                out.append(
                    "| \(s.name) | \(s.architecture) | \(s.required ? "yes" : "optional") | \(cell(found)) | \(cell(s.built.map { "\($0.status.rawValue): \($0.message)" } ?? "")) |"
                )
            }
            out.append("")
        }
        for pass in summary.passes {
            out.append("## Matrix: \(pass.label)")
            out.append("")
            out.append("| scenario | tier | status | duration | log | message |")
            out.append("|---|---|---|---|---|---|")
            for r in pass.results {
                out.append(
                    "| \(r.name) | \(r.tier) | \(icon(r.status)) | \(seconds(r.durationSeconds)) | \(r.log.map { "`\($0)`" } ?? "") | \(cell(r.message)) |"
                )
            }
            out.append("")
            for r in pass.results where !r.triage.isEmpty || !r.stalls.isEmpty {
                out.append(contentsOf: triage(r))
            }
        }
        if let upgrades = summary.upgrades {
            out.append("## Upgrade path (latest tag → working tree)")
            out.append("")
            out.append("| distro | tag | scenario | status | plan: add / change / destroy | servers destroyed | message |")
            out.append("|---|---|---|---|---|---|---|")
            for u in upgrades {
                let flag = u.serverDestroys.isEmpty ? "none" : "**FLAGGED: \(u.serverDestroys.joined(separator: ", "))**"
                out.append(
                    "| \(u.distro) | \(u.tag) | \(u.scenario) | \(u.status.rawValue) | \(u.adds) / \(u.changes) / \(u.destroys) | \(cell(flag)) | \(cell(u.message)) |"
                )
            }
            out.append("")
            for u in upgrades {
                out.append("### \(u.distro) steps")
                out.append("")
                out.append(contentsOf: steps(u.steps))
            }
        }
        if let changed = summary.filesChanged {
            out.append("## Files changed since the loop began")
            out.append("")
            out.append("`\(changed.from)` → `\(changed.to)`: \(changed.files.isEmpty ? "no change" : "\(changed.files.count) file(s)")")
            out.append("")
            for file in changed.files { out.append("- `\(file)`") }
            if !changed.files.isEmpty { out.append("") }
        }
        if let cleanup = summary.cleanup {
            out.append("## Cleanup")
            out.append("")
            if cleanup.dryRun { out.append("Dry run: nothing was changed (`--yes` deletes).") }
            out.append(contentsOf: steps(cleanup.destroyed))
            if !cleanup.locksRemoved.isEmpty {
                out.append("- stale state locks removed: \(cleanup.locksRemoved.map { "`\($0)`" }.joined(separator: ", "))")
            }
            if !cleanup.locksKept.isEmpty {
                out.append("- state locks kept (held by a live process): \(cleanup.locksKept.map { "`\($0)`" }.joined(separator: ", "))")
            }
            out.append(
                "- \(cleanup.dryRun ? "would reap" : "reaped"): \(cleanup.reaped.isEmpty ? "nothing" : cleanup.reaped.map(\.display).joined(separator: ", "))"
            )
            for failure in cleanup.failures { out.append("- failure: \(failure)") }
            if !cleanup.dryRun {
                out.append(
                    cleanup.remaining.isEmpty
                        ? "- **confirmed: no prefixed resource is left**"
                        : "- **left over: \(cleanup.remaining.map(\.display).joined(separator: ", "))**")
            }
            out.append("")
        }
        return out.joined(separator: "\n")
    }

    static func steps(_ steps: [StepOutcome]) -> [String] {
        guard !steps.isEmpty else { return [] }
        var out = ["| step | status | message | log |", "|---|---|---|---|"]
        for s in steps { out.append("| \(s.name) | \(s.status.rawValue) | \(cell(s.message)) | \(s.log.map { "`\($0)`" } ?? "") |") }
        out.append("")
        return out
    }

    static func triage(_ r: ScenarioResult) -> [String] {
        var out = ["### \(r.name): triage", ""]
        for stall in r.stalls {
            out.append(
                "- stalled at \(Timestamp.iso8601(stall.at)): silent for \(seconds(stall.silentSeconds))"
                    + (stall.lastLine.map { " after `\(cell($0))`" } ?? ""))
        }
        for report in r.triage {
            out.append(
                "- triage (\(report.trigger)) at \(Timestamp.iso8601(report.at)): \(report.nodes.count) node(s)"
                    + (report.error.map { "; \($0)" } ?? ""))
            for node in report.nodes {
                let reach = node.kubeAPIReachableFromRunner.map { $0 ? "reachable" : "unreachable" } ?? "not probed"
                out.append(
                    "  - `\(node.server)` \(node.ipv4 ?? "no IPv4") (\(node.status)); kube API :\(node.kubeAPIPort) from the runner: \(reach)"
                        + (node.error.map { "; ssh: \(cell($0))" } ?? ""))
                for check in node.checks {
                    let first = check.output.split(separator: "\n").first.map { String($0.prefix(120)) } ?? ""
                    out.append(
                        "    - \(check.id): exit \(check.exitCode.map(String.init) ?? "?") \(check.log.map { "[`\($0)`]" } ?? "") \(cell(first))")
                }
            }
        }
        let diagnoses = r.diagnoses
        if !diagnoses.isEmpty {
            out.append("")
            out.append("**Diagnosis**")
            out.append("")
            for d in diagnoses {
                out.append("- **\(d.title)**" + (d.node.map { " on `\($0)`" } ?? ""))
                out.append("  - evidence: `\(cell(d.evidence))`")
                out.append("  - fix path: \(d.fixPath)")
            }
        } else if r.status.isFailure {
            out.append("")
            out.append("No known failure recognised: read the log and the check outputs above; run the failing commands by hand on the node.")
        }
        out.append("")
        return out
    }

    static func xml(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" { out += " " } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }

    /// JUnit XML of the final results (one testcase per scenario).
    public static func junit(_ summary: StabilizeSummary) -> String {
        let results = summary.finalResults
        let failures = results.filter { $0.status == .failed || $0.status == .timedOut }.count
        let errors = results.filter { $0.status == .error }.count
        let skipped = results.filter { $0.status == .skipped }.count
        let total = results.reduce(0) { $0 + $1.durationSeconds }
        var out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>"]
        out.append(
            "<testsuites name=\"kh-stabilize\" tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\" time=\"\(String(format: "%.3f", total))\">"
        )
        out.append(
            "  <testsuite name=\"matrix-\(xml(summary.runID))\" tests=\"\(results.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\" time=\"\(String(format: "%.3f", total))\" timestamp=\"\(Timestamp.iso8601(summary.startedAt))\">"
        )
        for r in results {
            out.append(
                "    <testcase classname=\"stabilize.tier\(r.tier)\" name=\"\(xml(r.name))\" time=\"\(String(format: "%.3f", r.durationSeconds))\">")
            switch r.status {
            case .passed: break
            case .skipped: out.append("      <skipped message=\"\(xml(r.message))\"/>")
            case .error: out.append("      <error message=\"\(xml(r.message))\"/>")
            case .failed, .timedOut:
                let body = r.diagnoses.map { "\($0.title): \($0.evidence)\nfix path: \($0.fixPath)" }.joined(separator: "\n")
                out.append("      <failure message=\"\(xml(r.message))\" type=\"\(r.status.rawValue)\">\(xml(body))</failure>")
            }
            if let log = r.log { out.append("      <system-out>log: \(xml(log))</system-out>") }
            out.append("    </testcase>")
        }
        out.append("  </testsuite>")
        out.append("</testsuites>")
        return out.joined(separator: "\n") + "\n"
    }
}

/// The results folder: `summary-<RUN_ID>.md`, `summary-<RUN_ID>.json`, `junit-<RUN_ID>.xml`.
public struct ResultsFolder: Sendable {
    public var directory: String
    public var fileSystem: any FileSystem
    public var redactor: Redactor

    public init(directory: String, fileSystem: any FileSystem, redactor: Redactor) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.redactor = redactor
    }

    /// Writes the three files atomically; returns the Markdown path.
    @discardableResult
    public func write(_ summary: StabilizeSummary) throws -> String {
        try fileSystem.createDirectory(directory)
        let markdown = directory + "/summary-\(summary.runID).md"
        try fileSystem.writeAtomically(Data(redactor.redact(SummaryRenderer.markdown(summary)).utf8), to: markdown)
        let json = try KhJSON.encoder(pretty: true).encode(summary)
        try fileSystem.writeAtomically(redactor.redact(json) + Data("\n".utf8), to: directory + "/summary-\(summary.runID).json")
        try fileSystem.writeAtomically(Data(redactor.redact(SummaryRenderer.junit(summary)).utf8), to: directory + "/junit-\(summary.runID).xml")
        return markdown
    }

    /// The newest `summary-*.json` (run ids sort by time), decoded; nil when there is none.
    public func latest() throws -> (path: String, summary: StabilizeSummary)? {
        guard fileSystem.isDirectory(directory) else { return nil }
        let names = try fileSystem.list(directory).filter { $0.hasPrefix("summary-") && $0.hasSuffix(".json") }.sorted()
        guard let name = names.last else { return nil }
        let path = directory + "/" + name
        do {
            return (path, try KhJSON.decoder().decode(StabilizeSummary.self, from: try fileSystem.read(path)))
        } catch let error as any KhReportableError {
            throw error
        } catch {
            throw KhError.usage("\(path): not a kh stabilize summary (\(error))", hint: "move it away or delete it")
        }
    }
}
