import ArgumentParser
import Foundation
import KhCore

/// How bad a finding is. Ordered: note < warning < error.
public enum Severity: String, Codable, Sendable, CaseIterable, Comparable, ExpressibleByArgument {
    case note, warning, error

    var rank: Int {
        switch self {
        case .note: 0
        case .warning: 1
        case .error: 2
        }
    }

    public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// `--fail-on`: the severity at which a command exits 1, or never.
public enum FailOn: String, Sendable, CaseIterable, ExpressibleByArgument {
    case note, warning, error, never

    /// Whether findings of this severity make the run fail.
    public func isReached(by severity: Severity) -> Bool {
        switch self {
        case .never: false
        case .note: true
        case .warning: severity >= .warning
        case .error: severity >= .error
        }
    }
}

/// A rule: what it checks and why it matters (SARIF `reportingDescriptor`).
public struct Rule: Sendable, Hashable {
    public var id: String
    public var severity: Severity
    public var title: String
    /// Why it matters, in the post-mortem's terms.
    public var why: String

    /// Every rule of the audit, in report order.
    public static let all: [Rule] = [
        requiredConfigMap, jobActiveDeadline, jobBackoffLimit, jobTTL, workflowRetryLimit, workflowRetryMaxDuration, workflowResourceWait,
        customResourceNoJob, jobHung, jobFailed, reconcileFailing,
    ]

    public static let requiredConfigMap = Rule(
        id: "required-configmap", severity: .error, title: "A required ConfigMap is missing or empty",
        why: "A controller that needs it retries its reconcile forever instead of failing: in the post-mortem CodeRuns waited 7.5 hours "
            + "for a Job while the agent-templates ConfigMaps were missing.")
    public static let jobActiveDeadline = Rule(
        id: "job-active-deadline", severity: .error, title: "A Job spec has no activeDeadlineSeconds",
        why: "Without a deadline Kubernetes never stops a hung Job: the post-mortem's deadlocked agent ran 6+ hours instead of 10 minutes.")
    public static let jobBackoffLimit = Rule(
        id: "job-backoff-limit", severity: .warning, title: "A Job spec has no backoffLimit",
        why: "The default backoffLimit is 6: a failing agent is retried six times, each run up to its deadline, multiplying cost and delay.")
    public static let jobTTL = Rule(
        id: "job-ttl", severity: .note, title: "A Job spec has no ttlSecondsAfterFinished",
        why: "Finished Jobs and their Pods are never cleaned up; they pile up and slow every list and watch.")
    public static let workflowRetryLimit = Rule(
        id: "workflow-retry-limit", severity: .error, title: "An Argo Workflows retryStrategy has no limit",
        why: "A retryStrategy without a limit retries forever: the failure never surfaces.")
    public static let workflowRetryMaxDuration = Rule(
        id: "workflow-retry-max-duration", severity: .warning, title: "An Argo Workflows retryStrategy has no backoff.maxDuration",
        why: "Without maxDuration the retries have no overall time bound; the post-mortem's fix fails the step after 10 minutes.")
    public static let workflowResourceWait = Rule(
        id: "workflow-resource-wait", severity: .error, title: "A resource step waits for a condition without any bound",
        why: "The post-mortem's create-coderun-resource step waited 7.5 hours for status.phase == Succeeded: nothing bounded the wait.")
    public static let customResourceNoJob = Rule(
        id: "custom-resource-no-job", severity: .error, title: "A custom resource has had no Job for too long",
        why: "Its controller cannot create the Job (in the post-mortem: missing ConfigMaps) and retries silently; nobody is told.")
    public static let jobHung = Rule(
        id: "job-hung", severity: .error, title: "A Job has been active longer than its threshold",
        why: "An agent Job that should finish in minutes has been running for hours: it is probably deadlocked (the post-mortem's FIFO).")
    public static let jobFailed = Rule(
        id: "job-failed", severity: .note, title: "A Job failed",
        why: "A failed agent Job means a task did not complete; see its Pods' logs and events.")
    public static let reconcileFailing = Rule(
        id: "reconcile-failing", severity: .error, title: "A controller fails the same reconcile again and again",
        why: "Repeated identical Warning events mean the controller is in a retry loop; the post-mortem's ran for 7.5 hours unnoticed.")

