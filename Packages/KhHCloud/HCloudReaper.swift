import Foundation
import KhCore

/// Deletes what a test run left in a Hetzner Cloud project, scoped by label AND name prefix.
///
/// A resource is in scope when it matches at least one of the label selectors (kube-hetzner's
/// `cluster=<name>`, `provisioner=terraform`, the autoscaler's `hcloud/node-group=<x>`) and its
/// name starts with the prefix (e.g. `khv3-`). One that matches a selector but not the prefix is
/// reported as skipped and never touched.
///
/// ``plan()`` is the dry run. ``execute(_:onItem:)`` deletes in dependency order — detach
/// volumes, servers, placement groups, load balancers, firewalls, networks, SSH keys, then the
/// volumes — with many requests in flight per step and the actions of a step polled in batches
/// before the next step starts. ``remaining()`` lists again to prove what is left.
public struct HCloudReaper: Sendable {
    /// What to reap.
    public struct Scope: Codable, Sendable, Equatable {
        /// Label selectors; a resource matching any of them is a candidate.
        public var labelSelectors: [String]
        /// Only candidates whose name starts with it are deleted. Must not be empty.
        public var namePrefix: String
        /// The kinds considered (default: all of ``HCloudReaper/deletionOrder``).
        public var kinds: [HCloudKind]

        public init(labelSelectors: [String], namePrefix: String, kinds: [HCloudKind] = HCloudReaper.deletionOrder) {
            self.labelSelectors = labelSelectors
            self.namePrefix = namePrefix
            self.kinds = kinds
        }
    }

    /// The order kinds are deleted in (volumes are detached before servers go and deleted last).
    public static let deletionOrder: [HCloudKind] = [.server, .placementGroup, .loadBalancer, .firewall, .network, .sshKey, .volume]

    /// What became of one resource.
    public enum Outcome: String, Codable, Sendable, Equatable {
        /// In the plan, not touched yet (dry run).
        case planned
        /// Matches a selector but not the name prefix: never deleted.
        case skipped
        /// Deleted (its action, if any, succeeded).
        case deleted
        /// Gone before kh deleted it (404).
        case alreadyGone = "already_gone"
        /// Deleting (or detaching) it failed; `detail` says why.
        case failed
        /// Still there after the reap (``HCloudReaper/remaining()``).
        case remaining
    }

    /// One resource and what became of it: a reportable item.
    public struct Item: Codable, Sendable, Equatable {
        public var kind: HCloudKind
        public var id: Int
        public var name: String
        public var labels: [String: String]
        public var outcome: Outcome
        /// Why it failed or was skipped, or what was done besides (`detached from server 12`).
        public var detail: String?
        /// For volumes: the server it is attached to when planned.
        public var attachedTo: Int?

        public init(
            kind: HCloudKind, id: Int, name: String, labels: [String: String], outcome: Outcome, detail: String? = nil, attachedTo: Int? = nil
        ) {
            self.kind = kind
            self.id = id
            self.name = name
            self.labels = labels
            self.outcome = outcome
            self.detail = detail
            self.attachedTo = attachedTo
        }
    }

    /// The dry run: what would be deleted, in order, and what is skipped.
    public struct Plan: Codable, Sendable, Equatable {
        public var scope: Scope
        /// In deletion order (kinds in ``HCloudReaper/deletionOrder``, then by id).
        public var items: [Item]
        /// Matching a selector but not the prefix.
        public var skipped: [Item]

        /// Volumes that must be detached first.
        public var detachments: [Item] { items.filter { $0.kind == .volume && $0.attachedTo != nil } }
        /// True when nothing would be deleted.
        public var isEmpty: Bool { items.isEmpty }
    }

    /// What ``execute(_:onItem:)`` did.
    public struct Report: Codable, Sendable, Equatable {
        /// Every planned item with its outcome, in deletion order.
        public var items: [Item]
        /// Skipped items (as planned).
        public var skipped: [Item]

        /// Items that failed.
        public var failures: [Item] { items.filter { $0.outcome == .failed } }
        /// True when every item was deleted or already gone.
        public var succeeded: Bool { failures.isEmpty }
    }

