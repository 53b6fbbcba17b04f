import Foundation
import KhCore
import KhGit
import KhPluginAPI
import KhProcess

extension StabilizeWorkflow {
    // MARK: gates

    /// Syncs the module (checkout the branch, fetch, fast-forward only), checks format
    /// and validity, and runs `terraform init -upgrade` in the harness.
    public func gates(run: EvidenceRun, fix: Bool) async throws -> [StepOutcome] {
        var steps: [StepOutcome] = []
        func record(_ step: StepOutcome) throws {
            steps.append(step)
            console.progress("gates: \(step.status.label) \(step.name): \(step.message)")
            try run.record(EvidenceRecord(kind: "gate", name: step.name, status: step.status, message: step.message, log: step.log))
        }
        try record(syncModule())
        let tf = terraform
        let timeout = config.timeouts.gates.duration
        let fmtArgs = fix ? ["fmt", "-recursive", "-no-color"] : ["fmt", "-check", "-recursive", "-no-color"]
        let fmt = try await tf.run(paths.module, fmtArgs, timeout: timeout, log: run.logPath(for: "gate-fmt"))
        let files = fmt.stdoutText.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let fmtMessage: String
        if fix {
            fmtMessage = fmt.succeeded ? (files.isEmpty ? "already formatted" : "rewrote \(files.joined(separator: ", "))") : fmt.summary
        } else {
            fmtMessage =
                fmt.succeeded ? "formatted" : files.isEmpty ? fmt.summary : "not formatted: \(files.joined(separator: ", ")) (`--fix` rewrites)"
        }
        try record(
            StepOutcome(name: "terraform fmt", status: fmt.succeeded ? .pass : .fail, message: fmtMessage, log: run.relativeLogPath(for: "gate-fmt")))

        if !fs.isDirectory(paths.module + "/.terraform") {
            let initResult = try await tf.run(
                paths.module, ["init", "-backend=false", "-input=false", "-no-color"], timeout: config.timeouts.initialize.duration,
                log: run.logPath(for: "gate-validate"))
            if !initResult.succeeded {
                try record(
                    StepOutcome(
                        name: "terraform validate", status: .fail, message: "init -backend=false " + initResult.summary,
                        log: run.relativeLogPath(for: "gate-validate")))
            }
        }
        if steps.last?.name != "terraform validate" {
            let validate = try await tf.run(paths.module, ["validate", "-no-color"], timeout: timeout, log: run.logPath(for: "gate-validate"))
            try record(
                StepOutcome(
                    name: "terraform validate", status: validate.succeeded ? .pass : .fail,
                    message: validate.succeeded ? "valid" : validate.summary + (Terraform.firstError(validate).map { ": \($0)" } ?? ""),
                    log: run.relativeLogPath(for: "gate-validate")))
        }
        let harnessHasTerraform = ((try? fs.list(paths.harness)) ?? []).contains { $0.hasSuffix(".tf") }
        if config.harnessInit && harnessHasTerraform {
            let result = try await tf.initialize(
                paths.harness, upgrade: true, timeout: config.timeouts.initialize.duration, log: run.logPath(for: "gate-harness-init"))
            try record(
                StepOutcome(
                    name: "terraform init -upgrade (harness)", status: result.succeeded ? .pass : .fail,
                    message: result.succeeded ? "initialised" : result.summary + (Terraform.firstError(result).map { ": \($0)" } ?? ""),
                    log: run.relativeLogPath(for: "gate-harness-init")))
        } else {
            try record(
                StepOutcome(
                    name: "terraform init -upgrade (harness)", status: .skip,
                    message: config.harnessInit ? "no *.tf in \(paths.harness)" : "stabilize.harness_init is false"))
        }
        return steps
    }

    /// Checkout of the configured branch, then fetch + fast-forward only.
    func syncModule() -> StepOutcome {
        let name = "git sync \(config.git.branch)"
        do {
            let repository = try Repository(at: paths.module, search: false)
            let moved = try repository.checkoutBranch(config.git.branch, remote: config.git.remote)
            var message = moved ? "checked out \(config.git.branch)" : "on \(config.git.branch)"
            if config.git.fetch {
                let result = try repository.fetchAndFastForward(GitFetchOptions(remote: config.git.remote, timeout: config.git.timeout.duration))
                message +=
                    result.isAlreadyUpToDate
                    ? "; up to date with \(result.upstream)" : "; fast-forwarded \(result.from.short)..\(result.to.short) from \(result.upstream)"
            } else {
                message += "; fetch off (stabilize.git.fetch)"
            }
            let head = try repository.head()
            return StepOutcome(name: name, status: .pass, message: message + " at \(head.commit?.short ?? "?")")
        } catch let error as GitError {
            return StepOutcome(name: name, status: .fail, message: error.message + (error.hint.map { " (\($0))" } ?? ""))
        } catch {
            return StepOutcome(name: name, status: .fail, message: "\(error)")
        }
    }

    // MARK: upgrade

