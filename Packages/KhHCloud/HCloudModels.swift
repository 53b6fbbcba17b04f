import Foundation

/// A kind of Hetzner Cloud resource kh reads or deletes.
public enum HCloudKind: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
    /// A server (`/servers`).
    case server
    /// An image: system, snapshot, backup or app (`/images`).
    case image
    /// An SSH key (`/ssh_keys`).
    case sshKey = "ssh_key"
    /// A load balancer (`/load_balancers`).
    case loadBalancer = "load_balancer"
    /// A private network (`/networks`).
    case network
    /// A firewall (`/firewalls`).
    case firewall
    /// A block storage volume (`/volumes`).
    case volume
    /// A placement group (`/placement_groups`).
    case placementGroup = "placement_group"

    /// The collection's path segment and list key: `servers`, `ssh_keys`, …
    public var collection: String { rawValue + "s" }

    public var description: String { rawValue }
}

/// A resource the client can list and get: its kind (which names the path and JSON keys),
/// id and labels.
public protocol HCloudResource: Codable, Sendable {
    /// The kind, for paths and JSON keys.
    static var kind: HCloudKind { get }
    /// The resource's id.
    var id: Int { get }
    /// Its labels (empty when none).
    var labels: [String: String] { get }
}

/// A resource that always has a name (every kind but images).
public protocol HCloudNamedResource: HCloudResource {
    /// The resource's name (unique per kind and project).
    var name: String { get }
}

/// A reference to another resource by id (and name when the API gives one).
public struct HCloudReference: Codable, Sendable, Equatable {
    /// The id.
    public var id: Int
    /// The name, when present.
    public var name: String?

    public init(id: Int, name: String? = nil) {
        self.id = id
        self.name = name
    }
}

/// A server, with what kh needs of it.
public struct HCloudServer: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.server

    /// Public addresses.
    public struct PublicNet: Codable, Sendable, Equatable {
        /// An address and its id.
        public struct Address: Codable, Sendable, Equatable {
            /// The address (IPv6: the /64 network).
            public var ip: String
        }
        /// The IPv4 address, if the server has one.
        public var ipv4: Address?
        /// The IPv6 network, if the server has one.
        public var ipv6: Address?
    }

    /// An address in a private network.
    public struct PrivateNet: Codable, Sendable, Equatable {
        /// The network's id.
        public var network: Int
        /// The server's address in it.
        public var ip: String
    }

    /// The server type's name and architecture.
    public struct ServerType: Codable, Sendable, Equatable {
        /// e.g. `cx22`, `cax11`.
        public var name: String
        /// `x86` or `arm`.
        public var architecture: String?
    }

    public var id: Int
    public var name: String
    /// `running`, `initializing`, `starting`, `stopping`, `off`, `deleting`, …
    public var status: String
    /// When it was created.
    public var created: Date?
    public var labels: [String: String]
    /// Public addresses.
    public var publicNet: PublicNet?
    /// Private network addresses.
    public var privateNet: [PrivateNet]
    /// The type.
    public var serverType: ServerType?
    /// The image it was created from (nil when unknown or deleted).
    public var image: HCloudImage?
    /// The placement group, if any.
    public var placementGroup: HCloudReference?
    /// Ids of attached volumes.
    public var volumes: [Int]

    enum CodingKeys: String, CodingKey {
        case id, name, status, created, labels, image, volumes
        case publicNet = "public_net"
        case privateNet = "private_net"
        case serverType = "server_type"
        case placementGroup = "placement_group"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int.self, forKey: .id)
        name = try c.decode(String.self, forKey: .name)
        status = try c.decodeIfPresent(String.self, forKey: .status) ?? "unknown"
        created = try c.decodeIfPresent(Date.self, forKey: .created)
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        publicNet = try c.decodeIfPresent(PublicNet.self, forKey: .publicNet)
        privateNet = try c.decodeIfPresent([PrivateNet].self, forKey: .privateNet) ?? []
        serverType = try c.decodeIfPresent(ServerType.self, forKey: .serverType)
        image = try c.decodeIfPresent(HCloudImage.self, forKey: .image)
        placementGroup = try c.decodeIfPresent(HCloudReference.self, forKey: .placementGroup)
        volumes = try c.decodeIfPresent([Int].self, forKey: .volumes) ?? []
    }

    /// The public IPv4 address, if any.
    public var publicIPv4: String? { publicNet?.ipv4?.ip }
    /// Addresses in private networks, in the API's order.
    public var privateIPs: [String] { privateNet.map(\.ip) }
}

