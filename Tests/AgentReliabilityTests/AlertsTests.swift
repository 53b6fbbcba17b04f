import AgentReliability
import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// `kh reliability alerts` (the built binary): the rules it writes pass `promtool check
/// rules`, and `promtool test rules` shows each alert firing on kube-state-metrics
/// series of the post-mortem's incidents and staying quiet on the healthy ones.
@Suite("kh reliability alerts with promtool")
struct AlertsTests {
    static let config = """
        reliability:
          namespaces: [agents]
          required_configmaps:
            - namespace: agent-platform
              names: [controller-agent-templates-claude, controller-agent-templates-codex]
          custom_resources:
            - kind: CodeRun
              resource: coderuns.agents.example.com
              job_within: 10m
              job_field: status.jobName
          jobs:
            hang_after: 1h
          alerts:
            for: 5m
            labels: {team: agents}
        """

    static func promtool() throws -> String {
        guard let path = try? LocalRunner.resolve("promtool", path: ProcessInfo.processInfo.environment["PATH"] ?? "") else {
            throw TestFailure("promtool is not installed: `make deps` installs Debian's prometheus package, which ships it")
        }
        return path
    }

    static func generate(_ work: TemporaryDirectory) async throws -> String {
        let config = try work.write("kh.yaml", Self.config)
        let outcome = try await KhBinary.run(
            [
                "reliability", "alerts", "--config", config, "--out", work.path + "/rules.yaml", "--ksm-config", work.path + "/ksm.yaml",
                "--evidence-dir", work.path + "/runs",
            ], in: work.path)
        #expect(outcome.code == 0, "\(outcome.stderr)")
        return work.path + "/rules.yaml"
    }

    @Test("promtool check rules accepts what kh writes; kh's own --check runs it too")
    func checkRules() async throws {
        let promtool = try Self.promtool()
        let work = TemporaryDirectory("kh-alerts-check")
        let rules = try await Self.generate(work)
        let result = try await LocalRunner().run(Command(promtool, ["check", "rules", rules]), options: RunOptions(timeout: .seconds(60)))
        #expect(result.exitCode == 0, "\(result.stdoutText)\(result.stderrText)")
        #expect(result.stdoutText.contains("SUCCESS: 4 rules found"))
        let config = work.path + "/kh.yaml"
        let checked = try await KhBinary.run(
            ["reliability", "alerts", "--config", config, "--check", "--evidence-dir", work.path + "/runs"], in: work.path)
        #expect(checked.code == 0, "\(checked.stderr)")
        #expect(checked.stdout.contains("alert: CodeRunJobCreationStalled"))
        let ksm = try String(contentsOfFile: work.path + "/ksm.yaml", encoding: .utf8)
        #expect(ksm.contains("metricNamePrefix: kube_customresource_coderun") && ksm.contains("job_name: [status, jobName]"))
    }