    /// The upgrade path test for each distro: latest tag → detached worktree → copy the
    /// baseline → source at the worktree → init, apply → source back → init -upgrade →
    /// plan (counted; server destroys flagged) → apply → destroy → worktree removed.
    public func upgrade(run: EvidenceRun, distros: [String]) async throws -> [UpgradeResult] {
        let tag: GitVersionTag
        do {
            let repository = try Repository(at: paths.module, search: false)
            guard let latest = try repository.latestVersionTag(matching: config.git.tagPattern, includePrereleases: false) else {
                throw KhError.blocked("no tag matching \(config.git.tagPattern) with a semantic version in \(paths.module)")
            }
            tag = latest
        }
        let version = tag.name.hasPrefix("v") ? String(tag.name.dropFirst()) : tag.name
        let tree = paths.worktrees + "/kube-hetzner-\(tag.name)"
        let worktreeName = "kh-upgrade-\(EvidenceRun.safeName(tag.name))"
        try removeWorktree(named: worktreeName, path: tree)
        try fs.createDirectory(paths.worktrees)
        do {
            let repository = try Repository(at: paths.module, search: false)
            try repository.addWorktree(at: tree, detachedAt: tag.name, name: worktreeName)
        }
        console.progress("upgrade: \(tag.name) checked out detached at \(tree)")
        defer { try? removeWorktree(named: worktreeName, path: tree) }
        var results: [UpgradeResult] = []
        for distro in distros {
            results.append(await upgradeOne(run: run, distro: distro, tag: tag.name, version: version, tree: tree))
        }
        return results
    }

    func removeWorktree(named name: String, path: String) throws {
        let repository = try Repository(at: paths.module, search: false)
        if (try? repository.worktree(named: name)) != nil {
            try repository.removeWorktree(named: name, force: true)
        }
        _ = try? repository.pruneWorktrees()
    }

    func upgradeOne(run: EvidenceRun, distro: String, tag: String, version: String, tree: String) async -> UpgradeResult {
        let name = "upgrade-\(distro)-\(version)"
        var result = UpgradeResult(distro: distro, tag: tag, scenario: name, status: .fail, steps: [], message: "")
        guard let baseline = config.upgrade.baselines[distro] else {
            result.status = .skip
            result.message = "no baseline scenario for \(distro) in stabilize.upgrade.baselines"
            return result
        }
        let directory = paths.scenario(name)
        let main = directory + "/" + config.upgrade.mainFile
        let tf = terraform
        let log = run.logPath(for: name)
        let relative = run.relativeLogPath(for: name)
        var applied = false
        func step(_ label: String, _ body: () async throws -> (Bool, String)) async -> Bool {
            let ok: Bool
            let message: String
            do {
                (ok, message) = try await body()
            } catch {
                (ok, message) = (false, "\(error)")
            }
            let outcome = StepOutcome(name: label, status: ok ? .pass : .fail, message: message, log: relative)
            result.steps.append(outcome)
            console.progress("upgrade \(distro): \(outcome.status.label) \(label): \(message)")
            _ = try? run.record(EvidenceRecord(kind: "upgrade", name: "\(name) \(label)", status: outcome.status, message: message, log: relative))
            if !ok && result.message.isEmpty { result.message = "\(label): \(message)" }
            return ok
        }
        func tfStep(_ arguments: [String], timeout: KhDuration, idle: Bool = false) async throws -> (Bool, String) {
            let r = try await tf.run(
                directory, arguments + ["-no-color"], timeout: timeout.duration, idleTimeout: idle ? config.timeouts.idle.duration : nil, log: log)
            return (r.succeeded, r.summary + (Terraform.firstError(r).map { ": \($0)" } ?? ""))
        }
        let sourceModule = paths.module
        var ok =
            await step("copy \(baseline) to \(name)") {
                try await destroyLeftover(directory)
                try copyScenario(from: paths.scenario(baseline), to: directory)
                return (true, directory)
            }
        if ok {
            ok = await step("module source → \(tree)") {
                try pointModuleSource(in: main, from: sourceModule, to: tree)
                return (true, "source = \"\(tree)\"")
            }
        }
        if ok {
            ok = await step("init -upgrade (tag)") { try await tfStep(["init", "-upgrade", "-input=false"], timeout: config.timeouts.initialize) }
        }
        if ok {
            applied = true
            ok = await step("apply (tag \(tag))") {
                try await tfStep(["apply", "-auto-approve", "-input=false"], timeout: config.timeouts.apply, idle: true)
            }
        }
        if ok {
            ok = await step("module source → working tree") {
                try pointModuleSource(in: main, from: tree, to: sourceModule)
                return (true, "source = \"\(sourceModule)\"")
            }
        }
        if ok {
            ok = await step("init -upgrade (working tree)") {
                try await tfStep(["init", "-upgrade", "-input=false"], timeout: config.timeouts.initialize)
            }
        }
        if ok {
            ok = await step("plan") {
                let plan = try await tf.run(
                    directory, ["plan", "-input=false", "-no-color", "-out=kh-upgrade.tfplan"], timeout: config.timeouts.plan.duration, log: log)
                guard plan.succeeded else { return (false, plan.summary + (Terraform.firstError(plan).map { ": \($0)" } ?? "")) }
                let show = try await tf.run(
                    directory, ["show", "-json", "kh-upgrade.tfplan"], timeout: config.timeouts.plan.duration, log: nil, captureLimit: 64 << 20)
                guard show.succeeded else { return (false, "show -json " + show.summary) }
                let counts = try PlanCounts.parse(show.stdout, serverTypes: config.upgrade.serverResourceTypes)
                result.adds = counts.adds
                result.changes = counts.changes
                result.destroys = counts.destroys
                result.serverDestroys = counts.serverDestroys
                let flagged = counts.serverDestroys.isEmpty ? "" : "; FLAGGED: destroys servers \(counts.serverDestroys.joined(separator: ", "))"
                return (true, "\(counts.adds) to add, \(counts.changes) to change, \(counts.destroys) to destroy\(flagged)")
            }
        }
        if ok {
            ok = await step("apply (working tree)") {
                try await tfStep(["apply", "-input=false", "-auto-approve", "kh-upgrade.tfplan"], timeout: config.timeouts.apply, idle: true)
            }
        }
        if applied {
            let destroyed = await step("destroy") {
                try await tfStep(["destroy", "-auto-approve", "-input=false"], timeout: config.timeouts.destroy)
            }
            ok = ok && destroyed
        }
        if ok {
            result.status = result.serverDestroys.isEmpty ? .pass : .warn
            result.message =
                result.serverDestroys.isEmpty
                ? "tag \(tag) → working tree: plan \(result.adds)/\(result.changes)/\(result.destroys) (add/change/destroy), applied and destroyed"
                : "upgrade applied but the plan destroys servers: \(result.serverDestroys.joined(separator: ", ")) (migration notes needed)"
        }
        return result
    }