/// An image: a system image, a snapshot, a backup or an app image.
public struct HCloudImage: HCloudResource, Equatable {
    public static let kind = HCloudKind.image

    public var id: Int
    /// `system`, `snapshot`, `backup` or `app`.
    public var type: String
    /// `available`, `creating` or `unavailable`.
    public var status: String
    /// The name (system images; nil for snapshots).
    public var name: String?
    /// The description (what snapshots are known by).
    public var description: String?
    /// `x86` or `arm`.
    public var architecture: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
    /// The server a snapshot or backup was made from.
    public var createdFrom: HCloudReference?

    enum CodingKeys: String, CodingKey {
        case id, type, status, name, description, architecture, labels, created
        case createdFrom = "created_from"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int.self, forKey: .id)
        type = try c.decode(String.self, forKey: .type)
        status = try c.decodeIfPresent(String.self, forKey: .status) ?? "unknown"
        name = try c.decodeIfPresent(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        architecture = try c.decodeIfPresent(String.self, forKey: .architecture) ?? "x86"
        labels = try c.decodeIfPresent([String: String].self, forKey: .labels) ?? [:]
        created = try c.decodeIfPresent(Date.self, forKey: .created)
        createdFrom = try c.decodeIfPresent(HCloudReference.self, forKey: .createdFrom)
    }
}

/// An SSH key.
public struct HCloudSSHKey: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.sshKey
    public var id: Int
    public var name: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
    /// MD5 fingerprint, `aa:bb:…`.
    public var fingerprint: String?
}

/// A load balancer.
public struct HCloudLoadBalancer: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.loadBalancer
    public var id: Int
    public var name: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
}

/// A private network.
public struct HCloudNetwork: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.network
    public var id: Int
    public var name: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
    /// Its range, e.g. `10.0.0.0/16`.
    public var ipRange: String?
    /// Ids of servers attached to it.
    public var servers: [Int]?

    enum CodingKeys: String, CodingKey {
        case id, name, labels, created, servers
        case ipRange = "ip_range"
    }
}

/// A firewall.
public struct HCloudFirewall: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.firewall
    public var id: Int
    public var name: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
}

/// A volume.
public struct HCloudVolume: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.volume
    public var id: Int
    public var name: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
    /// The server it is attached to, if any.
    public var server: Int?
    /// `available` or `creating`.
    public var status: String?
    /// Size in GB.
    public var size: Int?
}

/// A placement group.
public struct HCloudPlacementGroup: HCloudNamedResource, Equatable {
    public static let kind = HCloudKind.placementGroup
    public var id: Int
    public var name: String
    public var labels: [String: String]
    /// When it was created.
    public var created: Date?
    /// Ids of its servers.
    public var servers: [Int]?
}

/// An action: the progress of an asynchronous request.
public struct HCloudAction: Codable, Sendable, Equatable {
    /// A resource the action is about.
    public struct Resource: Codable, Sendable, Equatable {
        public var id: Int
        /// `server`, `volume`, `image`, …
        public var type: String
    }

    /// Why an action failed.
    public struct Failure: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
    }

    public var id: Int
    /// e.g. `delete_server`, `detach_volume`, `create_image`.
    public var command: String
    /// `running`, `success` or `error`.
    public var status: String
    /// Percent done.
    public var progress: Int?
    /// When it started.
    public var started: Date?
    /// When it finished (nil while running).
    public var finished: Date?
    /// The resources it is about.
    public var resources: [Resource]
    /// The failure, when `status` is `error`.
    public var error: Failure?

    /// True while the action runs.
    public var isRunning: Bool { status == "running" }
    /// True when it finished successfully.
    public var succeeded: Bool { status == "success" }
}

/// Pagination as the API reports it in `meta.pagination`.
public struct HCloudPagination: Codable, Sendable, Equatable {
    public var page: Int
    public var perPage: Int
    public var previousPage: Int?
    public var nextPage: Int?
    public var lastPage: Int?
    public var totalEntries: Int?

    enum CodingKeys: String, CodingKey {
        case page
        case perPage = "per_page"
        case previousPage = "previous_page"
        case nextPage = "next_page"
        case lastPage = "last_page"
        case totalEntries = "total_entries"
    }
}

// MARK: - Requests

/// `POST /servers`.
public struct HCloudServerCreate: Encodable, Sendable {
    public var name: String
    public var serverType: String
    public var image: String
    public var location: String?
    public var labels: [String: String]
    /// SSH key ids or names.
    public var sshKeys: [String]?
    public var placementGroup: Int?
    public var networks: [Int]?
    public var volumes: [Int]?
    public var firewalls: [Int]?
    public var userData: String?
    public var startAfterCreate: Bool?

