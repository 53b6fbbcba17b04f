import Foundation
import KhCore
import KhHTTP

/// The live Hetzner inventory: a small adapter over KhHTTP for exactly what the loop
/// reads and deletes (servers and snapshots by label selector, the reap of prefixed
/// leftovers in dependency order). Interim: KhHCloud's `HCloudClient` and
/// `HCloudReaper` replace it once they are part of the build.
struct LiveInventory: HetznerInventory {
    let base: String
    let client: HTTPClient

    static func make(endpoint: String, token: String, timeout: Duration) throws -> any HetznerInventory {
        let client = HTTPClient(
            configuration: HTTPClient.Configuration(
                connectTimeout: .seconds(5), timeout: timeout, authentication: .bearer(token, name: "HCLOUD_TOKEN")))
        return LiveInventory(base: endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint, client: client)
    }

    /// Deletion order: what others depend on goes last.
    static let kinds: [(kind: String, path: String)] = [
        ("volume", "volumes"), ("server", "servers"), ("placement_group", "placement_groups"), ("load_balancer", "load_balancers"),
        ("firewall", "firewalls"), ("network", "networks"), ("ssh_key", "ssh_keys"),
    ]

    struct Item: Decodable {
        struct PublicNet: Decodable {
            struct IPv4: Decodable { var ip: String? }
            var ipv4: IPv4?
        }
        var id: Int64
        var name: String?
        var description: String?
        var labels: [String: String]?
        var status: String?
        var architecture: String?
        var server: Int64?
        var publicNet: PublicNet?
        enum CodingKeys: String, CodingKey {
            case id, name, description, labels, status, architecture, server
            case publicNet = "public_net"
        }
    }

    struct Page: Decodable {
        struct Meta: Decodable {
            struct Pagination: Decodable { var nextPage: Int? }
            var pagination: Pagination?
        }
        var items: [Item]
        var meta: Meta?

        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Key.self)
            var found: [Item] = []
            for key in c.allKeys where key.stringValue != "meta" {
                if let list = try? c.decode([Item].self, forKey: key) { found = list }
            }
            items = found
            meta = try c.decodeIfPresent(Meta.self, forKey: Key(stringValue: "meta"))
        }
    }

    static func query(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
    }

    /// Every page of a list (`per_page` 50), at most 200 pages.
    func list(_ path: String, _ parameters: [(String, String)]) async throws -> [Item] {
        var items: [Item] = []
        var page: Int? = 1
        var pages = 0
        while let current = page, pages < 200 {
            let query = (parameters + [("per_page", "50"), ("page", String(current))]).map { "\($0.0)=\(Self.query($0.1))" }.joined(separator: "&")
            guard let url = URL(string: "\(base)/\(path)?\(query)") else { throw KhError.usage("stabilize.hcloud.endpoint: not a URL: \(base)") }
            let result = try await client.getJSON(url, as: Page.self)
            items += result.items
            page = result.meta?.pagination?.nextPage
            pages += 1
        }
        return items
    }

    func checkAccess() async throws {
        _ = try await list("servers", [("name", "kh-access-check")])
    }

    func servers(labelSelector: String) async throws -> [HetznerServer] {
        try await list("servers", [("label_selector", labelSelector)]).map {
            HetznerServer(id: $0.id, name: $0.name ?? "", labels: $0.labels ?? [:], status: $0.status ?? "", publicIPv4: $0.publicNet?.ipv4?.ip)
        }
    }

    func snapshots(labelSelector: String, architecture: String?) async throws -> [HetznerImage] {
        var parameters = [("type", "snapshot"), ("label_selector", labelSelector)]
        if let architecture { parameters.append(("architecture", architecture)) }
        return try await list("images", parameters).map {
            HetznerImage(id: $0.id, description: $0.description ?? "", labels: $0.labels ?? [:], architecture: $0.architecture ?? "")
        }
    }

    func planReap(labelSelectors: [String], namePrefix: String) async throws -> ReapPlan {
        var resources: [HetznerResource] = []
        for (kind, path) in Self.kinds {
            var seen = Set<Int64>()
            for selector in labelSelectors {
                for item in try await list(path, [("label_selector", selector)]) where (item.name ?? "").hasPrefix(namePrefix) {
                    if seen.insert(item.id).inserted { resources.append(HetznerResource(kind: kind, id: item.id, name: item.name ?? "")) }
                }
            }
        }
        return ReapPlan(resources: resources)
    }

    func executeReap(_ plan: ReapPlan) async throws -> ReapOutcome {
        var deleted: [HetznerResource] = []
        var failed: [String] = []
        for resource in plan.resources {
            guard let path = Self.kinds.first(where: { $0.kind == resource.kind })?.path, let url = URL(string: "\(base)/\(path)/\(resource.id)")
            else { continue }
            do {
                if resource.kind == "volume", let detach = URL(string: "\(base)/volumes/\(resource.id)/actions/detach") {
                    _ = try await client.send(HTTPRequest(.post, detach))
                }
                let response = try await client.send(HTTPRequest(.delete, url))
                if (200..<300).contains(response.status) || response.status == 404 {
                    deleted.append(resource)
                } else {
                    failed.append("delete \(resource.display): HTTP \(response.status) \(String(response.text.prefix(200)))")
                }
            } catch {
                failed.append("delete \(resource.display): \(error)")
            }
        }
        return ReapOutcome(deleted: deleted, failed: failed)
    }
}
