import Foundation
import KhCore

/// What the audit looks at: objects from the cluster or from manifests.
public struct Inventory: Sendable {
    /// Where the objects came from. Time-based checks (stalled resources, hung Jobs,
    /// reconcile loops) run on the cluster only: manifests have no age.
    public enum Source: Sendable, Equatable {
        case cluster
        case manifests(String)
    }

    public var source: Source
    public var objects: [KubeObject]
    /// Kinds or files that could not be read.
    public var notes: [String]

    public init(source: Source, objects: [KubeObject], notes: [String] = []) {
        self.source = source
        self.objects = objects
        self.notes = notes
    }
}

/// The checks of the post-mortem's safeguards, over any kinds the config names.
/// Pure: objects and a time in, findings out.
public struct Auditor: Sendable {
    public var config: ReliabilityConfig
    /// The time ages are measured against (the injected clock's now).
    public var now: Date
    /// Rule ids to run (empty: all).
    public var only: Set<String>

    static let workflowKinds: Set<String> = ["Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"]

    public init(config: ReliabilityConfig, now: Date, only: Set<String> = []) {
        self.config = config
        self.now = now
        self.only = only
    }

    func enabled(_ rule: Rule) -> Bool { only.isEmpty || only.contains(rule.id) }

    /// Runs every enabled check.
    public func audit(_ inventory: Inventory) -> AuditReport {
        var findings: [Finding] = []
        let objects = inventory.objects
        var byKind: [String: [KubeObject]] = [:]
        for object in objects { byKind[object.kind, default: []].append(object) }
        let live = inventory.source == .cluster

        if enabled(.requiredConfigMap) { findings += requiredConfigMaps(byKind["ConfigMap"] ?? [], cluster: live) }
        for job in byKind["Job"] ?? [] {
            // A CronJob's Jobs are reported through the CronJob.
            if live && job.owners.contains(where: { $0.kind == "CronJob" }) { continue }
            let owner = job.owners.first.map { "\($0.kind)/\($0.name)" }
            findings += jobSpec(job.json["spec"], of: job, path: ["spec"], context: owner.map { "created by \($0)" })
        }
        for cron in byKind["CronJob"] ?? [] {
            findings += jobSpec(cron.json.at(["spec", "jobTemplate", "spec"]), of: cron, path: ["spec", "jobTemplate", "spec"], context: nil)
        }
        for template in config.jobTemplates {
            let path = JSONValue.splitPath(template.path)
            for object in byKind[template.kind] ?? [] {
                findings += jobSpec(object.json.at(path), of: object, path: path, context: "job template at \(template.path)")
            }
        }
        for kind in Self.workflowKinds.sorted() {
            for object in byKind[kind] ?? [] { findings += workflow(object) }
        }
        if live {
            let jobs = byKind["Job"] ?? []
            if enabled(.jobHung) || enabled(.jobFailed) { findings += jobStates(jobs) }
            if enabled(.customResourceNoJob) {
                for kind in config.customResources { findings += stalled(byKind[kind.kind] ?? [], kind: kind, jobs: jobs) }
            }
            if enabled(.reconcileFailing) { findings += reconcileLoops(byKind["Event"] ?? []) }
        }
        var read: [String: Int] = [:]
        for (kind, list) in byKind { read[kind] = list.count }
        let source: String
        switch inventory.source {
        case .cluster: source = "cluster"
        case .manifests(let dir): source = "manifests:\(dir)"
        }
        return AuditReport(source: source, generatedAt: now, objectsRead: read, findings: findings, notes: inventory.notes)
    }

    // MARK: Required ConfigMaps