    /// The client (its configuration gives concurrency and the action deadline).
    public let client: HCloudClient
    /// What to reap.
    public let scope: Scope

    /// - Throws: ``HCloudError/Kind/configuration`` for an empty prefix or no selector: a reap is
    ///   never scoped by labels or prefix alone.
    public init(client: HCloudClient, scope: Scope) throws {
        guard !scope.namePrefix.isEmpty else {
            throw HCloudError(kind: .configuration, detail: "the reaper needs a name prefix (e.g. khv3-): it never deletes by labels alone")
        }
        guard !scope.labelSelectors.isEmpty, scope.labelSelectors.allSatisfy({ !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
            throw HCloudError(kind: .configuration, detail: "the reaper needs at least one non-empty label selector (e.g. cluster=khv3)")
        }
        self.client = client
        self.scope = scope
    }

    /// Lists every kind by every selector and sorts what matches into the plan and the skipped.
    public func plan() async throws -> Plan {
        let found = try await candidates()
        let order = Dictionary(uniqueKeysWithValues: Self.deletionOrder.enumerated().map { ($1, $0) })
        let sorted = found.sorted { (order[$0.kind] ?? 99, $0.id) < (order[$1.kind] ?? 99, $1.id) }
        var items: [Item] = []
        var skipped: [Item] = []
        for var item in sorted {
            if item.name.hasPrefix(scope.namePrefix) {
                item.outcome = .planned
                items.append(item)
            } else {
                item.outcome = .skipped
                item.detail = "name does not start with \(scope.namePrefix)"
                skipped.append(item)
            }
        }
        return Plan(scope: scope, items: items, skipped: skipped)
    }

    /// Deletes the plan's items in dependency order. Failures are recorded per item and the
    /// reap goes on (a later step may then fail too, which its items say). `onItem` is told each
    /// outcome as it is known. Throws only when the API cannot be used at all (unreachable,
    /// unauthorized) or is cancelled.
    public func execute(_ plan: Plan, onItem: (@Sendable (Item) -> Void)? = nil) async throws -> Report {
        var results: [Int: Item] = [:]  // index in plan.items -> outcome
        let indexed = Array(plan.items.enumerated())

        // 1. Detach volumes.
        let detach = indexed.filter { $0.element.kind == .volume && $0.element.attachedTo != nil }
        let detached = try await runStep(detach) { item in try await client.detachVolume(id: item.id) }
        var notes: [Int: String] = [:]
        for (index, outcome) in detached {
            if outcome.outcome == .failed {
                results[index] = outcome
                onItem?(outcome)
            } else if outcome.outcome == .deleted {
                notes[index] = "detached from server \(outcome.attachedTo ?? 0) first"
            }
        }

        // 2. Every kind in order; volumes last, only those whose detach did not fail.
        for kind in Self.deletionOrder {
            let batch = indexed.filter { $0.element.kind == kind && results[$0.offset] == nil }
            let outcomes = try await runStep(batch) { item in try await client.delete(kind, id: item.id) }
            for (index, var outcome) in outcomes {
                if outcome.detail == nil, let note = notes[index] { outcome.detail = note }
                results[index] = outcome
                onItem?(outcome)
            }
        }
        return Report(items: plan.items.indices.map { results[$0] ?? plan.items[$0] }, skipped: plan.skipped)
    }

    /// Lists again; every in-scope resource still there, as `remaining` items.
    public func remaining() async throws -> [Item] {
        try await candidates().filter { $0.name.hasPrefix(scope.namePrefix) }.map { item in
            var left = item
            left.outcome = .remaining
            return left
        }.sorted { ($0.kind.rawValue, $0.id) < ($1.kind.rawValue, $1.id) }
    }

    // MARK: - Steps

    /// Runs `operation` for each item with the client's concurrency, then waits for every action
    /// it returned in batches; maps each item to its outcome (successful items: deleted).
    private func runStep(
        _ batch: [(offset: Int, element: Item)], operation: @escaping @Sendable (Item) async throws -> HCloudAction?
    ) async throws -> [(Int, Item)] {
        guard !batch.isEmpty else { return [] }
        enum Started: Sendable {
            case action(HCloudAction)
            case done
            case gone
            case failed(String)
        }
        let started: [(Int, Item, Started)] = try await withThrowingTaskGroup(of: (Int, Item, Started).self) { group in
            var out: [(Int, Item, Started)] = []
            var iterator = batch.makeIterator()
            func add(_ entry: (offset: Int, element: Item)) {
                group.addTask {
                    do {
                        if let action = try await operation(entry.element) { return (entry.offset, entry.element, .action(action)) }
                        return (entry.offset, entry.element, .done)
                    } catch let error as HCloudError {
                        switch error.kind {
                        case .notFound: return (entry.offset, entry.element, .gone)
                        case .unreachable, .unauthorized, .missingToken, .configuration: throw error
                        default: return (entry.offset, entry.element, .failed(error.message))
                        }
                    }
                }
            }
            for _ in 0..<client.configuration.concurrency {
                guard let next = iterator.next() else { break }
                add(next)
            }
            while let result = try await group.next() {
                out.append(result)
                if let next = iterator.next() { add(next) }
            }
            return out
        }
        let actionIDs = started.compactMap { entry -> Int? in
            if case .action(let action) = entry.2, action.isRunning { return action.id }
            return nil
        }
        var finished: [Int: HCloudAction] = [:]
        var pollFailure: String?
        if !actionIDs.isEmpty {
            do {
                for action in try await client.waitForActions(actionIDs) { finished[action.id] = action }
            } catch let error as HCloudError where error.kind == .deadline || error.kind == .server || error.kind == .rateLimited {
                pollFailure = error.message
            }
        }
        return started.map { index, item, state in
            var outcome = item
            switch state {
            case .done:
                outcome.outcome = .deleted
            case .gone:
                outcome.outcome = .alreadyGone
            case .failed(let why):
                outcome.outcome = .failed
                outcome.detail = why
            case .action(let action):
                let final = action.isRunning ? finished[action.id] : action
                if let final, final.succeeded {
                    outcome.outcome = .deleted
                } else {
                    outcome.outcome = .failed
                    outcome.detail =
                        final.map { "action \($0.command) \($0.id) ended in \($0.status): \($0.error?.message ?? "no error message")" }
                        ?? pollFailure ?? "action \(action.id) did not finish"
                }
            }
            return (index, outcome)
        }
    }

    /// Every resource of the scope's kinds matching any selector (deduplicated by kind and id).
    private func candidates() async throws -> [Item] {
        let client = client
        return try await withThrowingTaskGroup(of: [Item].self) { group in
            for kind in scope.kinds {
                for selector in scope.labelSelectors {
                    group.addTask { try await Self.list(kind, selector: selector, client: client) }
                }
            }
            var seen = Set<String>()
            var all: [Item] = []
            while let items = try await group.next() {
                for item in items where seen.insert("\(item.kind.rawValue)/\(item.id)").inserted { all.append(item) }
            }
            return all
        }
    }

    private static func list(_ kind: HCloudKind, selector: String, client: HCloudClient) async throws -> [Item] {
        func items<R: HCloudNamedResource>(_ type: R.Type) async throws -> [Item] {
            try await client.list(type, labelSelector: selector).map {
                Item(kind: kind, id: $0.id, name: $0.name, labels: $0.labels, outcome: .planned)
            }
        }
        switch kind {
        case .server: return try await items(HCloudServer.self)
        case .sshKey: return try await items(HCloudSSHKey.self)
        case .loadBalancer: return try await items(HCloudLoadBalancer.self)
        case .network: return try await items(HCloudNetwork.self)
        case .firewall: return try await items(HCloudFirewall.self)
        case .placementGroup: return try await items(HCloudPlacementGroup.self)
        case .volume:
            return try await client.list(HCloudVolume.self, labelSelector: selector).map {
                Item(kind: .volume, id: $0.id, name: $0.name, labels: $0.labels, outcome: .planned, attachedTo: $0.server)
            }
        case .image:
            // Snapshots are kept on purpose (the matrix needs them); never reaped.
            return []
        }
    }
}
