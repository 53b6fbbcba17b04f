import ArgumentParser
import Foundation
import KhCore
import KhHTTP
import KhPluginAPI

extension Gitops {
    /// `kh gitops verify STAGE`: the four levels, stopping at the first failing one; V4 out.
    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify",
            abstract: "Run the 4-level verification matrix of a stage (gitops.verification.STAGE) and print the V4 report.",
            discussion:
                "Levels: 1 infrastructure (pods, CRDs, secrets), 2 service health (endpoints, Prometheus targets), 3 ingress and auth redirect, 4 functional commands. Stops at the first failing level; exit 1 when one fails."
        )

        @OptionGroup var global: GlobalOptions
        @Argument(help: "The stage.") var stage: String
        @Option(name: .long, help: "Run levels 1 through N (1-4, default 4).") var level: Int = 4

        func validate() throws {
            if !(1...4).contains(level) { throw ValidationError("--level: expected 1, 2, 3 or 4, got \(level)") }
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            guard let matrix = runtime.config.verification[stage] else {
                throw KhError.usage(
                    "no verification matrix for stage \(stage)",
                    hint: "add gitops.verification.\(stage) with infrastructure/service_health/ingress_auth/functional checks to the config file")
            }
            let cluster = try await runtime.cluster()
            let code = try await context.withEvidence { run in
                let verifier = Verifier(
                    cluster: cluster, http: Self.httpClient(context: context), runner: cluster.kubectl.runner, clock: context.clock)
                let report = await verifier.verify(stage: stage, matrix: matrix, maxLevel: level)
                for result in report.levels {
                    _ = try run.record(
                        EvidenceRecord(
                            kind: "level", name: "L\(result.level) \(result.title)",
                            status: result.status == .pass ? .pass : result.status == .fail ? .fail : .skip,
                            message: result.checks.map { "[\($0.passed ? "x" : " ")] \($0.text)" }.joined(separator: "; ")))
                }
                if context.console.format == .json {
                    try context.console.json(report)
                } else {
                    context.console.write(Report.verification(report), to: .stdout)
                }
                return (report.overall == .pass ? .success : .checkFailed, report.failedLevel.map { "FAIL at Level \($0)" } ?? "PASS")
            }
            try Runtime.exit(code)
        }

        /// The HTTP client for levels 2 and 3: no retries, redirects not followed, short deadlines.
        static func httpClient(context: CommandContext) -> HTTPClient {
            HTTPClient(
                configuration: HTTPClient.Configuration(connectTimeout: .seconds(5), timeout: .seconds(15), retry: .none), clock: context.clock,
                redactor: context.redactor)
        }
    }
}