    func requiredConfigMaps(_ configMaps: [KubeObject], cluster: Bool) -> [Finding] {
        var findings: [Finding] = []
        for group in config.requiredConfigMaps {
            for name in group.names {
                let ref = ObjectRef(kind: "ConfigMap", apiVersion: "v1", namespace: group.namespace, name: name)
                // Manifests often leave the namespace to `kubectl apply -n`.
                let match = configMaps.first { $0.name == name && ($0.namespace == group.namespace || (!cluster && $0.namespace == nil)) }
                guard let configMap = match else {
                    findings.append(
                        Finding(
                            rule: .requiredConfigMap, object: ref,
                            message: "required ConfigMap \(group.namespace)/\(name) is missing"
                                + (cluster ? "" : " from these manifests"),
                            fix: configMapFix(name: name, namespace: group.namespace, keys: group.keys), detail: "missing"))
                    continue
                }
                let data = configMap.json["data"]?.objectValue ?? [:]
                let binary = configMap.json["binaryData"]?.objectValue ?? [:]
                let filled = data.filter { $0.value.isPresent }.count + binary.filter { $0.value.isPresent }.count
                if filled == 0 {
                    findings.append(
                        Finding(
                            rule: .requiredConfigMap, object: configMap.reference,
                            message: "required ConfigMap \(group.namespace)/\(name) exists but its data is empty",
                            fix: configMapFix(name: name, namespace: group.namespace, keys: group.keys), detail: "empty"))
                    continue
                }
                let missingKeys = group.keys.filter { key in !(data[key]?.isPresent ?? false) && !(binary[key]?.isPresent ?? false) }
                if !missingKeys.isEmpty {
                    findings.append(
                        Finding(
                            rule: .requiredConfigMap, object: configMap.reference,
                            message: "required ConfigMap \(group.namespace)/\(name) lacks key(s) \(missingKeys.joined(separator: ", "))",
                            fix: configMapFix(name: name, namespace: group.namespace, keys: missingKeys), detail: "keys"))
                }
            }
        }
        return findings
    }

    func configMapFix(name: String, namespace: String, keys: [String]) -> String {
        let dataLines = (keys.isEmpty ? ["<key>"] : keys).map { "  \($0): |\n    <content>" }.joined(separator: "\n")
        return """
            # create it (or fix what renders it), then let the controller check it at start-up:
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: \(name)
              namespace: \(namespace)
            data:
            \(dataLines)
            ---
            # and in the controller's Deployment, fail fast before it starts:
            initContainers:
              - name: require-configmaps
                image: <image with kh>
                command: [kh, reliability, audit, --only, required-configmap]
            """
    }

    // MARK: Job specs

    func jobSpec(_ spec: JSONValue?, of object: KubeObject, path: [String], context: String?) -> [Finding] {
        let policy = config.jobs
        var findings: [Finding] = []
        let spec = spec ?? .object([:])
        let where_ = context.map { " (\($0))" } ?? ""
        let pathText = path.joined(separator: ".")
        if policy.requireActiveDeadline && enabled(.jobActiveDeadline) {
            let jobDeadline = spec["activeDeadlineSeconds"]?.intValue
            let podDeadline = spec.at(["template", "spec", "activeDeadlineSeconds"])?.intValue
            let recommended = Int(policy.recommendedDeadline.duration.seconds)
            if jobDeadline == nil && podDeadline == nil {
                findings.append(
                    Finding(
                        rule: .jobActiveDeadline, object: object.reference,
                        message: "\(pathText) has no activeDeadlineSeconds\(where_): Kubernetes will never stop it if it hangs",
                        fix: FixYAML.nest(path, ["activeDeadlineSeconds: \(recommended)  # \(policy.recommendedDeadline) max"]),
                        detail: pathText))
            } else if let max = policy.maxActiveDeadline, let deadline = jobDeadline ?? podDeadline,
                Double(deadline) > max.duration.seconds
            {
                findings.append(
                    Finding(
                        rule: .jobActiveDeadline, object: object.reference,
                        message: "\(pathText) activeDeadlineSeconds is \(deadline)s, above the allowed \(max)\(where_)",
                        fix: FixYAML.nest(path, ["activeDeadlineSeconds: \(Int(max.duration.seconds))"]), detail: pathText + ":max",
                        severity: .warning))
            }
        }
        if policy.requireBackoffLimit && enabled(.jobBackoffLimit) && spec["backoffLimit"] == nil {
            findings.append(
                Finding(
                    rule: .jobBackoffLimit, object: object.reference,
                    message: "\(pathText) has no backoffLimit\(where_): a failing run is retried 6 times",
                    fix: FixYAML.nest(path, ["backoffLimit: \(policy.recommendedBackoffLimit)"]), detail: pathText))
        }
        if policy.requireTTL && enabled(.jobTTL) && spec["ttlSecondsAfterFinished"] == nil {
            findings.append(
                Finding(
                    rule: .jobTTL, object: object.reference,
                    message: "\(pathText) has no ttlSecondsAfterFinished\(where_): finished Jobs are never cleaned up",
                    fix: FixYAML.nest(path, ["ttlSecondsAfterFinished: \(Int(policy.recommendedTTL.duration.seconds))"]), detail: pathText))
        }
        return findings
    }