    public init(
        name: String, serverType: String, image: String, location: String? = nil, labels: [String: String] = [:], sshKeys: [String]? = nil,
        placementGroup: Int? = nil, networks: [Int]? = nil, volumes: [Int]? = nil, firewalls: [Int]? = nil, userData: String? = nil,
        startAfterCreate: Bool? = nil
    ) {
        self.name = name
        self.serverType = serverType
        self.image = image
        self.location = location
        self.labels = labels
        self.sshKeys = sshKeys
        self.placementGroup = placementGroup
        self.networks = networks
        self.volumes = volumes
        self.firewalls = firewalls
        self.userData = userData
        self.startAfterCreate = startAfterCreate
    }

    struct FirewallRef: Encodable { var firewall: Int }

    enum CodingKeys: String, CodingKey {
        case name, image, location, labels, networks, volumes, firewalls
        case serverType = "server_type"
        case sshKeys = "ssh_keys"
        case placementGroup = "placement_group"
        case userData = "user_data"
        case startAfterCreate = "start_after_create"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(serverType, forKey: .serverType)
        try c.encode(image, forKey: .image)
        try c.encodeIfPresent(location, forKey: .location)
        try c.encode(labels, forKey: .labels)
        try c.encodeIfPresent(sshKeys, forKey: .sshKeys)
        try c.encodeIfPresent(placementGroup, forKey: .placementGroup)
        try c.encodeIfPresent(networks, forKey: .networks)
        try c.encodeIfPresent(volumes, forKey: .volumes)
        try c.encodeIfPresent(firewalls?.map { FirewallRef(firewall: $0) }, forKey: .firewalls)
        try c.encodeIfPresent(userData, forKey: .userData)
        try c.encodeIfPresent(startAfterCreate, forKey: .startAfterCreate)
    }
}

/// `POST /ssh_keys`.
public struct HCloudSSHKeyCreate: Encodable, Sendable {
    public var name: String
    public var publicKey: String
    public var labels: [String: String]

    public init(name: String, publicKey: String, labels: [String: String] = [:]) {
        self.name = name
        self.publicKey = publicKey
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case name, labels
        case publicKey = "public_key"
    }
}

/// `POST /volumes`.
public struct HCloudVolumeCreate: Encodable, Sendable {
    public var name: String
    /// Size in GB (at least 10).
    public var size: Int
    public var labels: [String: String]
    /// Attach to this server at once.
    public var server: Int?
    /// Where, when not attached at once.
    public var location: String?

    public init(name: String, size: Int, labels: [String: String] = [:], server: Int? = nil, location: String? = nil) {
        self.name = name
        self.size = size
        self.labels = labels
        self.server = server
        self.location = location
    }
}

/// `POST /networks`.
public struct HCloudNetworkCreate: Encodable, Sendable {
    public var name: String
    /// e.g. `10.0.0.0/16`.
    public var ipRange: String
    public var labels: [String: String]

    public init(name: String, ipRange: String, labels: [String: String] = [:]) {
        self.name = name
        self.ipRange = ipRange
        self.labels = labels
    }

    enum CodingKeys: String, CodingKey {
        case name, labels
        case ipRange = "ip_range"
    }
}

/// `POST /firewalls` (no rules: kh only makes them in tests).
public struct HCloudFirewallCreate: Encodable, Sendable {
    public var name: String
    public var labels: [String: String]

    public init(name: String, labels: [String: String] = [:]) {
        self.name = name
        self.labels = labels
    }
}

/// `POST /placement_groups` (type `spread`).
public struct HCloudPlacementGroupCreate: Encodable, Sendable {
    public var name: String
    public var type: String
    public var labels: [String: String]

    public init(name: String, labels: [String: String] = [:]) {
        self.name = name
        self.type = "spread"
        self.labels = labels
    }
}

/// `POST /load_balancers`.
public struct HCloudLoadBalancerCreate: Encodable, Sendable {
    public var name: String
    public var loadBalancerType: String
    public var location: String?
    public var labels: [String: String]
    /// A network to attach it to.
    public var network: Int?

    public init(name: String, loadBalancerType: String = "lb11", location: String? = "fsn1", labels: [String: String] = [:], network: Int? = nil) {
        self.name = name
        self.loadBalancerType = loadBalancerType
        self.location = location
        self.labels = labels
        self.network = network
    }

    enum CodingKeys: String, CodingKey {
        case name, location, labels, network
        case loadBalancerType = "load_balancer_type"
    }
}