    /// Destroys and removes a leftover upgrade scenario folder of an earlier run.
    func destroyLeftover(_ directory: String) async throws {
        guard fs.exists(directory) else { return }
        if fs.exists(directory + "/terraform.tfstate") {
            _ = try await terraform.destroy(directory, timeout: config.timeouts.destroy.duration, log: nil)
        }
        try fs.remove(directory)
    }

    /// Copies a scenario folder without its state, plan files and `.terraform`.
    func copyScenario(from source: String, to destination: String) throws {
        try fs.createDirectory(destination)
        for entry in try fs.list(source) {
            if entry == ".terraform" || entry.hasPrefix("terraform.tfstate") || entry == ".terraform.tfstate.lock.info" || entry.hasSuffix(".tfplan")
            {
                continue
            }
            let path = source + "/" + entry
            if fs.isDirectory(path) {
                try copyScenario(from: path, to: destination + "/" + entry)
            } else {
                try fs.writeAtomically(try fs.read(path), to: destination + "/" + entry)
            }
        }
    }

    /// Rewrites `source = "FROM"` to `source = "TO"` in the scenario's main file.
    func pointModuleSource(in file: String, from: String, to: String) throws {
        let text = String(decoding: try fs.read(file), as: UTF8.self)
        let pattern = #"(source\s*=\s*")"# + NSRegularExpression.escapedPattern(for: from) + #"/?(")"#
        let regex = try NSRegularExpression(pattern: pattern)
        let range = NSRange(text.startIndex..., in: text)
        guard regex.firstMatch(in: text, range: range) != nil else {
            throw KhError.usage(
                "\(file): no `source = \"\(from)\"` line to point at \(to)", hint: "the scenario must use the module by its local path")
        }
        let replaced = regex.stringByReplacingMatches(
            in: text, range: range, withTemplate: "$1" + NSRegularExpression.escapedTemplate(for: to) + "$2")
        try fs.writeAtomically(Data(replaced.utf8), to: file)
    }
}

/// What a saved plan would do, from `terraform show -json`.
public struct PlanCounts: Sendable, Equatable {
    public var adds = 0
    public var changes = 0
    public var destroys = 0
    /// Addresses of server resources the plan deletes (or replaces).
    public var serverDestroys: [String] = []

    struct Document: Decodable {
        struct Change: Decodable { var actions: [String] }
        struct ResourceChange: Decodable {
            var address: String
            var type: String
            var change: Change
        }
        var resourceChanges: [ResourceChange]?
        enum CodingKeys: String, CodingKey { case resourceChanges = "resource_changes" }
    }

    /// Counts as terraform's plan line does: a replace is one add and one destroy.
    public static func parse(_ data: Data, serverTypes: [String]) throws -> PlanCounts {
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
        } catch {
            throw KhError.external("terraform show -json: unexpected output (\(error))")
        }
        var counts = PlanCounts()
        for change in document.resourceChanges ?? [] {
            let actions = change.change.actions
            if actions.contains("create") { counts.adds += 1 }
            if actions.contains("update") { counts.changes += 1 }
            if actions.contains("delete") {
                counts.destroys += 1
                if serverTypes.contains(change.type) { counts.serverDestroys.append(change.address) }
            }
        }
        return counts
    }
}