    static func named(_ id: String) -> Rule? { all.first { $0.id == id } }
}

/// One thing the audit found.
public struct Finding: Codable, Sendable, Hashable {
    /// The rule id (`job-active-deadline`).
    public var rule: String
    public var severity: Severity
    public var object: ObjectRef
    /// What is wrong with this object.
    public var message: String
    /// Why it matters.
    public var why: String
    /// The fix, as a YAML snippet to merge into the object (comments explain).
    public var fix: String
    /// Stable across runs and sources: rule, object identity and detail.
    public var key: String

    public init(rule: Rule, object: ObjectRef, message: String, fix: String, detail: String = "", severity: Severity? = nil) {
        self.rule = rule.id
        self.severity = severity ?? rule.severity
        self.object = object
        self.message = message
        self.why = rule.why
        self.fix = fix
        self.key = [rule.id, object.identity, detail].joined(separator: "|")
    }
}

/// YAML snippets for fixes: nested mappings down a path, then the given lines.
enum FixYAML {
    /// `nest(["spec", "jobTemplate", "spec"], ["activeDeadlineSeconds: 3600"])`.
    static func nest(_ path: [String], _ leaves: [String]) -> String {
        var lines: [String] = []
        for (depth, key) in path.enumerated() {
            lines.append(String(repeating: "  ", count: depth) + key + ":")
        }
        let indent = String(repeating: "  ", count: path.count)
        for leaf in leaves {
            for part in leaf.split(separator: "\n", omittingEmptySubsequences: false) { lines.append(indent + part) }
        }
        return lines.joined(separator: "\n")
    }

    /// A fix inside one Argo template: `spec.templates: [- name: X, <under>: leaves]`.
    static func template(_ specPath: [String], _ name: String, under: [String], _ leaves: [String]) -> String {
        let inner = nest(under, leaves).split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
        return nest(specPath + ["templates"], ["- name: \(name)\n" + inner])
    }
}

/// The result of one audit: findings, what was read, and problems along the way.
public struct AuditReport: Codable, Sendable {
    public var schemaVersion = 1
    /// `cluster` or `manifests:<dir>`.
    public var source: String
    public var generatedAt: Date
    /// Objects read, per kind.
    public var objectsRead: [String: Int]
    public var findings: [Finding]
    /// Files or kinds that could not be read (they are not findings).
    public var notes: [String]

    public init(source: String, generatedAt: Date, objectsRead: [String: Int], findings: [Finding], notes: [String]) {
        self.source = source
        self.generatedAt = generatedAt
        self.objectsRead = objectsRead
        self.findings = findings
        self.notes = notes
    }

    /// Findings per severity.
    public var counts: [Severity: Int] {
        var counts: [Severity: Int] = [:]
        for finding in findings { counts[finding.severity, default: 0] += 1 }
        return counts
    }

    /// `3 findings: 2 error, 1 warning, 0 note`.
    public var summaryLine: String {
        let c = counts
        return
            "\(findings.count) finding\(findings.count == 1 ? "" : "s"): \(c[.error] ?? 0) error, \(c[.warning] ?? 0) warning, \(c[.note] ?? 0) note"
    }

    /// The highest severity found.
    public var worst: Severity? { findings.map(\.severity).max() }
}

/// Text, JSON and SARIF renderings of an audit report.
enum ReportFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json, sarif
}

