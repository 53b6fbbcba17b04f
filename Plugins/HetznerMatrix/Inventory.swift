import Foundation
import KhCore

/// A server as the stabilization loop needs it.
public struct HetznerServer: Sendable, Codable, Equatable {
    public var id: Int64
    public var name: String
    public var labels: [String: String]
    public var status: String
    public var publicIPv4: String?

    public init(id: Int64, name: String, labels: [String: String] = [:], status: String = "running", publicIPv4: String? = nil) {
        self.id = id
        self.name = name
        self.labels = labels
        self.status = status
        self.publicIPv4 = publicIPv4
    }
}

/// A snapshot image.
public struct HetznerImage: Sendable, Codable, Equatable {
    public var id: Int64
    public var description: String
    public var labels: [String: String]
    /// `x86` or `arm`.
    public var architecture: String

    public init(id: Int64, description: String, labels: [String: String] = [:], architecture: String) {
        self.id = id
        self.description = description
        self.labels = labels
        self.architecture = architecture
    }
}

/// A resource a reap would delete (or found left over).
public struct HetznerResource: Sendable, Codable, Equatable, Hashable {
    /// `volume`, `server`, `placement_group`, `load_balancer`, `firewall`, `network`, `ssh_key`.
    public var kind: String
    public var id: Int64
    public var name: String

    public init(kind: String, id: Int64, name: String) {
        self.kind = kind
        self.id = id
        self.name = name
    }

    /// `server 42 khv3-s1-control-0`.
    public var display: String { "\(kind) \(id) \(name)" }
}

/// The reaper's plan: resources in deletion order (volumes detached first, then
/// servers, placement groups, load balancers, firewalls, networks, ssh keys).
public struct ReapPlan: Sendable, Codable, Equatable {
    /// The scope the plan was made for.
    public var labelSelectors: [String]
    public var namePrefix: String
    public var resources: [HetznerResource]

    public init(labelSelectors: [String] = [], namePrefix: String = "", resources: [HetznerResource]) {
        self.labelSelectors = labelSelectors
        self.namePrefix = namePrefix
        self.resources = resources
    }
}

/// What a reap did.
public struct ReapOutcome: Sendable, Codable, Equatable {
    public var deleted: [HetznerResource]
    public var failed: [String]
    public init(deleted: [HetznerResource], failed: [String]) {
        self.deleted = deleted
        self.failed = failed
    }
}

/// What the loop needs from the Hetzner Cloud API. The live conformance is over
/// KhHCloud's client and reaper; tests use ``FakeHetznerInventory``-like fakes.
public protocol HetznerInventory: Sendable {
    /// Fails with a clear error when the API cannot be reached or refuses the token.
    func checkAccess() async throws
    /// Servers matching a label selector (`cluster=khv3-s1`).
    func servers(labelSelector: String) async throws -> [HetznerServer]
    /// Snapshot images matching a label selector, of one architecture when given.
    func snapshots(labelSelector: String, architecture: String?) async throws -> [HetznerImage]
    /// Resources matching any selector whose name starts with `namePrefix`, in deletion order.
    func planReap(labelSelectors: [String], namePrefix: String) async throws -> ReapPlan
    /// Deletes a plan's resources in order.
    func executeReap(_ plan: ReapPlan) async throws -> ReapOutcome
}

extension HetznerInventory {
    /// What is still there: the plan a new reap would make.
    public func remaining(labelSelectors: [String], namePrefix: String) async throws -> [HetznerResource] {
        try await planReap(labelSelectors: labelSelectors, namePrefix: namePrefix).resources
    }
}

/// Builds the inventory for a command once the token is known; injectable for tests.
public struct InventoryFactory: Sendable {
    public var make: @Sendable (_ endpoint: String, _ token: String, _ timeout: Duration) throws -> any HetznerInventory
    public init(make: @escaping @Sendable (_ endpoint: String, _ token: String, _ timeout: Duration) throws -> any HetznerInventory) {
        self.make = make
    }
}
