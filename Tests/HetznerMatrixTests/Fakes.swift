import Foundation
import HetznerMatrix
import KhCore
import KhProcess
import Synchronization

/// An in-memory Hetzner inventory: servers, snapshots and other resources with labels.
final class FakeInventory: HetznerInventory {
    struct Resource: Sendable {
        var resource: HetznerResource
        var labels: [String: String]
    }

    let state = Mutex<(servers: [HetznerServer], images: [HetznerImage], others: [Resource], calls: [String], deleted: [HetznerResource])>(
        ([], [], [], [], []))
    let failAccess: String?

    init(servers: [HetznerServer] = [], images: [HetznerImage] = [], others: [Resource] = [], failAccess: String? = nil) {
        state.withLock {
            $0.servers = servers
            $0.images = images
            $0.others = others
        }
        self.failAccess = failAccess
    }

    var calls: [String] { state.withLock { $0.calls } }

    static func matches(_ labels: [String: String], _ selector: String) -> Bool {
        selector.split(separator: ",").allSatisfy { term in
            let parts = term.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { return labels[parts[0]] == parts[1] }
            return labels[parts[0]] != nil
        }
    }

    func checkAccess() async throws {
        state.withLock { $0.calls.append("checkAccess") }
        if let failAccess { throw KhError.external(failAccess) }
    }

    func servers(labelSelector: String) async throws -> [HetznerServer] {
        state.withLock {
            $0.calls.append("servers \(labelSelector)")
            return $0.servers.filter { Self.matches($0.labels, labelSelector) }
        }
    }

    func snapshots(labelSelector: String, architecture: String?) async throws -> [HetznerImage] {
        state.withLock {
            $0.calls.append("snapshots \(labelSelector) \(architecture ?? "-")")
            return $0.images.filter { Self.matches($0.labels, labelSelector) && (architecture == nil || $0.architecture == architecture) }
        }
    }

    func planReap(labelSelectors: [String], namePrefix: String) async throws -> ReapPlan {
        state.withLock { s in
            let order = ["volume", "server", "placement_group", "load_balancer", "firewall", "network", "ssh_key"]
            var found: [HetznerResource] = []
            for server in s.servers where server.name.hasPrefix(namePrefix) && labelSelectors.contains(where: { Self.matches(server.labels, $0) }) {
                found.append(HetznerResource(kind: "server", id: server.id, name: server.name))
            }
            for other in s.others
            where other.resource.name.hasPrefix(namePrefix) && labelSelectors.contains(where: { Self.matches(other.labels, $0) }) {
                found.append(other.resource)
            }
            found.sort { (order.firstIndex(of: $0.kind) ?? 99, $0.id) < (order.firstIndex(of: $1.kind) ?? 99, $1.id) }
            return ReapPlan(labelSelectors: labelSelectors, namePrefix: namePrefix, resources: found)
        }
    }

    func executeReap(_ plan: ReapPlan) async throws -> ReapOutcome {
        state.withLock { s in
            for r in plan.resources {
                s.calls.append("delete \(r.display)")
                s.servers.removeAll { r.kind == "server" && $0.id == r.id }
                s.others.removeAll { $0.resource == r }
                s.deleted.append(r)
            }
            return ReapOutcome(deleted: plan.resources, failed: [])
        }
    }
}

/// A clock that really sleeps but whose `now` is the wall clock: for scheduler tests with short sleeps.
enum Clocks {
    static let live = KhClock.live
}