    // MARK: Argo Workflows

    func workflow(_ object: KubeObject) -> [Finding] {
        let specPath = object.kind == "CronWorkflow" ? ["spec", "workflowSpec"] : ["spec"]
        guard let spec = object.json.at(specPath) else { return [] }
        let policy = config.workflows
        let workflowDeadline = spec["activeDeadlineSeconds"]?.intValue
        let defaultRetry = spec.at(["templateDefaults", "retryStrategy"]) ?? spec["retryStrategy"]
        var findings: [Finding] = []
        for (index, template) in (spec["templates"]?.arrayValue ?? []).enumerated() {
            let name = template["name"]?.stringValue ?? "#\(index)"
            let retry = template["retryStrategy"] ?? defaultRetry
            let bounded = template["activeDeadlineSeconds"] != nil || template["timeout"]?.isPresent == true || workflowDeadline != nil
            if let retry, retry != .null {
                let limit = retry["limit"]
                if policy.requireLimit && enabled(.workflowRetryLimit) && (limit == nil || limit == .null) {
                    findings.append(
                        Finding(
                            rule: .workflowRetryLimit, object: object.reference,
                            message: "template \(name) retries with no retryStrategy.limit: it retries forever",
                            fix: FixYAML.template(specPath, name, under: ["retryStrategy"], ["limit: \(policy.recommendedLimit)"]), detail: name))
                }
                let maxDuration = retry.at(["backoff", "maxDuration"])
                if policy.requireMaxDuration && enabled(.workflowRetryMaxDuration) {
                    if maxDuration == nil || maxDuration == .null {
                        findings.append(
                            Finding(
                                rule: .workflowRetryMaxDuration, object: object.reference,
                                message: "template \(name) retries with no backoff.maxDuration: the retries have no time bound",
                                fix: FixYAML.template(
                                    specPath, name, under: ["retryStrategy", "backoff"],
                                    ["duration: \"30s\"", "factor: 2", "maxDuration: \"\(policy.recommendedMaxDuration)\""]),
                                detail: name))
                    } else if let limit = policy.maxDurationLimit, let text = maxDuration?.stringValue ?? maxDuration?.intValue.map(String.init),
                        let value = KhDuration(parsing: text), value > limit
                    {
                        findings.append(
                            Finding(
                                rule: .workflowRetryMaxDuration, object: object.reference,
                                message: "template \(name) backoff.maxDuration \(text) is above the allowed \(limit)",
                                fix: FixYAML.template(specPath, name, under: ["retryStrategy", "backoff"], ["maxDuration: \"\(limit)\""]),
                                detail: name + ":max"))
                    }
                }
            }
            if policy.boundResourceWaits && enabled(.workflowResourceWait), let resource = template["resource"],
                resource["successCondition"]?.isPresent == true || resource["failureCondition"]?.isPresent == true
            {
                let retryBound = retry?.at(["backoff", "maxDuration"])?.isPresent == true
                if !bounded && !retryBound {
                    let condition = resource["successCondition"]?.stringValue ?? resource["failureCondition"]?.stringValue ?? ""
                    findings.append(
                        Finding(
                            rule: .workflowResourceWait, object: object.reference,
                            message: "resource step \(name) waits for `\(condition)` with no activeDeadlineSeconds, timeout or retry maxDuration",
                            fix: FixYAML.template(
                                specPath, name, under: [],
                                [
                                    "activeDeadlineSeconds: \(Int(policy.recommendedMaxDuration.duration.seconds))",
                                    "retryStrategy:\n  limit: \(policy.recommendedLimit)\n  retryPolicy: OnError\n  backoff:\n    duration: \"30s\"\n    factor: 2\n    maxDuration: \"\(policy.recommendedMaxDuration)\"",
                                ]),
                            detail: name))
                }
            }
        }
        return findings
    }

