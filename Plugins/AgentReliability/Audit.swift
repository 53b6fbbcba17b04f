import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

extension Reliability {
    /// `kh reliability audit`: the post-mortem's safeguards checked on the cluster or on manifests.
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "audit",
            abstract: "Check required ConfigMaps, Job and workflow bounds, stalled custom resources, hung Jobs and reconcile loops.",
            discussion: """
                Reads the cluster through kubectl, or --manifests DIR (YAML, multi-document, List kinds, Helm-rendered output). \
                Time-based checks (custom-resource-no-job, job-hung, job-failed, reconcile-failing) need the cluster. \
                Exit 1 when a finding reaches --fail-on (default error). As an init container: \
                `kh reliability audit --only required-configmap` exits 1 with a clear message when a required ConfigMap is \
                missing or empty. Rules: \(Rule.all.map(\.id).joined(separator: ", ")).
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Audit manifests in this folder (or file) instead of the cluster.", valueName: "dir"))
        var manifests: String?

        @Option(name: .long, help: ArgumentHelp("text, json or sarif (default: text, or json with --output json).", valueName: "format"))
        var format: ReportFormat?

        @Option(name: .customLong("fail-on"), help: ArgumentHelp("Exit 1 when a finding is at least this severe: note, warning, error, never."))
        var failOn: FailOn = .error

        @Option(name: .long, help: ArgumentHelp("Run only this rule (repeatable).", valueName: "rule"))
        var only: [String] = []

        @Option(
            name: [.customShort("n"), .long],
            help: ArgumentHelp("Namespace to read (repeatable; default: reliability.namespaces, else all).", valueName: "namespace"))
        var namespace: [String] = []

        @Option(name: .long, help: ArgumentHelp("Measure ages as of this RFC 3339 time instead of now.", valueName: "time"))
        var at: String?

        func validate() throws {
            for rule in only where Rule.named(rule) == nil {
                throw ValidationError("--only \(rule): unknown rule; expected one of \(Rule.all.map(\.id).joined(separator: ", "))")
            }
            if let at, Timestamp.parse(at) == nil { throw ValidationError("--at \(at): expected an RFC 3339 time such as 2026-01-02T15:04:05Z") }
            if let manifests, manifests.isEmpty { throw ValidationError("--manifests: expected a folder, got an empty string") }
        }

        func run() async throws {
            let context = try global.makeContext()
            let config = try context.section("reliability", as: ReliabilityConfig.self)
            let format = self.format ?? (context.console.format == .json ? .json : .text)
            let now = at.flatMap(Timestamp.parse) ?? context.clock.now()
            let auditor = Auditor(config: config, now: now, only: Set(only))
            var failed = false
            let code = try await context.withEvidence { run in
                let report = try await AuditRunner.run(
                    auditor: auditor, manifests: manifests, namespaces: namespace.isEmpty ? config.namespaces : namespace, context: context,
                    logPath: run.logPath(for: "kubectl"))
                try AuditRunner.recordEvidence(report, run: run)
                switch format {
                case .text: context.console.result(ReportRenderer.text(report) { context.console.style($0, $1) })
                case .json: context.console.result(try ReportRenderer.json(report))
                case .sarif: context.console.result(try ReportRenderer.sarif(report))
                }
                for finding in report.findings where finding.rule == Rule.requiredConfigMap.id {
                    context.console.error(finding.message)
                }
                failed = report.findings.contains { failOn.isReached(by: $0.severity) }
                return (failed ? .checkFailed : .success, report.summaryLine)
            }
            if code != .success { throw ExitCode(code.rawValue) }
        }
    }
}

/// The audit as the commands run it (audit and watch share it).
enum AuditRunner {
    static func run(auditor: Auditor, manifests: String?, namespaces: [String], context: CommandContext, logPath: String?) async throws
        -> AuditReport
    {
        if let manifests {
            let (objects, problems) = try ManifestLoader().load(manifests)
            let inventory = Inventory(
                source: .manifests(manifests), objects: objects, notes: problems.map { "\($0.file): \($0.problem)" })
            return auditor.audit(inventory)
        }
        let kubectl = ClusterReader.kubectl(for: auditor.config, context: context, logPath: logPath)
        let reader = ClusterReader(kubectl: kubectl, config: auditor.config, namespaces: namespaces)
        return auditor.audit(try await reader.read(for: auditor))
    }

    /// One record per rule (findings counted), and the full report beside them as
    /// findings.json and findings.sarif.
    static func recordEvidence(_ report: AuditReport, run: EvidenceRun) throws {
        var perRule: [String: [Finding]] = [:]
        for finding in report.findings { perRule[finding.rule, default: []].append(finding) }
        for rule in Rule.all {
            let findings = perRule[rule.id] ?? []
            let worst = findings.map(\.severity).max()
            let status: CheckStatus = worst == nil ? .pass : worst == .error ? .fail : worst == .warning ? .warn : .info
            let examples = findings.prefix(5).map(\.object.display).joined(separator: ", ")
            try run.record(
                EvidenceRecord(
                    kind: "check", name: rule.id, status: status,
                    message: findings.isEmpty ? "no findings" : "\(findings.count) finding(s): \(examples)\(findings.count > 5 ? ", …" : "")",
                    data: ["findings": .number(Double(findings.count))]))
        }
        try AtomicFile.write(Data(try ReportRenderer.json(report).utf8), to: run.directory + "/findings.json")
        try AtomicFile.write(Data(try ReportRenderer.sarif(report).utf8), to: run.directory + "/findings.sarif")
    }
}
