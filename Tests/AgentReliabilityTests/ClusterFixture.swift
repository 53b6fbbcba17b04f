import AgentReliability
import Foundation
import KhCore
import KhKube
import KhProcess
import KhTestSupport

/// The post-mortem's cluster, rebuilt on the testbed's Kubernetes API emulator with
/// real kubectl (`kubectl apply -f`; status through the status subresource, as a
/// controller writes it): ConfigMaps one missing and one empty, a CodeRun with no
/// Job, CodeRuns that did get theirs, a Job hanging for two hours, a controller's
/// repeated reconcile failures, and look-alikes that must stay quiet.
struct ClusterFixture {
    let namespace: String
    let platform: String
    let kubectl: Kubectl
    let testbed: Testbed

    static func kubectl(_ executable: String = "kubectl") throws -> (Kubectl, Testbed) {
        let testbed = try Testbed.load()
        let client = Kubectl(
            runner: LocalRunner(environment: testbed.processEnvironment), executable: executable,
            kubeconfig: try testbed.require("KUBECONFIG"), timeout: .seconds(30))
        return (client, testbed)
    }

    /// Applies the CRDs of `crds/agents.yaml` and waits until they are served.
    static func installCRDs(_ kubectl: Kubectl, _ testbed: Testbed) async throws {
        let crds = try testbed.require("KH_TESTBED_KUBE_CRDS")
        try await kubectl.apply(yaml: String(contentsOfFile: crds + "/agents.yaml", encoding: .utf8))
        for name in ["coderuns.agents.example.com", "coderuntemplates.agents.example.com"] {
            _ = try await kubectl.wait(for: CustomResourceDefinition.self, name: name, timeout: .seconds(20), interval: .milliseconds(200)) {
                $0.isEstablished
            }
        }
    }

    static func make(suffix: String = uniqueMarker().replacingOccurrences(of: ".", with: "")) async throws -> ClusterFixture {
        let (kubectl, testbed) = try kubectl()
        try await installCRDs(kubectl, testbed)
        let fixture = ClusterFixture(namespace: "rel-agents-\(suffix)", platform: "rel-platform-\(suffix)", kubectl: kubectl, testbed: testbed)
        try await fixture.seed()
        return fixture
    }

    /// The config kh runs with against this fixture.
    func config(kubectl executable: String = "kubectl") -> String {
        """
        reliability:
          kubectl: \(executable)
          kubeconfig: \(testbed.environment["KUBECONFIG"] ?? "")
          kube_timeout: 30s
          namespaces: [\(namespace), \(platform)]
          required_configmaps:
            - namespace: \(platform)
              names: [controller-agent-templates-claude, controller-agent-templates-codex, controller-agent-templates-cursor]
          custom_resources:
            - kind: CodeRun
              resource: coderuns.agents.example.com
              job_within: 10m
              job_field: status.jobName
              job_label: agents.example.com/coderun
          job_templates:
            - kind: CodeRunTemplate
              resource: coderuntemplates.agents.example.com
              path: spec.job.spec
          jobs:
            hang_after: 1h
          reconcile:
            threshold: 5
        """
    }

    static func iso(_ date: Date) -> String { Timestamp.iso8601(date).replacingOccurrences(of: ".000Z", with: "Z") }