    // MARK: Live state

    func jobStates(_ jobs: [KubeObject]) -> [Finding] {
        var findings: [Finding] = []
        let hangAfter = config.jobs.hangAfter.duration.seconds
        for job in jobs {
            let status = job.json["status"] ?? .object([:])
            let conditions = status["conditions"]?.arrayValue ?? []
            func isTrue(_ type: String) -> Bool {
                conditions.contains { $0["type"]?.stringValue == type && $0["status"]?.stringValue == "True" }
            }
            if isTrue("Failed") {
                if enabled(.jobFailed) {
                    let reason = conditions.first { $0["type"]?.stringValue == "Failed" }?["reason"]?.stringValue ?? "Failed"
                    findings.append(
                        Finding(
                            rule: .jobFailed, object: job.reference, message: "failed (\(reason))",
                            fix: "# read why, then fix the cause:\n# kubectl logs job/\(job.name) -n \(job.namespace ?? "default")\n"
                                + "# kubectl describe job/\(job.name) -n \(job.namespace ?? "default")",
                            detail: "failed"))
                }
                continue
            }
            guard enabled(.jobHung), !isTrue("Complete"), status["completionTime"]?.isPresent != true,
                job.json.at(["spec", "suspend"])?.boolValue != true
            else { continue }
            guard let started = status["startTime"]?.dateValue ?? job.creationTimestamp else { continue }
            let age = now.timeIntervalSince(started)
            if age > hangAfter {
                let deadline = job.json.at(["spec", "activeDeadlineSeconds"])?.intValue
                findings.append(
                    Finding(
                        rule: .jobHung, object: job.reference,
                        message: "active for \(Duration.seconds(age).humanDescription), over the \(config.jobs.hangAfter) threshold"
                            + (deadline.map { " (activeDeadlineSeconds \($0))" } ?? " and it has no activeDeadlineSeconds"),
                        fix: "# stop it now if it is stuck: kubectl delete job/\(job.name) -n \(job.namespace ?? "default")\n"
                            + FixYAML.nest(["spec"], ["activeDeadlineSeconds: \(Int(config.jobs.recommendedDeadline.duration.seconds))"]),
                        detail: "hung"))
            }
        }
        return findings
    }

    func stalled(_ resources: [KubeObject], kind: CustomResourceKind, jobs: [KubeObject]) -> [Finding] {
        var ownerUIDs = Set<String>()
        var ownerNames = Set<String>()
        var labelled = Set<String>()
        for job in jobs {
            for owner in job.owners where owner.kind == kind.kind {
                if let uid = owner.uid { ownerUIDs.insert(uid) }
                ownerNames.insert("\(job.namespace ?? "")/\(owner.name)")
            }
            if let label = kind.jobLabel, let value = job.labels[label] { labelled.insert("\(job.namespace ?? "")/\(value)") }
        }
        let threshold = kind.jobWithin.duration.seconds
        var findings: [Finding] = []
        for object in resources {
            if let field = kind.phaseField, let phase = object.json.at(dotted: field)?.stringValue, kind.donePhases.contains(phase) { continue }
            guard let created = object.creationTimestamp else { continue }
            let age = now.timeIntervalSince(created)
            guard age > threshold else { continue }
            let key = "\(object.namespace ?? "")/\(object.name)"
            if let field = kind.jobField, object.json.at(dotted: field)?.isPresent == true { continue }
            if let uid = object.uid, ownerUIDs.contains(uid) { continue }
            if ownerNames.contains(key) || labelled.contains(key) { continue }
            let phase = kind.phaseField.flatMap { object.json.at(dotted: $0)?.stringValue }
            findings.append(
                Finding(
                    rule: .customResourceNoJob, object: object.reference,
                    message: "created \(Duration.seconds(age).humanDescription) ago and still no Job (threshold \(kind.jobWithin))"
                        + (phase.map { ", phase \($0)" } ?? ""),
                    fix: """
                        # find out why the controller cannot create the Job:
                        #   kh reliability timeline \(kind.kind.lowercased())/\(object.name) -n \(object.namespace ?? "default")
                        #   kh reliability audit --only required-configmap
                        # and bound the workflow step that waits for it:
                        retryStrategy:
                          limit: \(config.workflows.recommendedLimit)
                          backoff:
                            duration: "30s"
                            factor: 2
                            maxDuration: "\(kind.jobWithin)"
                        """,
                    detail: "no-job"))
        }
        return findings
    }

