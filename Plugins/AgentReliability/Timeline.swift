import ArgumentParser
import Foundation
import KhCore
import KhKube
import KhPluginAPI

extension Reliability {
    /// `kh reliability timeline KIND/NAME`: created → job created → started → finished, gaps flagged.
    struct Timeline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "timeline",
            abstract: "Show a resource's chain created → job created → started → finished, its events, and every gap over its threshold.",
            discussion: """
                RESOURCE is KIND/NAME as kubectl takes it (coderun/task-1, job/tess-7). Jobs are found by owner reference, \
                by the custom_resources[].job_label label or by the job_field status field; Pods by their job-name label. \
                Exit 1 when a gap is over its threshold (timeline.* in the config; custom_resources[].job_within for \
                created → job created).
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: ArgumentHelp("KIND/NAME, e.g. coderun/task-1.", valueName: "resource"))
        var resource: String

        @Option(name: [.customShort("n"), .long], help: ArgumentHelp("The resource's namespace.", valueName: "namespace"))
        var namespace: String?

        @Option(name: .long, help: ArgumentHelp("Measure open gaps as of this RFC 3339 time instead of now.", valueName: "time"))
        var at: String?

        func validate() throws {
            let parts = resource.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw ValidationError("RESOURCE \(resource): expected KIND/NAME such as coderun/task-1")
            }
            if let at, Timestamp.parse(at) == nil { throw ValidationError("--at \(at): expected an RFC 3339 time such as 2026-01-02T15:04:05Z") }
        }

        func run() async throws {
            let context = try global.makeContext()
            let config = try context.section("reliability", as: ReliabilityConfig.self)
            let parts = resource.split(separator: "/").map(String.init)
            let now = at.flatMap(Timestamp.parse) ?? context.clock.now()
            var flagged = false
            let code = try await context.withEvidence { run in
                let kubectl = ClusterReader.kubectl(for: config, context: context, logPath: run.logPath(for: "kubectl"))
                var scope: [String] = []
                if let namespace { scope = ["-n", namespace] }
                let object = KubeObject(json: try GenericJSON.parse(try await kubectl.run(["get", parts[0], parts[1], "-o", "json"] + scope)))
                let ns = object.namespace.map { ["-n", $0] } ?? scope
                async let jobs = kubectl.run(["get", "jobs.batch", "-o", "json"] + ns, captureLimit: 1 << 30)
                async let pods = kubectl.run(["get", "pods", "-o", "json"] + ns, captureLimit: 1 << 30)
                async let events = kubectl.run(["get", "events", "-o", "json"] + ns, captureLimit: 1 << 30)
                func items(_ data: Data) throws -> [KubeObject] {
                    (try GenericJSON.parse(data)["items"]?.arrayValue ?? []).map { KubeObject(json: $0) }
                }
                let chain = TimelineBuilder(config: config, now: now).build(
                    object: object, jobs: try items(try await jobs), pods: try items(try await pods), events: try items(try await events))
                flagged = chain.gaps.contains { $0.flagged }
                try run.record(
                    EvidenceRecord(
                        kind: "timeline", name: object.reference.display, status: flagged ? .fail : .pass, message: chain.summary,
                        data: try JSONValue(encoding: chain)))
                if context.console.format == .json {
                    try context.console.json(chain)
                } else {
                    context.console.result(chain.text { context.console.style($0, $1) })
                }
                return (flagged ? .checkFailed : .success, chain.summary)
            }
            if code != .success { throw ExitCode(code.rawValue) }
        }
    }
}

/// One resource's way from creation to a finished Job.
public struct ResourceTimeline: Codable, Sendable {
    public struct Milestone: Codable, Sendable, Equatable {
        /// `created`, `job created`, `started`, `finished`.
        public var name: String
        public var at: Date?
        /// The object the time was read from (`Job agents/task-1-rex`).
        public var object: String?
        public var detail: String?
    }

    public struct Gap: Codable, Sendable, Equatable {
        public var from: String
        public var to: String
        public var seconds: Double
        public var thresholdSeconds: Double
        /// Over its threshold.
        public var flagged: Bool
        /// The later milestone has not happened: measured up to now.
        public var open: Bool
    }

    public struct EventLine: Codable, Sendable, Equatable {
        public var at: Date
        public var type: String
        public var reason: String
        public var count: Int
        public var object: String
        public var message: String
    }

    public var resource: ObjectRef
    public var now: Date
    public var milestones: [Milestone]
    public var gaps: [Gap]
    public var events: [EventLine]
    public var jobs: [String]
    public var pods: [String]

    /// One line: `2 gaps over threshold: created → job created 7h39m (> 10m)`.
    public var summary: String {
        let over = gaps.filter(\.flagged)
        guard !over.isEmpty else { return "no gap over its threshold" }
        return "\(over.count) gap\(over.count == 1 ? "" : "s") over threshold: "
            + over.map {
                "\($0.from) → \($0.to) \(Duration.seconds($0.seconds).humanDescription)\($0.open ? " and counting" : "") (> \(Duration.seconds($0.thresholdSeconds).humanDescription))"
            }.joined(separator: "; ")
    }

    func text(style: (String, Style) -> String) -> String {
        var lines = ["\(resource.display)  (as of \(Timestamp.iso8601(now)))"]
        struct Row {
            var at: Date
            var text: String
        }
        var rows: [Row] = []
        for milestone in milestones {
            guard let at = milestone.at else { continue }
            var text = milestone.name
            if let object = milestone.object { text += "  \(object)" }
            if let detail = milestone.detail { text += "  (\(detail))" }
            rows.append(Row(at: at, text: style(text, .bold)))
        }
        for event in events {
            let label = event.type == "Warning" ? style("Warning", .yellow) : event.type
            rows.append(Row(at: event.at, text: "  event \(label) \(event.reason) x\(event.count) on \(event.object): \(event.message)"))
        }
        for row in rows.sorted(by: { $0.at < $1.at }) { lines.append("  \(Timestamp.iso8601(row.at))  \(row.text)") }
        for milestone in milestones where milestone.at == nil { lines.append("  (not yet)                 \(milestone.name)") }
        lines.append("gaps:")
        for gap in gaps {
            let mark = gap.flagged ? style("OVER", .red) : "ok  "
            lines.append(
                "  \(mark) \(gap.from) → \(gap.to): \(Duration.seconds(gap.seconds).humanDescription)\(gap.open ? " so far" : "")"
                    + " (threshold \(Duration.seconds(gap.thresholdSeconds).humanDescription))")
        }
        lines.append(summary)
        return lines.joined(separator: "\n")
    }
}

/// Builds a ``ResourceTimeline`` from objects (pure: no cluster access).
public struct TimelineBuilder: Sendable {
    public var config: ReliabilityConfig
    public var now: Date

    public init(config: ReliabilityConfig, now: Date) {
        self.config = config
        self.now = now
    }

    public func build(object: KubeObject, jobs allJobs: [KubeObject], pods allPods: [KubeObject], events allEvents: [KubeObject])
        -> ResourceTimeline
    {
        let kindConfig = config.customResources.first { $0.kind == object.kind }
        let jobs: [KubeObject]
        if object.kind == "Job" {
            jobs = [object]
        } else {
            let fieldJob = kindConfig?.jobField.flatMap { object.json.at(dotted: $0)?.stringValue }
            jobs = allJobs.filter { job in
                job.owners.contains { ($0.uid != nil && $0.uid == object.uid) || ($0.kind == object.kind && $0.name == object.name) }
                    || (kindConfig?.jobLabel.map { job.labels[$0] == object.name } ?? false) || (fieldJob != nil && job.name == fieldJob)
            }.sorted { ($0.creationTimestamp ?? .distantFuture) < ($1.creationTimestamp ?? .distantFuture) }
        }
        let jobNames = Set(jobs.map(\.name))
        let pods = allPods.filter { pod in
            pod.owners.contains { $0.kind == "Job" && jobNames.contains($0.name) } || pod.labels["job-name"].map(jobNames.contains) == true
                || pod.labels["batch.kubernetes.io/job-name"].map(jobNames.contains) == true
        }
        let related = Set([object.reference.identity] + jobs.map(\.reference.identity) + pods.map(\.reference.identity))
        var events: [ResourceTimeline.EventLine] = []
        for event in allEvents {
            let json = event.json
            let involved = json["involvedObject"] ?? json["regarding"] ?? .object([:])
            let ref = ObjectRef(
                kind: involved["kind"]?.stringValue ?? "", namespace: involved["namespace"]?.stringValue ?? event.namespace,
                name: involved["name"]?.stringValue ?? "")
            guard related.contains(ref.identity) else { continue }
            let at =
                json["lastTimestamp"]?.dateValue ?? json.at(["series", "lastObservedTime"])?.dateValue ?? json["eventTime"]?.dateValue
                ?? json["firstTimestamp"]?.dateValue ?? event.creationTimestamp ?? now
            events.append(
                ResourceTimeline.EventLine(
                    at: at, type: json["type"]?.stringValue ?? "", reason: json["reason"]?.stringValue ?? "",
                    count: json.at(["series", "count"])?.intValue ?? json["count"]?.intValue ?? 1, object: ref.display,
                    message: json["note"]?.stringValue ?? json["message"]?.stringValue ?? ""))
        }
        events.sort { $0.at < $1.at }

        let firstJob = jobs.first
        let created = ResourceTimeline.Milestone(name: "created", at: object.creationTimestamp, object: object.reference.display)
        let jobCreated = ResourceTimeline.Milestone(
            name: "job created", at: firstJob?.creationTimestamp, object: firstJob?.reference.display,
            detail: jobs.count > 1 ? "\(jobs.count) jobs" : nil)
        // Started: the Job's startTime, else its earliest Pod's.
        let podStarts = pods.compactMap { $0.json.at(["status", "startTime"])?.dateValue }
        let startedAt = jobs.compactMap { $0.json.at(["status", "startTime"])?.dateValue }.min() ?? podStarts.min()
        let started = ResourceTimeline.Milestone(name: "started", at: startedAt, object: firstJob?.reference.display)
        var finishedAt: Date?
        var outcome: String?
        for job in jobs {
            let status = job.json["status"] ?? .object([:])
            if let done = status["completionTime"]?.dateValue {
                finishedAt = max(finishedAt ?? done, done)
                outcome = "Complete"
            } else if let failed = (status["conditions"]?.arrayValue ?? []).first(where: {
                $0["type"]?.stringValue == "Failed" && $0["status"]?.stringValue == "True"
            }) {
                let at = failed["lastTransitionTime"]?.dateValue ?? now
                finishedAt = max(finishedAt ?? at, at)
                outcome = "Failed" + (failed["reason"]?.stringValue.map { ": \($0)" } ?? "")
            }
        }
        let finished = ResourceTimeline.Milestone(name: "finished", at: finishedAt, object: firstJob?.reference.display, detail: outcome)
        let milestones = object.kind == "Job" ? [jobCreated, started, finished] : [created, jobCreated, started, finished]

        let thresholds: [String: Double] = [
            "job created": (kindConfig?.jobWithin ?? config.timeline.jobCreatedWithin).duration.seconds,
            "started": config.timeline.startedWithin.duration.seconds,
            "finished": config.timeline.finishedWithin.duration.seconds,
        ]
        var gaps: [ResourceTimeline.Gap] = []
        for (previous, next) in zip(milestones, milestones.dropFirst()) {
            guard let from = previous.at else { break }
            let threshold = thresholds[next.name] ?? .infinity
            let open = next.at == nil
            let seconds = (next.at ?? now).timeIntervalSince(from)
            gaps.append(
                ResourceTimeline.Gap(
                    from: previous.name, to: next.name, seconds: seconds, thresholdSeconds: threshold, flagged: seconds > threshold, open: open))
            if open { break }
        }
        return ResourceTimeline(
            resource: object.reference, now: now, milestones: milestones, gaps: gaps, events: events, jobs: jobs.map(\.name), pods: pods.map(\.name))
    }
}
