import Foundation
import Synchronization

/// The outcome of a whole run, as `run.json` records it.
public enum RunStatus: String, Codable, Sendable {
    case running, succeeded, failed, blocked, error, interrupted

    /// The status a run ending with this exit code has.
    public init(exitCode: KhExitCode) {
        switch exitCode {
        case .success: self = .succeeded
        case .checkFailed: self = .failed
        case .blocked: self = .blocked
        case .interrupted: self = .interrupted
        case .usage, .external, .internalError: self = .error
        }
    }
}

/// The outcome of one step or check.
public enum CheckStatus: String, Codable, Sendable, CaseIterable {
    case pass, warn, fail, skip, info, error

    /// A fixed-width upper-case label for text output.
    public var label: String { rawValue.uppercased().padding(toLength: 5, withPad: " ", startingAt: 0) }
}

/// `run.json`: what ran, when, and how it ended. Schema version 1.
public struct RunManifest: Codable, Sendable, Equatable {
    /// Bumped on any incompatible change; readers check it.
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    public var runID: String
    public var tool: String
    public var version: String
    /// The command line, secrets redacted.
    public var command: [String]
    public var workingDirectory: String
    public var pid: Int32
    public var startedAt: Date
    public var endedAt: Date?
    public var status: RunStatus
    public var exitCode: Int32?
    /// One line for people.
    public var result: String?
    /// Records by status, filled at the end.
    public var counts: [String: Int]
}

/// One line of `records.jsonl`: a step or check. Schema version 1. Plugins put
/// their own typed, versioned values in ``data``.
public struct EvidenceRecord: Codable, Sendable, Equatable {
    public static let currentSchemaVersion = 1

    public var schemaVersion: Int
    /// Order within the run, from 1.
    public var seq: Int
    public var at: Date
    /// What kind of record: `check`, `step`, `command`, or a plugin's own (`scenario`, `phase`).
    public var kind: String
    /// What it is about: `tool.kubectl`, `s1-k3s-basic`.
    public var name: String
    public var status: CheckStatus
    public var message: String?
    public var durationSeconds: Double?
    /// The step's log, relative to the run folder (`logs/<step>.log`).
    public var log: String?
    public var data: JSONValue?

    public init(
        kind: String, name: String, status: CheckStatus, message: String? = nil, durationSeconds: Double? = nil, log: String? = nil,
        data: JSONValue? = nil
    ) {
        self.schemaVersion = Self.currentSchemaVersion
        self.seq = 0
        self.at = Date(timeIntervalSince1970: 0)
        self.kind = kind
        self.name = name
        self.status = status
        self.message = message
        self.durationSeconds = durationSeconds
        self.log = log
        self.data = data
    }
}

/// A run folder: `<evidence-dir>/<run-id>/` with `run.json`, `records.jsonl`,
/// `logs/<step>.log` and `summary.md`.
///
/// `run.json`, `records.jsonl` and `summary.md` are always replaced whole (temp file
/// and rename), so a reader never sees half a file. Logs are streamed as they come.
/// A run that is interrupted (SIGINT/SIGTERM) still gets a `run.json` marked
/// `interrupted` and a summary of what was gathered.
public final class EvidenceRun: Sendable {
    /// `YYYYMMDD-HHMMSS` in UTC, with `-2`, `-3`… when that folder exists.
    public let runID: String
    /// The run folder.
    public let directory: String
    private let fileSystem: any FileSystem
    private let clock: KhClock
    private let redactor: Redactor

    private struct State: Sendable {
        var manifest: RunManifest
        var records: [EvidenceRecord] = []
        var finished = false
        var interruptToken: Interrupts.Token?
    }

    private let state: Mutex<State>

    /// Creates the run folder and writes `run.json` with status `running`.
    public static func start(
        root: String, command: [String], version: String, clock: KhClock = .live, fileSystem: any FileSystem = LocalFileSystem(),
        redactor: Redactor, workingDirectory: String = FileManager.default.currentDirectoryPath
    ) throws -> EvidenceRun {
        let started = clock.now()
        let base = Timestamp.runID(started)
        var runID = base
        var attempt = 1
        while fileSystem.exists(root + "/" + runID) {
            attempt += 1
            runID = "\(base)-\(attempt)"
        }
        let directory = root + "/" + runID
        try fileSystem.createDirectory(directory + "/logs")
        let manifest = RunManifest(
            schemaVersion: RunManifest.currentSchemaVersion, runID: runID, tool: "kh", version: version,
            command: redactor.redactArguments(command), workingDirectory: workingDirectory, pid: getpid(), startedAt: started,
            endedAt: nil, status: .running, exitCode: nil, result: nil, counts: [:])
        let run = EvidenceRun(runID: runID, directory: directory, fileSystem: fileSystem, clock: clock, redactor: redactor, manifest: manifest)
        try run.writeManifest(manifest)
        let token = Interrupts.register(stage: .flushEvidence) { [weak run] _ in
            try? run?.finish(exitCode: .interrupted, result: "interrupted")
        }
        run.state.withLock { $0.interruptToken = token }
        return run
    }

    private init(runID: String, directory: String, fileSystem: any FileSystem, clock: KhClock, redactor: Redactor, manifest: RunManifest) {
        self.runID = runID
        self.directory = directory
        self.fileSystem = fileSystem
        self.clock = clock
        self.redactor = redactor
        self.state = Mutex(State(manifest: manifest))
    }

