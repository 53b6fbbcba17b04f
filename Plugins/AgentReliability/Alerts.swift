import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI
import KhProcess

extension Reliability {
    /// `kh reliability alerts`: Prometheus rules for the post-mortem's silent failures.
    struct Alerts: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "alerts",
            abstract:
                "Write Prometheus alert rules (kube-state-metrics series) for stalled custom resources, hung and failed Jobs, missing ConfigMaps.",
            discussion: """
                Thresholds come from the reliability: config (custom_resources[].job_within, jobs.hang_after, alerts.for). \
                The stalled-resource rule reads kube-state-metrics' custom-resource metrics: --ksm-config writes the \
                CustomResourceStateMetrics config that exposes them. --check runs `promtool check rules` on the result.
                """)

        @OptionGroup var global: GlobalOptions

        @Option(name: .long, help: ArgumentHelp("Write the rules here (atomically) instead of stdout.", valueName: "file"))
        var out: String?

        @Option(
            name: .customLong("ksm-config"),
            help: ArgumentHelp("Also write kube-state-metrics' CustomResourceStateMetrics config here.", valueName: "file"))
        var ksmConfig: String?

        @Flag(name: .long, help: "Check the rules with `promtool check rules` (promtool must be on PATH).")
        var check = false

        func run() async throws {
            let context = try global.makeContext()
            let config = try context.section("reliability", as: ReliabilityConfig.self)
            let rules = AlertRules(config: config)
            let text = rules.prometheusRules()
            let code = try await context.withEvidence { run in
                try AtomicFile.write(Data(text.utf8), to: run.directory + "/rules.yaml")
                if let out {
                    try AtomicFile.write(Data(text.utf8), to: out)
                    context.console.progress("rules: \(out) (\(rules.alertNames.count) alerts)")
                } else {
                    context.console.write(text, to: .stdout)
                }
                if let ksmConfig {
                    try AtomicFile.write(Data(rules.kubeStateMetricsConfig().utf8), to: ksmConfig)
                    context.console.progress("kube-state-metrics config: \(ksmConfig)")
                }
                try run.record(
                    EvidenceRecord(
                        kind: "step", name: "generate", status: .pass, message: rules.alertNames.joined(separator: ", "),
                        data: ["alerts": .array(rules.alertNames.map(JSONValue.string))]))
                guard check else { return (.success, "\(rules.alertNames.count) alerts") }
                let file = out ?? run.directory + "/rules.yaml"
                let result = try await context.runner.run(
                    Command("promtool", ["check", "rules", file]),
                    options: RunOptions(timeout: .seconds(60), logPath: run.logPath(for: "promtool"), redactor: context.redactor))
                let passed = result.exitCode == 0
                try run.record(
                    EvidenceRecord(
                        kind: "check", name: "promtool", status: passed ? .pass : .fail, message: result.summary,
                        log: run.relativeLogPath(for: "promtool")))
                if !passed { context.console.error("promtool check rules \(file): \(result.stdoutText)\(result.stderrText)") }
                return (passed ? .success : .checkFailed, passed ? "rules checked by promtool" : "promtool rejected the rules")
            }
            if code != .success { throw ExitCode(code.rawValue) }
        }
    }
}

/// Prometheus rules (and the kube-state-metrics config they need) from the config.
public struct AlertRules: Sendable {
    public var config: ReliabilityConfig

    public init(config: ReliabilityConfig) { self.config = config }

    /// `namespace=~"a|b"` for the configured namespaces, or nothing.
    var namespaceMatcher: String {
        guard !config.namespaces.isEmpty else { return "" }
        let alternatives = config.namespaces.map { $0.replacingOccurrences(of: ".", with: "\\\\.") }.joined(separator: "|")
        return "namespace=~\"\(alternatives)\""
    }

    func selector(_ matchers: String...) -> String {
        let all = (matchers + [namespaceMatcher]).filter { !$0.isEmpty }
        return all.isEmpty ? "" : "{" + all.joined(separator: ",") + "}"
    }

    struct AlertRule {
        var name: String
        var expr: String
        var severity: String
        var summary: String
        var description: String
    }

