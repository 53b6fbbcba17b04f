import AgentReliability
import Foundation
import KhCore
import KhTestSupport
import Testing

@Suite("kh reliability timeline")
struct TimelineTests {
    static func object(_ yaml: String) throws -> KubeObject {
        try #require(try ManifestLoader().parse(yaml, file: "t.yaml").first)
    }

    @Test("the post-mortem's Tasks 1 and 6: 12:32 created, 20:11 Job created; the 7.5-hour gap is flagged")
    func postMortemGap() throws {
        var config = ReliabilityConfig()
        config.customResources = [CustomResourceKind(kind: "CodeRun", resource: "coderuns.agents.example.com")]
        let coderun = try Self.object(
            """
            apiVersion: agents.example.com/v1
            kind: CodeRun
            metadata: {name: task-1, namespace: agents, uid: cr-1, creationTimestamp: "2026-11-20T12:32:00Z"}
            """)
        let job = try Self.object(
            """
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: task-1-rex
              namespace: agents
              creationTimestamp: "2026-11-20T20:11:00Z"
              ownerReferences: [{kind: CodeRun, name: task-1, uid: cr-1}]
            status: {startTime: "2026-11-20T20:11:04Z", completionTime: "2026-11-20T20:19:30Z", succeeded: 1}
            """)
        let pod = try Self.object(
            """
            apiVersion: v1
            kind: Pod
            metadata: {name: task-1-rex-abcde, namespace: agents, labels: {job-name: task-1-rex}}
            status: {startTime: "2026-11-20T20:11:05Z"}
            """)
        let event = try Self.object(
            """
            apiVersion: v1
            kind: Event
            metadata: {name: task-1.1, namespace: agents}
            involvedObject: {kind: CodeRun, name: task-1, namespace: agents}
            type: Warning
            reason: ReconcileError
            message: "generate_all_templates failed"
            count: 1400
            lastTimestamp: "2026-11-20T19:58:00Z"
            """)
        let unrelated = try Self.object(
            """
            apiVersion: batch/v1
            kind: Job
            metadata: {name: other, namespace: agents, creationTimestamp: "2026-11-20T12:33:00Z"}
            """)
        let now = Timestamp.parse("2026-11-20T21:00:00Z")!
        let timeline = TimelineBuilder(config: config, now: now).build(object: coderun, jobs: [unrelated, job], pods: [pod], events: [event])
        #expect(timeline.jobs == ["task-1-rex"])
        #expect(timeline.pods == ["task-1-rex-abcde"])
        #expect(timeline.events.map(\.count) == [1400])
        #expect(timeline.gaps.map(\.to) == ["job created", "started", "finished"])
        let first = timeline.gaps[0]
        #expect(first.flagged && !first.open && first.seconds == 7 * 3600 + 39 * 60)
        #expect(!timeline.gaps[1].flagged && !timeline.gaps[2].flagged)
        #expect(timeline.summary == "1 gap over threshold: created → job created 7h39m (> 10m00s)")
    }

    @Test("against the emulator: a CodeRun with no Job for 8 hours is flagged (exit 1); one with its Job is not")
    func emulator() async throws {
        let fixture = try await ClusterFixture.make()
        let work = TemporaryDirectory("kh-timeline")
        let config = try work.write("kh.yaml", fixture.config())
        func run(_ name: String, after seconds: Double) async throws -> (KhBinary.Outcome, ResourceTimeline?) {
            let outcome = try await KhBinary.run(
                [
                    "reliability", "timeline", "coderun/\(name)", "-n", fixture.namespace, "--config", config, "--output", "json", "--at",
                    Timestamp.iso8601(Date().addingTimeInterval(seconds)), "--evidence-dir", work.path + "/runs",
                ], in: work.path, environment: fixture.testbed.environment)
            return (outcome, try? KhJSON.decoder().decode(ResourceTimeline.self, from: Data(outcome.stdout.utf8)))
        }
        let (stalled, timeline) = try await run("task-1", after: 8 * 3600)
        #expect(stalled.code == 1, "\(stalled.stderr)")
        let gap = try #require(timeline?.gaps.first)
        #expect(gap.from == "created" && gap.to == "job created" && gap.open && gap.flagged && gap.seconds > 8 * 3600 - 60)
        #expect(timeline?.events.contains { $0.reason == "ReconcileError" && $0.count == 4 } == true)

        let (owned, ownedTimeline) = try await run("task-2", after: 60)
        #expect(owned.code == 0, "\(owned.stdout)\(owned.stderr)")
        #expect(ownedTimeline?.jobs == ["task-2-rex"])
        #expect(ownedTimeline?.gaps.map(\.to) == ["job created", "started"])
        #expect(ownedTimeline?.gaps.last?.open == true)

        let text = try await KhBinary.run(
            ["reliability", "timeline", "coderun/task-1", "-n", fixture.namespace, "--config", config, "--evidence-dir", work.path + "/runs"],
            in: work.path, environment: fixture.testbed.environment)
        #expect(text.stdout.contains("created  CodeRun \(fixture.namespace)/task-1"))
        #expect(text.stdout.contains("event Warning ReconcileError x4"))
        let missing = try await KhBinary.run(
            ["reliability", "timeline", "coderun/nope", "-n", fixture.namespace, "--config", config, "--evidence-dir", work.path + "/runs"],
            in: work.path, environment: fixture.testbed.environment)
        #expect(missing.code == 4 && missing.stderr.contains("not found"))
    }
}