    @Test("promtool test rules: the incidents fire, healthy series stay quiet")
    func unitTests() async throws {
        let promtool = try Self.promtool()
        let work = TemporaryDirectory("kh-alerts-test")
        _ = try await Self.generate(work)
        let stalledWhy = Rule.customResourceNoJob.why
        let hungWhy = Rule.jobHung.why
        let failedWhy = Rule.jobFailed.why
        let configMapWhy = Rule.requiredConfigMap.why
        let tests = """
            rule_files: [rules.yaml]
            evaluation_interval: 1m
            tests:
              - interval: 1m
                input_series:
                  # task-1: created at t=0, no Job ever (the post-mortem's 7.5 hours)
                  - {series: 'kube_customresource_coderun_created{namespace="agents",name="task-1"}', values: '0x100'}
                  - {series: 'kube_customresource_coderun_info{namespace="agents",name="task-1",phase="Pending"}', values: '1x100'}
                  # task-2: its Job is owned by it
                  - {series: 'kube_customresource_coderun_created{namespace="agents",name="task-2"}', values: '0x100'}
                  - {series: 'kube_job_owner{namespace="agents",job_name="task-2-rex",owner_kind="CodeRun",owner_name="task-2",owner_is_controller="true"}', values: '1x100'}
                  # task-3: status names its Job; task-4: finished
                  - {series: 'kube_customresource_coderun_created{namespace="agents",name="task-3"}', values: '0x100'}
                  - {series: 'kube_customresource_coderun_info{namespace="agents",name="task-3",phase="Running",job_name="task-3-tess"}', values: '1x100'}
                  - {series: 'kube_customresource_coderun_created{namespace="agents",name="task-4"}', values: '0x100'}
                  - {series: 'kube_customresource_coderun_info{namespace="agents",name="task-4",phase="Succeeded"}', values: '1x100'}
                  # a namespace kh was not asked to watch
                  - {series: 'kube_customresource_coderun_created{namespace="other",name="task-9"}', values: '0x100'}
                  # tess-task-7 started at t=0 and never ends; rex-task-8 started at t=0 and finished
                  - {series: 'kube_job_status_start_time{namespace="agents",job_name="tess-task-7"}', values: '0x100'}
                  - {series: 'kube_job_status_active{namespace="agents",job_name="tess-task-7"}', values: '1x100'}
                  - {series: 'kube_job_status_start_time{namespace="agents",job_name="rex-task-8"}', values: '0x100'}
                  - {series: 'kube_job_status_active{namespace="agents",job_name="rex-task-8"}', values: '1 1 1 0x97'}
                  - {series: 'kube_job_failed{namespace="agents",job_name="bad-task",condition="true"}', values: '1x100'}
                  - {series: 'kube_job_failed{namespace="agents",job_name="bad-task",condition="false"}', values: '0x100'}
                  - {series: 'kube_job_failed{namespace="agents",job_name="rex-task-8",condition="true"}', values: '0x100'}
                  # claude exists, codex does not
                  - {series: 'kube_configmap_info{namespace="agent-platform",configmap="controller-agent-templates-claude"}', values: '1x100'}
                alert_rule_test:
                  - {eval_time: 5m, alertname: CodeRunJobCreationStalled, exp_alerts: []}
                  - eval_time: 20m
                    alertname: CodeRunJobCreationStalled
                    exp_alerts:
                      - exp_labels: {severity: critical, team: agents, namespace: agents, name: task-1}
                        exp_annotations:
                          summary: "CodeRun agents/task-1 has no Job after 10m"
                          description: "\(stalledWhy)"
                  - {eval_time: 30m, alertname: AgentJobHanging, exp_alerts: []}
                  - eval_time: 70m
                    alertname: AgentJobHanging
                    exp_alerts:
                      - exp_labels: {severity: critical, team: agents, namespace: agents, job_name: tess-task-7}
                        exp_annotations:
                          summary: "Job agents/tess-task-7 has been active for over 1h"
                          description: "\(hungWhy)"
                  - eval_time: 10m
                    alertname: AgentJobFailed
                    exp_alerts:
                      - exp_labels: {severity: warning, team: agents, namespace: agents, job_name: bad-task, condition: "true"}
                        exp_annotations:
                          summary: "Job agents/bad-task failed"
                          description: "\(failedWhy)"
                  - eval_time: 10m
                    alertname: RequiredConfigMapMissing
                    exp_alerts:
                      - exp_labels: {severity: critical, team: agents, namespace: agent-platform, configmap: controller-agent-templates-codex}
                        exp_annotations:
                          summary: "Required ConfigMap agent-platform/controller-agent-templates-codex is missing"
                          description: "\(configMapWhy)"
            """
        let file = try work.write("tests.yaml", tests)
        let result = try await LocalRunner().run(
            Command(promtool, ["test", "rules", file], workingDirectory: work.path), options: RunOptions(timeout: .seconds(120)))
        #expect(result.exitCode == 0, "\(result.stdoutText)\(result.stderrText)")
        #expect(result.stdoutText.contains("SUCCESS"))

        // The same tests must fail when the incident series are healthy: proof they can fail.
        let healthy = tests.replacingOccurrences(
            of: "{series: 'kube_job_status_active{namespace=\"agents\",job_name=\"tess-task-7\"}', values: '1x100'}",
            with: "{series: 'kube_job_status_active{namespace=\"agents\",job_name=\"tess-task-7\"}', values: '0x100'}")
        let healthyFile = try work.write("healthy.yaml", healthy)
        let failing = try await LocalRunner().run(
            Command(promtool, ["test", "rules", healthyFile], workingDirectory: work.path), options: RunOptions(timeout: .seconds(120)))
        #expect(failing.exitCode != 0)
        #expect((failing.stdoutText + failing.stderrText).contains("AgentJobHanging"))
    }
}