    /// The manifest as it stands.
    public var manifest: RunManifest { state.withLock { $0.manifest } }

    /// The records so far.
    public var records: [EvidenceRecord] { state.withLock { $0.records } }

    /// A file name safe for any step name: letters, digits, `.`, `_`, `-`.
    public static func safeName(_ step: String) -> String {
        let mapped = step.unicodeScalars.map { scalar -> Character in
            let ok = CharacterSet.alphanumerics.contains(scalar) && scalar.isASCII || "._-".unicodeScalars.contains(scalar)
            return ok ? Character(scalar) : "-"
        }
        let name = String(mapped).trimmingCharacters(in: CharacterSet(charactersIn: ".-"))
        return name.isEmpty ? "step" : name
    }

    /// The log file path for a step (`logs/<step>.log`), absolute.
    public func logPath(for step: String) -> String { directory + "/" + relativeLogPath(for: step) }

    /// The log file path for a step relative to the run folder.
    public func relativeLogPath(for step: String) -> String { "logs/\(Self.safeName(step)).log" }

    /// Appends a record (stamped with time and sequence number) and rewrites
    /// `records.jsonl` atomically.
    @discardableResult
    public func record(_ record: EvidenceRecord) throws -> EvidenceRecord {
        try self.record(contentsOf: [record])[0]
    }

    /// Appends several records at once and rewrites `records.jsonl` once (one atomic
    /// write instead of one per record, for records that are all known together).
    @discardableResult
    public func record(contentsOf records: [EvidenceRecord]) throws -> [EvidenceRecord] {
        let now = clock.now()
        let (stamped, all) = state.withLock { state -> ([EvidenceRecord], [EvidenceRecord]) in
            let stamped = records.map { record in
                var stamped = record
                stamped.seq = state.records.count + 1
                stamped.at = now
                state.records.append(stamped)
                return stamped
            }
            return (stamped, state.records)
        }
        if !stamped.isEmpty { try writeRecords(all) }
        return stamped
    }

    /// Ends the run: `summary.md` (the given Markdown, or one made from the records)
    /// and `run.json` with the end time, status and counts. Only the first call counts.
    public func finish(exitCode: KhExitCode, result: String? = nil, summary: String? = nil) throws {
        let now = clock.now()
        let snapshot = state.withLock { state -> (RunManifest, [EvidenceRecord], Interrupts.Token?)? in
            guard !state.finished else { return nil }
            state.finished = true
            state.manifest.endedAt = now
            state.manifest.status = RunStatus(exitCode: exitCode)
            state.manifest.exitCode = exitCode.rawValue
            state.manifest.result = result
            var counts: [String: Int] = [:]
            for record in state.records { counts[record.status.rawValue, default: 0] += 1 }
            state.manifest.counts = counts
            return (state.manifest, state.records, state.interruptToken)
        }
        guard let (manifest, records, token) = snapshot else { return }
        if let token, exitCode != .interrupted { Interrupts.unregister(token) }
        try writeRecords(records)
        let text = summary ?? Self.defaultSummary(manifest: manifest, records: records)
        try fileSystem.writeAtomically(Data(redactor.redact(text).utf8), to: directory + "/summary.md")
        try writeManifest(manifest)
    }

    /// A summary made from the manifest and records: status, times, a table of records.
    public static func defaultSummary(manifest: RunManifest, records: [EvidenceRecord], title: String? = nil) -> String {
        var lines: [String] = []
        lines.append("# \(title ?? manifest.command.joined(separator: " "))")
        lines.append("")
        lines.append("- run: `\(manifest.runID)`")
        lines.append("- status: **\(manifest.status.rawValue)**" + (manifest.exitCode.map { " (exit \($0))" } ?? ""))
        if let result = manifest.result { lines.append("- result: \(result)") }
        lines.append("- started: \(Timestamp.iso8601(manifest.startedAt))")
        if let ended = manifest.endedAt {
            lines.append(
                "- ended: \(Timestamp.iso8601(ended)) (\(Duration.milliseconds(Int64(ended.timeIntervalSince(manifest.startedAt) * 1000)).humanDescription))"
            )
        }
        if !manifest.counts.isEmpty {
            lines.append(
                "- records: "
                    + CheckStatus.allCases.compactMap { s in manifest.counts[s.rawValue].map { "\($0) \(s.rawValue)" } }.joined(separator: ", "))
        }
        lines.append("")
        if !records.isEmpty {
            lines.append("| # | status | kind | name | message | log |")
            lines.append("|---|---|---|---|---|---|")
            for r in records {
                let message = (r.message ?? "").replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
                let log = r.log.map { "[\($0)](\($0))" } ?? ""
                lines.append("| \(r.seq) | \(r.status.rawValue) | \(r.kind) | \(r.name) | \(message) | \(log) |")
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    private func writeManifest(_ manifest: RunManifest) throws {
        let data = try KhJSON.encoder(pretty: true).encode(manifest)
        try fileSystem.writeAtomically(redactor.redact(data) + Data("\n".utf8), to: directory + "/run.json")
    }

    private func writeRecords(_ records: [EvidenceRecord]) throws {
        let encoder = KhJSON.encoder()
        var data = Data()
        for record in records {
            data.append(try encoder.encode(record))
            data.append(0x0A)
        }
        try fileSystem.writeAtomically(redactor.redact(data), to: directory + "/records.jsonl")
    }
}
