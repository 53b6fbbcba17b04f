import Foundation
import KhCore

/// The live Hetzner inventory. Until KhHCloud (the API client and reaper) is part of
/// this build, making one is refused with a clear, blocking error.
enum LiveInventory {
    static func make(endpoint: String, token: String, timeout: Duration) throws -> any HetznerInventory {
        throw KhError.blocked(
            "this kh build has no Hetzner Cloud client (KhHCloud) yet: cannot reach \(endpoint)",
            hint: "build kh from a tree that includes Packages/KhHCloud")
    }
}
