import Foundation
import KhCore
import KhHCloud

/// The live Hetzner inventory over KhHCloud: `HCloudClient` for servers and snapshots
/// (label selectors, pagination, rate-limit budget, typed errors) and `HCloudReaper` for
/// the reap (label selectors AND name prefix, dependency order, batched action polling).
struct LiveInventory: HetznerInventory {
    let client: HCloudClient

    static func make(endpoint: String, token: String, timeout: Duration) throws -> any HetznerInventory {
        guard let url = URL(string: endpoint) else { throw KhError.usage("stabilize.hcloud.endpoint: not a URL: \(endpoint)") }
        let configuration = HCloudConfiguration(endpoint: url, token: Secret(name: "HCLOUD_TOKEN", value: token), requestTimeout: timeout)
        return LiveInventory(client: try HCloudClient(configuration: configuration))
    }

    func checkAccess() async throws {
        _ = try await client.servers(name: "kh-access-check")
    }

    func servers(labelSelector: String) async throws -> [HetznerServer] {
        try await client.servers(labelSelector: labelSelector).map {
            HetznerServer(id: Int64($0.id), name: $0.name, labels: $0.labels, status: $0.status, publicIPv4: $0.publicNet?.ipv4?.ip)
        }
    }

    func snapshots(labelSelector: String, architecture: String?) async throws -> [HetznerImage] {
        try await client.images(type: "snapshot", architecture: architecture, labelSelector: labelSelector).map {
            HetznerImage(id: Int64($0.id), description: $0.description ?? $0.name ?? "", labels: $0.labels, architecture: $0.architecture)
        }
    }

    func reaper(_ selectors: [String], _ prefix: String) throws -> HCloudReaper {
        try HCloudReaper(client: client, scope: HCloudReaper.Scope(labelSelectors: selectors, namePrefix: prefix))
    }

    func planReap(labelSelectors: [String], namePrefix: String) async throws -> ReapPlan {
        let plan = try await reaper(labelSelectors, namePrefix).plan()
        return ReapPlan(
            labelSelectors: labelSelectors, namePrefix: namePrefix,
            resources: plan.items.map { HetznerResource(kind: $0.kind.rawValue, id: Int64($0.id), name: $0.name) })
    }

    /// Deletes what the given plan lists (a fresh plan of the same scope, limited to it).
    func executeReap(_ plan: ReapPlan) async throws -> ReapOutcome {
        let reaper = try reaper(plan.labelSelectors, plan.namePrefix)
        var fresh = try await reaper.plan()
        let wanted = Set(plan.resources.map { "\($0.kind)/\($0.id)" })
        fresh.items = fresh.items.filter { wanted.contains("\($0.kind.rawValue)/\($0.id)") }
        let report = try await reaper.execute(fresh)
        let deleted = report.items.filter { $0.outcome == .deleted || $0.outcome == .alreadyGone }.map {
            HetznerResource(kind: $0.kind.rawValue, id: Int64($0.id), name: $0.name)
        }
        let failed = report.failures.map { "delete \($0.kind.rawValue) \($0.id) \($0.name): \($0.detail ?? "failed")" }
        return ReapOutcome(deleted: deleted, failed: failed)
    }
}
