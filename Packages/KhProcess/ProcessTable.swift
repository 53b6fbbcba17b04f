import Foundation

/// Process liveness from /proc (Linux): zombies do not count as alive, because a
/// group whose only members are zombies waiting for their reaper has nothing left
/// to kill.
public enum ProcessTable {
    /// The state letter and process group of a process, from `/proc/<pid>/stat`.
    static func stat(_ pid: pid_t) -> (state: Character, pgrp: pid_t)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = text.lastIndex(of: ")") else {
            return nil
        }
        let fields = text[text.index(close, offsetBy: 2)...].split(separator: " ")
        guard fields.count > 2, let state = fields[0].first, let pgrp = Int32(fields[2]) else { return nil }
        return (state, pgrp)
    }

    /// Whether the process exists and is not a zombie.
    public static func isAlive(_ pid: pid_t) -> Bool {
        guard let (state, _) = stat(pid) else { return false }
        return state != "Z" && state != "X"
    }

    /// Live (non-zombie) members of a process group.
    public static func liveMembers(ofGroup pgid: pid_t) -> [pid_t] {
        guard kill(-pgid, 0) == 0 else { return [] }
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let (state, pgrp) = stat(pid) else { return false }
            return pgrp == pgid && state != "Z" && state != "X"
        }
    }

    /// Whether any live process is left in the group.
    public static func groupIsAlive(_ pgid: pid_t) -> Bool { !liveMembers(ofGroup: pgid).isEmpty }
}
