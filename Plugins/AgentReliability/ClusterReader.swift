import Foundation
import KhCore
import KhKube
import KhPluginAPI
import KhProcess

/// Reads what the enabled checks need from the cluster through kubectl `-o json`,
/// a few calls in parallel, every one with its deadline.
public struct ClusterReader: Sendable {
    public var kubectl: Kubectl
    public var config: ReliabilityConfig
    /// Namespaces to read; empty means all (`--all-namespaces`).
    public var namespaces: [String]

    public init(kubectl: Kubectl, config: ReliabilityConfig, namespaces: [String]) {
        self.kubectl = kubectl
        self.config = config
        self.namespaces = namespaces
    }

    /// The kubectl client for a config (and an optional log file).
    public static func kubectl(for config: ReliabilityConfig, context: CommandContext, logPath: String?) -> Kubectl {
        Kubectl(
            runner: context.runner, executable: config.kubectl, kubeconfig: config.kubeconfig, context: config.context,
            timeout: config.kubeTimeout.duration, redactor: context.redactor, logPath: logPath, clock: context.clock)
    }

    /// One listing: a resource (or comma-joined resources) in some namespaces.
    struct Listing: Sendable {
        var resource: String
        /// nil: the configured namespaces (or all); a value: that namespace only; "" cluster-scoped.
        var namespace: String?
        /// A missing CRD is a note, not an error.
        var optional: Bool
    }

    func plan(_ auditor: Auditor) -> [Listing] {
        var listings: [Listing] = []
        if auditor.enabled(.requiredConfigMap) {
            for namespace in Set(config.requiredConfigMaps.map(\.namespace)).sorted() {
                listings.append(Listing(resource: "configmaps", namespace: namespace, optional: false))
            }
        }
        let specRules = auditor.enabled(.jobActiveDeadline) || auditor.enabled(.jobBackoffLimit) || auditor.enabled(.jobTTL)
        let jobsNeeded = specRules || auditor.enabled(.jobHung) || auditor.enabled(.jobFailed) || auditor.enabled(.customResourceNoJob)
        if specRules {
            listings.append(Listing(resource: "jobs.batch,cronjobs.batch", namespace: nil, optional: false))
            for template in config.jobTemplates {
                if let resource = template.resource { listings.append(Listing(resource: resource, namespace: nil, optional: true)) }
            }
        } else if jobsNeeded {
            listings.append(Listing(resource: "jobs.batch", namespace: nil, optional: false))
        }
        if auditor.enabled(.workflowRetryLimit) || auditor.enabled(.workflowRetryMaxDuration) || auditor.enabled(.workflowResourceWait) {
            for resource in ["workflowtemplates.argoproj.io", "cronworkflows.argoproj.io", "workflows.argoproj.io"] {
                listings.append(Listing(resource: resource, namespace: nil, optional: true))
            }
            listings.append(Listing(resource: "clusterworkflowtemplates.argoproj.io", namespace: "", optional: true))
        }
        if auditor.enabled(.customResourceNoJob) {
            for kind in config.customResources { listings.append(Listing(resource: kind.resource, namespace: nil, optional: true)) }
        }
        if auditor.enabled(.reconcileFailing) {
            listings.append(Listing(resource: "events", namespace: nil, optional: false))
        }
        return listings
    }

    /// Everything the auditor's enabled rules need.
    public func read(for auditor: Auditor) async throws -> Inventory {
        let listings = plan(auditor)
        var calls: [(Listing, [String])] = []
        for listing in listings {
            switch listing.namespace {
            case .some(""): calls.append((listing, []))
            case .some(let namespace): calls.append((listing, ["-n", namespace]))
            case .none:
                if namespaces.isEmpty {
                    calls.append((listing, ["--all-namespaces"]))
                } else {
                    for namespace in namespaces { calls.append((listing, ["-n", namespace])) }
                }
            }
        }
        let kubectl = self.kubectl
        let results = try await withThrowingTaskGroup(of: (Int, [KubeObject], String?).self) { group in
            var next = 0
            var collected: [(Int, [KubeObject], String?)] = []
            // At most four kubectl processes at once.
            func start(_ index: Int) {
                let (listing, scope) = calls[index]
                group.addTask {
                    do {
                        let data = try await kubectl.run(["get", listing.resource, "-o", "json"] + scope, captureLimit: 1 << 30)
                        let list = try GenericJSON.parse(data)
                        let items = (list["items"]?.arrayValue ?? []).map { KubeObject(json: $0) }
                        return (index, items, nil)
                    } catch let error as KubeError where listing.optional && error.kind == .unknownResourceType {
                        return (index, [], "\(listing.resource): not served by this cluster (CRD not installed), skipped")
                    }
                }
            }
            while next < min(4, calls.count) {
                start(next)
                next += 1
            }
            while let result = try await group.next() {
                collected.append(result)
                if next < calls.count {
                    start(next)
                    next += 1
                }
            }
            return collected.sorted { $0.0 < $1.0 }
        }
        var objects: [KubeObject] = []
        var notes: [String] = []
        for (_, items, note) in results {
            objects += items
            if let note { notes.append(note) }
        }
        return Inventory(source: .cluster, objects: objects, notes: notes)
    }
}
