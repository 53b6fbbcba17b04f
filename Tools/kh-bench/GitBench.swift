// git: a worktree detached at a tag with KhGit (libgit2) against the git CLI.
import Foundation
import KhCore
import KhGit
import KhProcess

/// The fixture: 2,000 files in 280 folders, 500 commits (the first adds every file, each
/// later one changes 4), an annotated tag v1.0.0 on commit 400, HEAD on main at commit 500.
private enum GitBenchFixture {
    static let files = 2_000
    static let commits = 500
    static let taggedCommit = 400
    static let environment = [
        "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "kh bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
        "GIT_COMMITTER_NAME": "kh bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    ]

    static func path(_ index: Int) -> String { "dir\(index % 40)/sub\(index % 7)/file\(index).txt" }

    static func content(_ index: Int, revision: Int) -> String {
        (0..<24).map { "file \(index) revision \(revision) line \($0): the quick brown fox jumps over the lazy dog\n" }.joined()
    }

    /// A `git fast-import` stream for the whole history.
    static func stream() -> String {
        var out = ""
        out.reserveCapacity(6 << 20)
        func data(_ text: String) { out += "data \(text.utf8.count)\n\(text)\n" }
        for commit in 1...commits {
            out += "commit refs/heads/main\nmark :\(commit)\ncommitter kh bench <bench@example.invalid> \(1_700_000_000 + commit * 60) +0000\n"
            data("commit \(commit)")
            if commit > 1 { out += "from :\(commit - 1)\n" }
            let changed = commit == 1 ? Array(0..<files) : (0..<4).map { ((commit * 4) + $0 * 499) % files }
            for index in changed {
                out += "M 100644 inline \(path(index))\n"
                data(content(index, revision: commit))
            }
        }
        out += "tag v1.0.0\nfrom :\(taggedCommit)\ntagger kh bench <bench@example.invalid> \(1_700_000_000 + taggedCommit * 60) +0000\n"
        data("release 1.0.0")
        return out
    }

    /// Makes the repository under `root`; returns its path.
    static func build(in root: String) async throws -> String {
        let repository = root + "/repo"
        let runner = LocalRunner()
        let streamPath = root + "/history.fi"
        try Data(stream().utf8).write(to: URL(fileURLWithPath: streamPath))
        let steps: [[String]] = [
            ["git", "-c", "init.defaultBranch=main", "init", "-q", repository],
            ["sh", "-c", "git -C '\(repository)' fast-import --quiet < '\(streamPath)'"],
            ["git", "-C", repository, "checkout", "-q", "-f", "main"],
        ]
        for argv in steps {
            let result = try await runner.run(
                Command(argv[0], Array(argv.dropFirst()), environment: environment), options: RunOptions(timeout: .seconds(300)))
            guard result.succeeded else {
                throw KhBenchError("\(argv.joined(separator: " ")): \(result.summary): \(result.stderrText)")
            }
        }
        try? FileManager.default.removeItem(atPath: streamPath)
        return repository
    }
}

/// Wall and CPU (user + system) seconds of one step.
private struct Cost {
    var wall: Double
    var cpu: Double
    static func + (a: Cost, b: Cost) -> Cost { Cost(wall: a.wall + b.wall, cpu: a.cpu + b.cpu) }
}

/// The cost of a block run in this process (RUSAGE_SELF: kh-bench runs nothing else meanwhile).
private func inProcess(_ body: () throws -> Void) rethrows -> Cost {
    var before = rusage()
    getrusage(RUSAGE_SELF.rawValue, &before)
    let start = ContinuousClock.now
    try body()
    let wall = (ContinuousClock.now - start).seconds
    var after = rusage()
    getrusage(RUSAGE_SELF.rawValue, &after)
    return Cost(wall: wall, cpu: cpuSeconds(after) - cpuSeconds(before))
}

/// The cost of a child process (stdio on /dev/null) and of its children: Linux's wait4
/// counts the child's own waited-for children too (git worktree starts git children).
private func child(_ argv: [String]) throws -> Cost {
    let sample = measure(argv)
    guard sample.status == 0 else { throw KhBenchError("\(argv.joined(separator: " ")) failed (wait status \(sample.status))") }
    return Cost(wall: sample.seconds, cpu: sample.cpuSeconds)
}

struct KhBenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

let gitBenchmark = RuntimeBenchmark(name: "git: worktree at a tag, 2,000 files, 500 commits") {
    let name = "git: worktree at a tag, 2,000 files, 500 commits"
    let passes = 11
    let root = NSTemporaryDirectory() + "/kh-bench-git-\(getpid())"
    defer { try? FileManager.default.removeItem(atPath: root) }
    guard let git = which("git") else {
        return [Row(name: name, kh: "-", baseline: "git not installed", ratio: "-", goal: "<= 1.00x", met: nil)]
    }
    do {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let repository = try await GitBenchFixture.build(in: root)

        // Every add comes before every remove. On ext4 a new file skips over inodes freed in the
        // last minutes (`recently_deleted` in the inode allocator, which reads each one's
        // inode table block): interleaved add/remove passes made each add step over the
        // thousands of inodes the removes before it had just freed, and that kernel scan was
        // >90% of both sides' time (perf), varying with the order rather than the tool.
        // Each step starts with no dirty pages from the one before (sync, untimed).
        /// KhGit: open, add detached at v1.0.0.
        func khAdd(_ path: String) throws -> (name: String, cost: Cost) {
            var name = ""
            sync()
            let cost = try inProcess { name = try Repository(at: repository).addWorktree(at: path, detachedAt: "v1.0.0").name }
            return (name, cost)
        }
        /// KhGit: open, remove.
        func khRemove(_ name: String) throws -> Cost {
            sync()
            return try inProcess { try Repository(at: repository).removeWorktree(named: name) }
        }
        /// git CLI: `git worktree add --detach`.
        func gitAdd(_ path: String) throws -> Cost {
            sync()
            return try child([git, "-C", repository, "worktree", "add", "-q", "--detach", path, "v1.0.0"])
        }
        /// git CLI: `git worktree remove`.
        func gitRemove(_ path: String) throws -> Cost {
            sync()
            return try child([git, "-C", repository, "worktree", "remove", path])
        }

        // Check once that KhGit's worktree is what git makes: same files, clean, detached at the tag.
        let check = root + "/check"
        let checkName = try khAdd(check).name
        let status = try await LocalRunner().run(
            Command("git", ["-C", check, "status", "--porcelain"], environment: GitBenchFixture.environment),
            options: RunOptions(timeout: .seconds(60)))
        let listed = try FileManager.default.subpathsOfDirectory(atPath: check).filter { $0.hasSuffix(".txt") }.count
        guard status.succeeded, status.stdout.isEmpty, listed == GitBenchFixture.files else {
            throw KhBenchError("KhGit worktree differs from the tag: \(listed) files, status \(status.stdoutText.prefix(200))")
        }
        let warmGit = root + "/git-warm"
        _ = try gitAdd(warmGit)

        /// Both sides' step of pass `index`, KhGit first in even passes and git first in odd
        /// ones, so drift in machine load falls on both alike.
        func alternated<K, G>(_ index: Int, kh: () throws -> K, git: () throws -> G) rethrows -> (K, G) {
            if index % 2 == 0 {
                let k = try kh()
                return (k, try git())
            }
            let g = try git()
            return (try kh(), g)
        }
        var adds: [(kh: (name: String, cost: Cost), git: Cost)] = []
        for index in 0..<passes {
            adds.append(try alternated(index, kh: { try khAdd(root + "/kh-\(index)") }, git: { try gitAdd(root + "/git-\(index)") }))
        }
        _ = try khRemove(checkName)
        _ = try gitRemove(warmGit)
        var kh: [(add: Cost, remove: Cost)] = []
        var base: [(add: Cost, remove: Cost)] = []
        for (index, add) in adds.enumerated() {
            let (khCost, gitCost) = try alternated(index, kh: { try khRemove(add.kh.name) }, git: { try gitRemove(root + "/git-\(index)") })
            kh.append((add.kh.cost, khCost))
            base.append((add.git, gitCost))
        }
        func row(_ label: String, _ pick: ((add: Cost, remove: Cost)) -> Cost, goal: Bool) -> Row {
            let k = median(kh.map { pick($0).wall })
            let g = median(base.map { pick($0).wall })
            let kCPU = median(kh.map { pick($0).cpu })
            let gCPU = median(base.map { pick($0).cpu })
            return Row(
                name: label, kh: "\(ms(k)) (cpu \(ms(kCPU)))", baseline: "git \(ms(g)) (cpu \(ms(gCPU)))", ratio: String(format: "%.2fx", k / g),
                goal: goal ? "<= 1.00x" : "report", met: goal ? k <= g : nil)
        }
        return [
            row(name + " (add + remove, median of \(passes))", { $0.add + $0.remove }, goal: true),
            row("  of which add (worktree add --detach)", \.add, goal: false),
            row("  of which remove (worktree remove)", \.remove, goal: false),
        ]
    } catch {
        return [Row(name: name, kh: "failed", baseline: "\(error)", ratio: "-", goal: "<= 1.00x", met: false)]
    }
}