enum ReportRenderer {
    static func text(_ report: AuditReport, style: (String, Style) -> String = { text, _ in text }) -> String {
        var lines: [String] = []
        let ordered = report.findings.sorted {
            ($0.severity.rank, $1.rule, $1.object.identity) > ($1.severity.rank, $0.rule, $0.object.identity)
        }
        for finding in ordered {
            let label = finding.severity.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)
            let color: Style = finding.severity == .error ? .red : finding.severity == .warning ? .yellow : .dim
            var head = "\(style(label, color)) \(finding.rule)  \(finding.object.display)"
            if let location = finding.object.location { head += "  (\(location))" }
            lines.append(head)
            lines.append("        \(finding.message)")
            lines.append("        why: \(finding.why)")
            lines.append("        fix:")
            for line in finding.fix.split(separator: "\n", omittingEmptySubsequences: false) { lines.append("          \(line)") }
            lines.append("")
        }
        for note in report.notes { lines.append("note: \(note)") }
        lines.append(report.summaryLine + " (\(report.objectsRead.values.reduce(0, +)) objects read from \(report.source))")
        return lines.joined(separator: "\n")
    }

    static func json(_ report: AuditReport) throws -> String {
        String(decoding: try KhJSON.encoder(pretty: true).encode(report), as: UTF8.self)
    }

    /// SARIF 2.1.0: one run, kh as the tool, one reportingDescriptor per rule,
    /// results with physical locations (manifests) or logical ones (cluster objects),
    /// a partial fingerprint from the finding's stable key, and the fix in properties.
    static func sarif(_ report: AuditReport) throws -> String {
        let rules = Rule.all
        let ruleObjects: [JSONValue] = rules.map { rule in
            [
                "id": .string(rule.id),
                "name": .string(rule.id.split(separator: "-").map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined()),
                "shortDescription": ["text": .string(rule.title)],
                "fullDescription": ["text": .string(rule.why)],
                "help": ["text": .string(rule.why + " See docs/reliability.md.")],
                "defaultConfiguration": ["level": .string(rule.severity.rawValue)],
            ]
        }
        let results: [JSONValue] = report.findings.map { finding in
            var location: [String: JSONValue] = [:]
            if let file = finding.object.file {
                var physical: [String: JSONValue] = ["artifactLocation": ["uri": .string(file), "uriBaseId": "MANIFESTS"]]
                if let line = finding.object.line { physical["region"] = ["startLine": .number(Double(line))] }
                location["physicalLocation"] = .object(physical)
            }
            location["logicalLocations"] = [
                [
                    "name": .string(finding.object.name),
                    "fullyQualifiedName": .string(finding.object.identity),
                    "kind": "resource",
                ]
            ]
            return [
                "ruleId": .string(finding.rule),
                "ruleIndex": .number(Double(rules.firstIndex { $0.id == finding.rule } ?? 0)),
                "level": .string(finding.severity.rawValue),
                "message": ["text": .string("\(finding.object.display): \(finding.message)")],
                "locations": [.object(location)],
                "partialFingerprints": ["khFindingKey/v1": .string(finding.key)],
                "properties": ["fix": .string(finding.fix), "why": .string(finding.why)],
            ]
        }
        var run: [String: JSONValue] = [
            "tool": [
                "driver": [
                    "name": "kh",
                    "semanticVersion": .string(KhVersion.current),
                    "rules": .array(ruleObjects),
                ]
            ],
            "results": .array(results),
            "properties": ["source": .string(report.source), "notes": .array(report.notes.map(JSONValue.string))],
        ]
        if report.source.hasPrefix("manifests:") {
            let root = String(report.source.dropFirst("manifests:".count))
            let absolute = root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root
            run["originalUriBaseIds"] = ["MANIFESTS": ["uri": .string(URL(fileURLWithPath: absolute, isDirectory: true).absoluteString)]]
        }
        let document: JSONValue = [
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [.object(run)],
        ]
        return String(decoding: try KhJSON.encoder(pretty: true).encode(document), as: UTF8.self)
    }
}