    func seed() async throws {
        let now = Date()
        let twoHoursAgo = Self.iso(now.addingTimeInterval(-7200))
        let justNow = Self.iso(now)
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: Namespace
                metadata: {name: \(namespace)}
                ---
                apiVersion: v1
                kind: Namespace
                metadata: {name: \(platform)}
                """)
        try await kubectl.apply(
            yaml: """
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: controller-agent-templates-claude, namespace: \(platform)}
                data: {container.sh.hbs: "exec claude"}
                ---
                apiVersion: v1
                kind: ConfigMap
                metadata: {name: controller-agent-templates-codex, namespace: \(platform)}
                data: {}
                ---
                apiVersion: agents.example.com/v1
                kind: CodeRunTemplate
                metadata: {name: tess, namespace: \(platform)}
                spec:
                  job:
                    spec:
                      activeDeadlineSeconds: 3600
                      backoffLimit: 0
                      ttlSecondsAfterFinished: 3600
                ---
                apiVersion: agents.example.com/v1
                kind: CodeRun
                metadata: {name: task-1, namespace: \(namespace)}
                spec: {agent: rex, task: 1}
                ---
                apiVersion: agents.example.com/v1
                kind: CodeRun
                metadata: {name: task-2, namespace: \(namespace)}
                spec: {agent: rex, task: 2}
                ---
                apiVersion: agents.example.com/v1
                kind: CodeRun
                metadata: {name: task-3, namespace: \(namespace)}
                spec: {agent: tess, task: 3}
                ---
                apiVersion: agents.example.com/v1
                kind: CodeRun
                metadata: {name: task-4, namespace: \(namespace)}
                spec: {agent: cleo, task: 4}
                ---
                apiVersion: agents.example.com/v1
                kind: CodeRun
                metadata: {name: task-6, namespace: \(namespace)}
                spec: {agent: cipher, task: 6}
                """)
        // task-2's Job is owned by it (ownerReferences with its uid), as the controller makes it.
        let task2 = try GenericJSON.parse(try await kubectl.run(["get", "coderuns.agents.example.com", "task-2", "-n", namespace, "-o", "json"]))
        let uid = task2.at(["metadata", "uid"])?.stringValue ?? ""
        try await kubectl.apply(
            yaml: """
                apiVersion: batch/v1
                kind: Job
                metadata:
                  name: task-2-rex
                  namespace: \(namespace)
                  ownerReferences: [{apiVersion: agents.example.com/v1, kind: CodeRun, name: task-2, uid: "\(uid)", controller: true}]
                spec:
                  activeDeadlineSeconds: 3600
                  backoffLimit: 0
                  ttlSecondsAfterFinished: 3600
                  template:
                    spec:
                      restartPolicy: Never
                      containers: [{name: rex, image: "ghcr.io/example/agent:1.0"}]
                ---
                apiVersion: batch/v1
                kind: Job
                metadata:
                  name: task-6-cipher
                  namespace: \(namespace)
                  labels: {agents.example.com/coderun: task-6}
                spec:
                  activeDeadlineSeconds: 3600
                  backoffLimit: 0
                  ttlSecondsAfterFinished: 3600
                  template:
                    spec:
                      restartPolicy: Never
                      containers: [{name: cipher, image: "ghcr.io/example/agent:1.0"}]
                ---
                apiVersion: batch/v1
                kind: Job
                metadata: {name: tess-task-7, namespace: \(namespace)}
                spec:
                  activeDeadlineSeconds: 86400
                  backoffLimit: 0
                  ttlSecondsAfterFinished: 3600
                  template:
                    spec:
                      restartPolicy: Never
                      containers: [{name: tess, image: "ghcr.io/example/agent:1.0"}]
                ---
                apiVersion: batch/v1
                kind: Job
                metadata: {name: rex-task-8, namespace: \(namespace)}
                spec:
                  activeDeadlineSeconds: 3600
                  backoffLimit: 0
                  ttlSecondsAfterFinished: 3600
                  template:
                    spec:
                      restartPolicy: Never
                      containers: [{name: rex, image: "ghcr.io/example/agent:1.0"}]
                """)
        try await kubectl.patch(
            "coderuns.agents.example.com", name: "task-3", namespace: namespace, #"{"status":{"phase":"Running","jobName":"task-3-tess"}}"#,
            subresource: "status")
        try await kubectl.patch(
            "coderuns.agents.example.com", name: "task-4", namespace: namespace, #"{"status":{"phase":"Succeeded"}}"#, subresource: "status")
        // tess-task-7 has been active for two hours (the post-mortem's hang); rex-task-8 finished.
        try await kubectl.patch(
            "jobs.batch", name: "tess-task-7", namespace: namespace, #"{"status":{"active":1,"startTime":"\#(twoHoursAgo)"}}"#, subresource: "status")
        try await kubectl.patch(
            "jobs.batch", name: "rex-task-8", namespace: namespace,
            #"{"status":{"succeeded":1,"startTime":"\#(twoHoursAgo)","completionTime":"\#(justNow)","conditions":[{"type":"Complete","status":"True"}]}}"#,
            subresource: "status")
        // The controller's reconcile of task-1 fails again and again: 3 + 4 occurrences.
        // task-3 failed twice (under the threshold); task-2 failed 6 times, then succeeded.
        func event(_ name: String, _ object: String, _ type: String, _ reason: String, count: Int, series: Bool = false, at: String) -> String {
            """
            apiVersion: v1
            kind: Event
            metadata: {name: \(name), namespace: \(namespace)}
            involvedObject: {apiVersion: agents.example.com/v1, kind: CodeRun, name: \(object), namespace: \(namespace)}
            reason: \(reason)
            message: "generate_all_templates failed: ConfigMap controller-agent-templates-claude not found"
            type: \(type)
            source: {component: agent-controller}
            firstTimestamp: "\(at)"
            lastTimestamp: "\(at)"
            \(series ? "series: {count: \(count), lastObservedTime: \"\(at)\"}" : "count: \(count)")
            """
        }
        let earlier = Self.iso(now.addingTimeInterval(-600))
        try await kubectl.apply(
            yaml: [
                event("task-1.a", "task-1", "Warning", "ReconcileError", count: 3, at: earlier),
                event("task-1.b", "task-1", "Warning", "ReconcileError", count: 4, series: true, at: justNow),
                event("task-3.a", "task-3", "Warning", "ReconcileError", count: 2, at: justNow),
                event("task-2.a", "task-2", "Warning", "ReconcileError", count: 6, at: earlier),
                event("task-2.b", "task-2", "Normal", "JobCreated", count: 1, at: justNow),
            ].joined(separator: "\n---\n"))
    }

    /// What the audit must report for this fixture (finding keys).
    var expected: Set<String> {
        [
            "required-configmap|\(platform)/ConfigMap/controller-agent-templates-codex|empty",
            "required-configmap|\(platform)/ConfigMap/controller-agent-templates-cursor|missing",
            "custom-resource-no-job|\(namespace)/CodeRun/task-1|no-job",
            "job-hung|\(namespace)/Job/tess-task-7|hung",
            "reconcile-failing|\(namespace)/CodeRun/task-1|ReconcileError",
        ]
    }
}
