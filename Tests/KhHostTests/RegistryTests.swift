import ArgumentParser
import KhCore
import KhPluginAPI
import Testing

@testable import KhHost

struct FixtureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fixture", abstract: "A fixture command.")
}

enum AlphaPlugin: KhPlugin {
    static let id = "alpha"
    static let summary = "first fixture"
    static var commands: [any ParsableCommand.Type] { [FixtureCommand.self] }
    static let configSection: String? = "alpha"
}

enum AlphaAgain: KhPlugin {
    static let id = "alpha"
    static let summary = "same id"
    static var commands: [any ParsableCommand.Type] { [] }
}

enum BadID: KhPlugin {
    static let id = "Bad_ID"
    static let summary = "bad"
    static var commands: [any ParsableCommand.Type] { [] }
}

enum SectionThief: KhPlugin {
    static let id = "thief"
    static let summary = "claims kh:"
    static var commands: [any ParsableCommand.Type] { [] }
    static let configSection: String? = "kh"
}

@Suite("Plugin registry")
struct RegistryTests {
    @Test("two plugins sharing an id are refused")
    func duplicateID() {
        let error = #expect(throws: KhError.self) { try PluginRegistry.validate([AlphaPlugin.self, AlphaAgain.self]) }
        #expect(error?.message.contains("share the id \"alpha\"") == true)
    }

    @Test("ids must be lower-case words; sections cannot be taken twice")
    func invalid() {
        #expect(throws: KhError.self) { try PluginRegistry.validate([BadID.self]) }
        #expect(throws: KhError.self) { try PluginRegistry.validate([SectionThief.self]) }
        #expect(throws: Never.self) { try PluginRegistry.validate([AlphaPlugin.self]) }
        for id in ["a", "alpha", "hetzner-matrix", "eks-karpenter-install", "k8s-tools", "a-1"] {
            #expect(PluginRegistry.isValidID(id), "\(id)")
        }
        for id in ["", "-a", "a-", "a--b", "1a", "Alpha", "a_b", "a b", "a.b", "é"] {
            #expect(!PluginRegistry.isValidID(id), "\(id)")
        }
        #expect(PluginRegistry.moduleName(of: AlphaPlugin.self) == "KhHostTests")
    }

    @Test("mutating commands refuse without --yes when stdin is not a terminal")
    func mutation() throws {
        let console = Console(sink: { _, _ in })
        let options = try MutationOptions.parse([])
        let error = #expect(throws: KhError.self) { try options.authorize("delete 3 servers", console: console, stdinIsTerminal: false) }
        #expect(error?.exitCode == .usage)
        #expect(error?.message == "refusing to delete 3 servers without --yes: stdin is not a terminal")
        #expect(try options.authorize("x", console: console, stdinIsTerminal: true, readAnswer: { "y" }) == .proceed)
        #expect(throws: KhError.self) { try options.authorize("x", console: console, stdinIsTerminal: true, readAnswer: { "n" }) }
        #expect(try MutationOptions.parse(["--yes"]).authorize("x", console: console, stdinIsTerminal: false) == .proceed)
        #expect(try MutationOptions.parse(["--dry-run"]).authorize("x", console: console, stdinIsTerminal: false) == .dryRun)
        #expect(throws: (any Error).self) { try MutationOptions.parse(["--dry-run", "--yes"]) }
    }

    @Test("versions compare numerically")
    func versions() {
        #expect(KhRoot.Doctor.compareVersions("1.32.4", "1.26") == 1)
        #expect(KhRoot.Doctor.compareVersions("1.2.0", "1.5") == -1)
        #expect(KhRoot.Doctor.compareVersions("2.42.0+ds", "2.42") == 0)
    }
}

@Suite("Help groups commands by plugin")
struct HelpGroupingTests {
    @Test("each plugin's commands appear under a heading with its id")
    func grouped() throws {
        try PluginRegistry.install([AlphaPlugin.self])
        let configuration = KhRoot.makeConfiguration()
        #expect(configuration.groupedSubcommands.map(\.name) == ["alpha"])
        #expect(configuration.ungroupedSubcommands.map { $0._commandName } == ["plugins", "doctor", "completion"])
        let help = KhRoot.helpMessage(columns: 100)
        let heading = try #require(help.range(of: "ALPHA SUBCOMMANDS:"))
        let fixture = try #require(help.range(of: "fixture                 A fixture command."))
        #expect(heading.upperBound < fixture.lowerBound)
        #expect(KhMain.suggestion("fixtur", among: configuration.subcommands.map { $0._commandName }) == "fixture")
    }
}