    var rules: [AlertRule] {
        var rules: [AlertRule] = []
        for kind in config.customResources {
            let prefix = kind.effectiveMetricPrefix
            let threshold = Int(kind.jobWithin.duration.seconds)
            var expr = "(time() - \(prefix)_created\(selector())) > \(threshold)"
            if !kind.donePhases.isEmpty {
                expr += "\nunless on (namespace, name) \(prefix)_info\(selector("phase=~\"\(kind.donePhases.joined(separator: "|"))\""))"
            }
            if kind.jobField != nil { expr += "\nunless on (namespace, name) \(prefix)_info\(selector("job_name!=\"\""))" }
            expr +=
                "\nunless on (namespace, name) label_replace(kube_job_owner\(selector("owner_kind=\"\(kind.kind)\"")), \"name\", \"$1\", \"owner_name\", \"(.+)\")"
            rules.append(
                AlertRule(
                    name: "\(kind.kind)JobCreationStalled", expr: expr, severity: "critical",
                    summary: "\(kind.kind) {{ $labels.namespace }}/{{ $labels.name }} has no Job after \(kind.jobWithin)",
                    description: Rule.customResourceNoJob.why))
        }
        let hang = Int(config.jobs.hangAfter.duration.seconds)
        rules.append(
            AlertRule(
                name: "AgentJobHanging",
                expr:
                    "(time() - kube_job_status_start_time\(selector())) > \(hang)\nand on (namespace, job_name) kube_job_status_active\(selector()) > 0",
                severity: "critical", summary: "Job {{ $labels.namespace }}/{{ $labels.job_name }} has been active for over \(config.jobs.hangAfter)",
                description: Rule.jobHung.why))
        rules.append(
            AlertRule(
                name: "AgentJobFailed", expr: "kube_job_failed\(selector("condition=\"true\"")) > 0", severity: "warning",
                summary: "Job {{ $labels.namespace }}/{{ $labels.job_name }} failed", description: Rule.jobFailed.why))
        for group in config.requiredConfigMaps where !group.names.isEmpty {
            let expr = group.names.map { "absent(kube_configmap_info{namespace=\"\(group.namespace)\",configmap=\"\($0)\"})" }
                .joined(separator: "\nor ")
            rules.append(
                AlertRule(
                    name: "RequiredConfigMapMissing", expr: expr, severity: "critical",
                    summary: "Required ConfigMap {{ $labels.namespace }}/{{ $labels.configmap }} is missing",
                    description: Rule.requiredConfigMap.why))
        }
        return rules
    }

    /// The alert names, in file order.
    public var alertNames: [String] { rules.map(\.name) }

    /// YAML for a Prometheus rule file (`rule_files:`), one group.
    public func prometheusRules() -> String {
        var lines = [
            "# Generated by `kh reliability alerts` from the reliability: config. Needs kube-state-metrics",
            "# (and its custom-resource metrics: `kh reliability alerts --ksm-config FILE`).",
            "groups:",
            "  - name: \(quoted(config.alerts.group))",
            "    rules:",
        ]
        for rule in rules {
            lines.append("      - alert: \(rule.name)")
            lines.append("        expr: |")
            for line in rule.expr.split(separator: "\n") { lines.append("          \(line)") }
            lines.append("        for: \(config.alerts.forDuration)")
            lines.append("        labels:")
            var labels = config.alerts.labels
            labels["severity"] = rule.severity
            for (key, value) in labels.sorted(by: { $0.key < $1.key }) { lines.append("          \(key): \(quoted(value))") }
            lines.append("        annotations:")
            lines.append("          summary: \(quoted(rule.summary))")
            lines.append("          description: \(quoted(rule.description))")
            if let runbook = config.alerts.runbookURL { lines.append("          runbook_url: \(quoted(runbook))") }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// kube-state-metrics `CustomResourceStateMetrics`: for each custom kind, `<prefix>_created`
    /// (creation time) and `<prefix>_info` with `phase` and `job_name` labels.
    public func kubeStateMetricsConfig() -> String {
        var lines = ["kind: CustomResourceStateMetrics", "spec:", "  resources:"]
        for kind in config.customResources {
            lines += [
                "    - groupVersionKind: {group: \(quoted(kind.group)), version: \(quoted(kind.version)), kind: \(quoted(kind.kind))}",
                "      metricNamePrefix: \(kind.effectiveMetricPrefix)",
                "      labelsFromPath:",
                "        name: [metadata, name]",
                "        namespace: [metadata, namespace]",
                "      metrics:",
                "        - name: created",
                "          help: \"Creation time of the \(kind.kind) (Unix seconds)\"",
                "          each:",
                "            type: Gauge",
                "            gauge: {path: [metadata, creationTimestamp]}",
                "        - name: info",
                "          help: \"Phase and Job of the \(kind.kind)\"",
                "          each:",
                "            type: Info",
                "            info:",
                "              labelsFromPath:",
            ]
            if let phase = kind.phaseField { lines.append("                phase: [\(JSONValue.splitPath(phase).joined(separator: ", "))]") }
            if let job = kind.jobField { lines.append("                job_name: [\(JSONValue.splitPath(job).joined(separator: ", "))]") }
        }
        if config.customResources.isEmpty { lines[lines.count - 1] = "  resources: []" }
        return lines.joined(separator: "\n") + "\n"
    }

    func quoted(_ text: String) -> String {
        "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
