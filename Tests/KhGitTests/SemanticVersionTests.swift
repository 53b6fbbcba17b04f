import Foundation
import KhCore
import Testing

@testable import KhGit

@Suite("SemanticVersion: semver 2.0 parsing and precedence")
struct SemanticVersionTests {
    @Test("parses core, pre-release and build parts, with or without a leading v")
    func parsesParts() throws {
        let version = try SemanticVersion(parsing: "v1.10.0-rc.1+build.007")
        #expect(version.major == 1 && version.minor == 10 && version.patch == 0)
        #expect(version.prerelease == [.alphanumeric("rc"), .numeric(1)])
        #expect(version.build == ["build", "007"])
        #expect(version.text == "v1.10.0-rc.1+build.007")
        #expect(version.isPrerelease)
        let plain = try SemanticVersion(parsing: "0.0.0")
        #expect(plain == SemanticVersion(0, 0, 0))
        #expect(!plain.isPrerelease && plain.build.isEmpty)
        #expect(try SemanticVersion(parsing: "1.0.0-0a.x-y-z.--").prerelease == [.alphanumeric("0a"), .alphanumeric("x-y-z"), .alphanumeric("--")])
        #expect(try SemanticVersion(parsing: "18446744073709551615.0.0").major == UInt64.max)
        #expect(
            SemanticVersion(1, 2, 3, prerelease: [.alphanumeric("beta"), .numeric(2)], build: ["sha", "5114f85"]).text == "1.2.3-beta.2+sha.5114f85")
    }

    @Test(
        "rejects what semver 2.0 does not allow, naming the problem",
        arguments: [
            ("", SemanticVersionError.Problem.empty),
            ("v", .coreComponents(found: 1)),
            ("1.2", .coreComponents(found: 2)),
            ("1.2.3.4", .coreComponents(found: 4)),
            ("1..3", .emptyComponent("minor")),
            ("01.2.3", .leadingZero("major", "01")),
            ("1.02.3", .leadingZero("minor", "02")),
            ("1.2.x", .notNumeric("patch", "x")),
            ("V1.2.3", .notNumeric("major", "V1")),
            (" 1.2.3", .notNumeric("major", " 1")),
            ("vv1.2.3", .notNumeric("major", "v1")),
            ("1.2.3-", .emptyIdentifier("pre-release")),
            ("1.2.3-rc..1", .emptyIdentifier("pre-release")),
            ("1.2.3-01", .leadingZero("pre-release", "01")),
            ("1.2.3-rc_1", .invalidCharacter("pre-release", "rc_1")),
            ("1.2.3+", .emptyIdentifier("build")),
            ("1.2.3+a+b", .invalidCharacter("build", "a+b")),
            ("18446744073709551616.0.0", .tooLarge("major", "18446744073709551616")),
        ])
    func rejectsInvalid(text: String, problem: SemanticVersionError.Problem) {
        let error = #expect(throws: SemanticVersionError.self) { try SemanticVersion(parsing: text) }
        #expect(error?.problem == problem)
        #expect(error?.text == text)
        #expect(error?.message.hasPrefix("\"\(text)\" is not a semantic version: ") == true)
        #expect(error?.exitCode == .usage)
        #expect(SemanticVersion(text) == nil)
    }

    @Test("the precedence chain of semver §11 holds pairwise, and sorting any shuffle restores it")
    func specPrecedence() throws {
        let chain = try [
            "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0",
            "1.0.1", "1.2.0", "v1.9.0", "v1.10.0-rc.1", "v1.10.0", "2.0.0", "10.0.0",
        ].map { try SemanticVersion(parsing: $0) }
        for i in chain.indices {
            for j in chain.indices {
                #expect((chain[i] < chain[j]) == (i < j), "\(chain[i]) < \(chain[j])")
                #expect((chain[i] == chain[j]) == (i == j), "\(chain[i]) == \(chain[j])")
            }
        }
        var generator = SplitMix(seed: 42)
        for _ in 0..<50 {
            #expect(chain.shuffled(using: &generator).sorted().map(\.text) == chain.map(\.text))
        }
    }

    @Test("numeric identifiers compare as numbers and sort before alphanumeric ones")
    func identifierOrder() throws {
        func v(_ text: String) throws -> SemanticVersion { try SemanticVersion(parsing: text) }
        #expect(try v("1.0.0-2") < v("1.0.0-10"))
        #expect(try v("1.0.0-rc.2") < v("1.0.0-rc.10"))
        #expect(try v("1.0.0-999") < v("1.0.0-a"))
        #expect(try v("1.0.0-1") < v("1.0.0-1a"))
        #expect(try v("1.0.0-Z") < v("1.0.0-a"))  // ASCII order: uppercase first
        #expect(try v("1.0.0-rc") < v("1.0.0-rc.1"))  // a shorter list first
        #expect(try v("1.0.0-rc.1.x") > v("1.0.0-rc.1"))
        #expect(try v("1.2.0") < v("1.10.0"))
        #expect(try v("1.10.0-rc.1") < v("1.10.0"))
        #expect(try v("1.10.0-rc.1") > v("1.9.99"))
    }

    @Test("build metadata and the v are ignored by precedence, equality and hashing, kept in the text")
    func buildMetadataIgnored() throws {
        let a = try SemanticVersion(parsing: "v1.2.3+build.1")
        let b = try SemanticVersion(parsing: "1.2.3+build.2")
        let c = try SemanticVersion(parsing: "1.2.3")
        #expect(a == b && b == c)
        #expect(!(a < b) && !(b < a))
        #expect(Set([a, b, c]).count == 1)
        #expect(a.text == "v1.2.3+build.1" && a.description == "v1.2.3+build.1")
        #expect(try SemanticVersion(parsing: "1.2.3-rc.1+x") < c)
        #expect(try SemanticVersion(parsing: "1.2.3-rc.1+x") != SemanticVersion(parsing: "1.2.3-rc.2+x"))
    }

    @Test("Codable round trip keeps every part")
    func codable() throws {
        let version = try SemanticVersion(parsing: "v3.1.4-beta.2+exp.sha.5114f85")
        let data = try JSONEncoder().encode(version)
        let back = try JSONDecoder().decode(SemanticVersion.self, from: data)
        #expect(back == version && back.text == version.text && back.build == version.build)
    }
}

/// A small seeded generator so the shuffles are reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