    func reconcileLoops(_ events: [KubeObject]) -> [Finding] {
        let policy = config.reconcile
        let windowStart = now.addingTimeInterval(-policy.window.duration.seconds)
        struct Entry {
            var at: Date
            var warning: Bool
            var reason: String
            var count: Int
            var message: String
            var component: String
        }
        var perObject: [String: (ref: ObjectRef, entries: [Entry])] = [:]
        for event in events {
            let json = event.json
            let involved = json["involvedObject"] ?? json["regarding"] ?? .object([:])
            let component =
                json.at(["source", "component"])?.stringValue ?? json["reportingComponent"]?.stringValue
                ?? json["reportingController"]?.stringValue ?? ""
            if !policy.components.isEmpty && !policy.components.contains(component) { continue }
            let lastSeen =
                json.at(["series", "lastObservedTime"])?.dateValue ?? json["lastTimestamp"]?.dateValue ?? json["eventTime"]?.dateValue
                ?? json["firstTimestamp"]?.dateValue ?? event.creationTimestamp
            guard let at = lastSeen, at >= windowStart else { continue }
            let ref = ObjectRef(
                kind: involved["kind"]?.stringValue ?? "", apiVersion: involved["apiVersion"]?.stringValue,
                namespace: involved["namespace"]?.stringValue ?? event.namespace, name: involved["name"]?.stringValue ?? "")
            let count = json.at(["series", "count"])?.intValue ?? json["count"]?.intValue ?? 1
            let entry = Entry(
                at: at, warning: json["type"]?.stringValue == "Warning", reason: json["reason"]?.stringValue ?? "", count: max(1, count),
                message: json["note"]?.stringValue ?? json["message"]?.stringValue ?? "", component: component)
            perObject[ref.identity, default: (ref, [])].entries.append(entry)
        }
        var findings: [Finding] = []
        for (_, value) in perObject.sorted(by: { $0.key < $1.key }) {
            let entries = value.entries.sorted { $0.at > $1.at }
            guard let latest = entries.first, latest.warning else { continue }
            var total = 0
            for entry in entries {
                guard entry.warning && entry.reason == latest.reason else { break }
                total += entry.count
            }
            guard total >= policy.threshold else { continue }
            findings.append(
                Finding(
                    rule: .reconcileFailing, object: value.ref,
                    message: "\(total) consecutive Warning events \(latest.reason)"
                        + (latest.component.isEmpty ? "" : " from \(latest.component)") + " (threshold \(policy.threshold)): \(latest.message)",
                    fix: """
                        # the controller retries without an upper bound: make it fail fast at start-up
                        # when what it needs is missing (the post-mortem's ConfigMap health check),
                        # count consecutive failures of \(latest.reason) and alert above \(policy.threshold)
                        spec:
                          template:
                            spec:
                              initContainers:
                                - name: require-configmaps
                                  image: <image with kh>
                                  command: [kh, reliability, audit, --only, required-configmap]
                        """,
                    detail: latest.reason))
        }
        return findings
    }
}
