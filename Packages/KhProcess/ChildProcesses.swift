import Foundation
import KhCore
import Synchronization

/// Every process group kh has started and not yet reaped, so that SIGINT or
/// SIGTERM to kh can kill them all: TERM to each group, a grace period while their
/// runners drain output and write their logs, then KILL.
public final class ChildProcesses: Sendable {
    /// The process-wide registry.
    public static let shared = ChildProcesses()

    /// How long groups get between TERM and KILL when kh is interrupted.
    public static let interruptGrace: Duration = .seconds(3)

    struct Entry: @unchecked Sendable {
        let pgid: pid_t
        let done: DispatchSemaphore
    }

    private let state = Mutex<(next: UInt64, entries: [UInt64: Entry], hooked: Bool)>((1, [:], false))

    /// The process groups alive now.
    public var activeGroups: [pid_t] { state.withLock { $0.entries.values.map(\.pgid).sorted() } }

    func add(pgid: pid_t, done: DispatchSemaphore) -> UInt64 {
        let (token, hook) = state.withLock { state -> (UInt64, Bool) in
            let token = state.next
            state.next += 1
            state.entries[token] = Entry(pgid: pgid, done: done)
            defer { state.hooked = true }
            return (token, !state.hooked)
        }
        if hook {
            Interrupts.register(stage: .killChildren) { _ in ChildProcesses.shared.killAll(grace: ChildProcesses.interruptGrace) }
        }
        return token
    }

    func remove(_ token: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: token) }
    }

    /// TERM to every group, wait up to `grace` for each runner to finish, then KILL
    /// the rest and wait briefly for their logs to be written.
    public func killAll(grace: Duration) {
        let entries = state.withLock { Array($0.entries.values) }
        guard !entries.isEmpty else { return }
        for entry in entries { _ = kill(-entry.pgid, SIGTERM) }
        let deadline = DispatchTime.now() + .milliseconds(Int(grace.seconds * 1000))
        var stubborn: [Entry] = []
        for entry in entries where entry.done.wait(timeout: deadline) == .timedOut { stubborn.append(entry) }
        for entry in stubborn { _ = kill(-entry.pgid, SIGKILL) }
        for entry in stubborn { _ = entry.done.wait(timeout: .now() + .seconds(1)) }
    }
}
