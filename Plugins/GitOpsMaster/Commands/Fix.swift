import ArgumentParser
import Foundation
import KhCore
import KhPluginAPI

extension Gitops {
    /// `kh gitops fix PATTERN [STAGE]`: a row of the D6 table.
    struct Fix: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fix",
            abstract: "Apply a D6 fix pattern; --dry-run shows the exact commands and risk; HIGH risk needs --yes.",
            discussion: "Patterns: " + FixPattern.allCases.map { "\($0.rawValue) (\($0.risk.rawValue): \($0.whenToUse))" }.joined(separator: "; "))

        @OptionGroup var global: GlobalOptions
        @OptionGroup var mutation: MutationOptions
        @Argument(help: ArgumentHelp("The D6 pattern.", valueName: "pattern")) var pattern: FixPattern
        @Argument(help: "The stage it applies to.") var stage: String?
        @Option(name: .long, help: "The Argo CD app (clear-operation, crd-ordering).") var app: String?
        @Option(name: .long, help: "Only the promotions of this freight (stale-promotions).") var freight: String?
        @Option(name: .long, help: "The warehouse (refresh-warehouse; default: warehouse_name).") var warehouse: String?
        @Option(name: .long, help: "RESOURCE[.GROUP] the verification role needs (verification-rbac; repeatable).") var resource: [String] = []
        @Option(name: .customLong("app-type"), help: "simple, medium, heavy or very-heavy: the retry values (retry-config).") var appType: AppType?

        func validate() throws {
            if pattern.needsStage && stage == nil && !(pattern == .stalePromotions && freight != nil) {
                throw ValidationError("\(pattern.rawValue) needs a STAGE")
            }
            if [.clearOperation].contains(pattern) && app == nil { throw ValidationError("\(pattern.rawValue) needs --app") }
            if pattern == .verificationRBAC && resource.isEmpty {
                throw ValidationError("verification-rbac needs --resource RESOURCE[.GROUP] (from the \"forbidden\" line of the job log)")
            }
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            let cluster = try await runtime.cluster()
            var parameters = FixParameters(stage: stage, warehouse: warehouse, app: app, freight: freight, now: context.clock.now())
            parameters.rbacResources = resource.map(FixPlanner.parseResource)
            parameters.appType = appType
            let plan = try await FixRunner.prepare(pattern, parameters, cluster: cluster)
            let c = context.console
            if c.format == .text {
                c.result("Fix: \(plan.problem) (\(plan.pattern.rawValue))")
                c.result("When to use: \(plan.whenToUse)")
                c.result("Risk Level: \(plan.risk.rawValue)")
                if let manual = plan.manual { c.result("Manual change: \(manual)") }
                for (i, command) in plan.commands.enumerated() {
                    c.result("  \(i + 1). \(command.display)")
                    if let manifest = command.manifest {
                        c.write(manifest.split(separator: "\n").map { "       \($0)" }.joined(separator: "\n") + "\n", to: .stdout)
                    }
                }
                c.result("Verify: \(plan.verification.display)")
                for note in plan.notes { c.result("Note: \(note)") }
            }
            if mutation.dryRun || plan.commands.isEmpty {
                if c.format == .json { try c.json(plan) }
                if plan.commands.isEmpty && !mutation.dryRun {
                    c.result("Nothing kh can run: make the manual change, then run the verification command.")
                }
                return
            }
            if plan.risk == .high && !mutation.yes {
                throw KhError.usage(
                    "\(plan.pattern.rawValue) is HIGH risk (\(Risk.legend[2])): re-run with --yes to apply it", hint: "--dry-run shows the commands")
            }
            _ = try mutation.authorize("apply fix \(plan.pattern.rawValue) (\(plan.risk.rawValue) risk)", console: c)
            let code = try await context.withEvidence { run in
                let result = try await FixRunner.apply(plan, cluster: cluster)
                for (i, line) in result.ran.enumerated() {
                    _ = try run.record(EvidenceRecord(kind: "step", name: "fix-\(i + 1)", status: .pass, message: line))
                }
                _ = try run.record(
                    EvidenceRecord(
                        kind: "check", name: "verification", status: result.verified ? .pass : .fail,
                        message: "\(plan.verification.display): \(result.verificationOutput)"))
                if c.format == .json {
                    try c.json(result)
                } else {
                    for line in result.ran { c.result("ran: \(line)") }
                    c.result("verification: \(plan.verification.display)")
                    c.result(
                        result.verificationOutput.isEmpty ? "(no output)" : result.verificationOutput.trimmingCharacters(in: .whitespacesAndNewlines))
                    c.result(result.verified ? "Fix verified." : "Fix NOT verified yet.")
                }
                return (result.verified ? .success : .checkFailed, result.verified ? "verified" : "not verified")
            }
            try Runtime.exit(code)
        }
    }
}
