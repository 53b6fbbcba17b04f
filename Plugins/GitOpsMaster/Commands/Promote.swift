import ArgumentParser
import Foundation
import KhCore
import KhHTTP
import KhKube
import KhPluginAPI

extension Gitops {
    /// `kh gitops promote`: P1 pre-checks, a promotion through the Kargo API, P3/P4 with --wait.
    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "promote",
            abstract: "Promote freight to a stage through the Kargo API (never a kubectl-created Promotion), after the P1 checks.",
            discussion: """
                REST (POST /v1beta1/projects/P/stages/S/promotions) on Kargo >= 1.9, the Connect PromoteToStage call on older \
                servers, or the kargo CLI (gitops.kargo_api.protocol: cli). The token is read from $KARGO_API_TOKEN \
                (gitops.kargo_api.token_env). Exit 0 only when the promotion Succeeded and, with --wait, the stage is Verified; \
                3 when a DO-NOT-PROMOTE rule holds; 1 when the promotion failed, errored or the wait ran out; 4 when the API failed.
                """)

        @OptionGroup var global: GlobalOptions
        @OptionGroup var mutation: MutationOptions
        @Option(name: .long, help: "The target stage.") var stage: String
        @Option(name: .long, help: "The freight's name.") var freight: String?
        @Option(name: .long, help: "The freight's alias.") var alias: String?
        @Flag(name: .long, help: "The newest freight available to the stage.") var latest = false
        @Flag(name: .long, help: "Follow the promotion, Argo CD sync and health, and the stage to Verified; then verify.") var wait = false
        @Option(name: .customLong("wait-timeout"), help: "Deadline of --wait (default: gitops.promote.wait_timeout, 20m).") var waitTimeout:
            KhDuration?

        func validate() throws {
            let chosen = [freight != nil, alias != nil, latest].filter { $0 }.count
            if chosen != 1 { throw ValidationError("give exactly one of --freight, --alias or --latest") }
            if stage.isEmpty { throw ValidationError("--stage: expected a stage name") }
            if waitTimeout != nil && !wait { throw ValidationError("--wait-timeout only makes sense with --wait") }
        }

        struct Output: Encodable {
            var prechecks: PrecheckReport
            var channel: PromotionChannel?
            var serverVersion: String?
            var promotion: String?
            var wait: WaitOutcome?
            var verification: VerificationReport?
            var dryRun: Bool
        }

        func run() async throws {
            let runtime = try Runtime(global)
            let context = runtime.context
            let c = context.console
            let cluster = try await runtime.cluster()
            let selector: FreightSelector = freight.map(FreightSelector.name) ?? alias.map(FreightSelector.alias) ?? .latest
            let code = try await context.withEvidence { run in
                let report = try await Promoter.precheck(cluster: cluster, stage: stage, selector: selector)
                for check in report.checks {
                    _ = try run.record(
                        EvidenceRecord(
                            kind: "precheck", name: check.rule, status: check.passed ? .pass : .fail, message: "\(check.command): \(check.detail)"))
                }
                var output = Output(prechecks: report, dryRun: mutation.dryRun)
                if c.format == .text {
                    c.result("Pre-promotion checks (P1) for \(stage):")
                    for check in report.checks { c.result("  [\(check.passed ? "x" : " ")] \(check.rule): \(check.detail)") }
                }
                guard !report.blocked, let freightName = report.freight else {
                    if c.format == .json {
                        try c.json(output)
                    } else {
                        c.result("DO NOT PROMOTE: \(report.checks.filter { !$0.passed }.map(\.detail).joined(separator: "; "))")
                    }
                    return (.blocked, "blocked by a pre-check")
                }
                let api = try makeAPI(runtime: runtime, cluster: cluster)
                if mutation.dryRun {
                    let target = api.baseURL?.absoluteString ?? "(no Kargo API URL)"
                    if c.format == .json {
                        try c.json(output)
                    } else {
                        c.result(
                            "Would promote \(freightName)\(report.alias.map { " (\($0))" } ?? "") to \(stage) in project \(cluster.environment.kargoProject) through \(target) (\(runtime.config.kargoAPI.protocol.rawValue))"
                        )
                    }
                    return (.success, "dry run")
                }
                _ = try mutation.authorize("promote \(freightName) to \(stage)", console: c)
                let (channel, version) = try await api.negotiate()
                output.channel = channel
                output.serverVersion = version
                c.progress("promoting \(freightName) to \(stage) via \(channel.rawValue)\(version.map { " (Kargo \($0))" } ?? "")…")
                let promotion = try await api.promote(
                    project: cluster.environment.kargoProject, stage: stage, freight: freightName, alias: nil, channel: channel)
                output.promotion = promotion.metadata.name
                _ = try run.record(
                    EvidenceRecord(kind: "step", name: "promote", status: .pass, message: "\(channel.rawValue): \(promotion.metadata.name)"))
                guard wait else {
                    if c.format == .json {
                        try c.json(output)
                    } else {
                        c.result("Promotion \(promotion.metadata.name) created (\(channel.rawValue)).")
                    }
                    return (.success, promotion.metadata.name)
                }
                let outcome = try await Promoter.wait(
                    cluster: cluster, promotion: promotion.metadata.name, stage: stage, freight: freightName,
                    timeout: (waitTimeout ?? runtime.config.promote.waitTimeout).duration, interval: runtime.config.promote.pollInterval.duration,
                    clock: context.clock, progress: { c.progress($0) })
                output.wait = outcome
                _ = try run.record(
                    EvidenceRecord(
                        kind: "check", name: "wait", status: outcome.succeeded ? .pass : .fail, message: outcome.failure ?? "Succeeded and Verified",
                        data: try JSONValue(encoding: outcome)))
                var code: KhExitCode = outcome.succeeded ? .success : .checkFailed
                // P4: post-promotion verification.
                if outcome.succeeded, let matrix = runtime.config.verification[stage] {
                    let verifier = Verifier(
                        cluster: cluster, http: Verify.httpClient(context: context), runner: cluster.kubectl.runner, clock: context.clock)
                    let verification = await verifier.verify(stage: stage, matrix: matrix)
                    output.verification = verification
                    _ = try run.record(
                        EvidenceRecord(
                            kind: "check", name: "post-promotion-verification", status: verification.overall == .pass ? .pass : .fail,
                            message: verification.actionRequired))
                    if verification.overall != .pass { code = .checkFailed }
                }
                if c.format == .json {
                    try c.json(output)
                } else {
                    for line in outcome.timeline { c.result("  \(line)") }
                    if let failure = outcome.failure { c.result("Promotion did not complete: \(failure)") }
                    if let verification = output.verification { c.write(Report.verification(verification), to: .stdout) }
                    c.result(code == .success ? "Promotion \(promotion.metadata.name) Succeeded; \(stage) is Verified." : "Promotion NOT complete.")
                }
                return (code, outcome.failure ?? "Succeeded and Verified")
            }
            try Runtime.exit(code)
        }

        func makeAPI(runtime: Runtime, cluster: Cluster) throws -> KargoAPI {
            let config = runtime.config.kargoAPI
            let base = config.url ?? cluster.environment.domain.map { "https://kargo.\($0)" }
            let token = runtime.context.environment[config.tokenEnv].flatMap { $0.isEmpty ? nil : $0 }
            if let token { runtime.context.redactor.register(name: config.tokenEnv, value: token) }
            let transport = CurlTransport(options: CurlTransport.Options(caBundlePath: config.caFile))
            let http = HTTPClient(
                configuration: HTTPClient.Configuration(timeout: config.timeout.duration), transport: transport, clock: runtime.context.clock,
                redactor: runtime.context.redactor)
            return KargoAPI(baseURL: base.flatMap(URL.init(string:)), config: config, token: token, http: http, runner: cluster.kubectl.runner)
        }
    }
}
