import Foundation
import KhCore
import KhTestSupport
import Testing

/// A plugin-like section type with nested lists, defaults and a secret.
struct SampleSection: Decodable, Equatable {
    struct Scenario: Decodable, Equatable {
        var name: String
        var timeout: KhDuration
        var tier: Int
    }

    var prefix: String
    var scenarios: [Scenario]
    var keepGoing: Bool
    var token: Secret?

    enum CodingKeys: String, CodingKey {
        case prefix, scenarios, token
        case keepGoing = "keep_going"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prefix = try c.decodeIfPresent(String.self, forKey: .prefix) ?? "khv3-"
        scenarios = try c.decodeIfPresent([Scenario].self, forKey: .scenarios) ?? []
        keepGoing = try c.decodeIfPresent(Bool.self, forKey: .keepGoing) ?? false
        token = try c.decodeIfPresent(Secret.self, forKey: .token)
    }
}

@Suite("Config: YAML with located errors")
struct ConfigTests {
    @Test("a valid section decodes; a missing section gives the defaults")
    func decodes() throws {
        let yaml = """
            kh:
              evidence_dir: /tmp/ev
            stabilize:
              prefix: test-
              keep_going: true
              scenarios:
                - name: s1-k3s-basic
                  timeout: 45m
                  tier: 1
            """
        let config = try ConfigFile.parse(yaml, path: "kh.yaml")
        let section = try config.section("stabilize", as: SampleSection.self)
        #expect(section.prefix == "test-")
        #expect(section.keepGoing)
        #expect(section.scenarios == [.init(name: "s1-k3s-basic", timeout: KhDuration(.seconds(2700)), tier: 1)])
        #expect(config.sectionNames == ["kh", "stabilize"])
        let defaults = try config.section("gitops", as: SampleSection.self)
        #expect(defaults.prefix == "khv3-")
        #expect(try ConfigFile.empty().section("x", as: SampleSection.self).scenarios.isEmpty)
    }

    @Test("a type mismatch names file, line, column, field and what was expected")
    func typeMismatch() throws {
        let yaml = """
            stabilize:
              scenarios:
                - name: a
                  timeout: 10m
                  tier: 1
                - name: b
                  timeout: soon
                  tier: 2
            """
        let config = try ConfigFile.parse(yaml, path: "kh.yaml")
        let error = #expect(throws: ConfigError.self) { try config.section("stabilize", as: SampleSection.self) }
        #expect(error?.line == 7)
        #expect(error?.column == 16)
        #expect(error?.field == "stabilize.scenarios[1].timeout")
        #expect(
            error?.message == #"kh.yaml:7:16: stabilize.scenarios[1].timeout: expected a duration such as 90s, 45m, 1h30m or 500ms, found "soon""#)
        #expect(error?.exitCode == .usage)
    }

    @Test("a wrong scalar type says what was expected and found")
    func wrongScalar() throws {
        let config = try ConfigFile.parse("stabilize:\n  keep_going: maybe\n", path: "c.yaml")
        let error = #expect(throws: ConfigError.self) { try config.section("stabilize", as: SampleSection.self) }
        #expect(error?.message == #"c.yaml:2:15: stabilize.keep_going: expected true or false, found "maybe""#)
    }

    @Test("a missing required key is located at its mapping")
    func missingKey() throws {
        let config = try ConfigFile.parse("stabilize:\n  scenarios:\n    - name: a\n      tier: 1\n", path: "c.yaml")
        let error = #expect(throws: ConfigError.self) { try config.section("stabilize", as: SampleSection.self) }
        #expect(error?.field == "stabilize.scenarios[0].timeout")
        #expect(error?.problem == "required key is missing")
        #expect(error?.line == 3)
    }

    @Test("unknown keys are all reported, with location and a suggestion")
    func unknownKeys() throws {
        let yaml = """
            stabilize:
              prefx: a-
              scenarios:
                - name: a
                  timeout: 1m
                  tier: 1
                  tire: 2
              keep_going: false
            """
        let config = try ConfigFile.parse(yaml, path: "kh.yaml")
        let error = #expect(throws: ConfigError.self) { try config.section("stabilize", as: SampleSection.self) }
        let message = error?.message ?? ""
        #expect(message.contains(#"kh.yaml:2:3: stabilize.prefx: unknown key (did you mean "prefix"?)"#), "\(message)")
        #expect(message.contains(#"kh.yaml:7:7: stabilize.scenarios[0].tire: unknown key (did you mean "tier"?)"#), "\(message)")
    }

    @Test("unknown sections are reported with their line")
    func unknownSection() throws {
        let config = try ConfigFile.parse("kh: {}\nstabilise:\n  prefix: x\n", path: "kh.yaml")
        let error = #expect(throws: ConfigError.self) { try config.checkSections(known: ["kh", "stabilize", "gitops"]) }
        #expect(error?.line == 2 && error?.column == 1)
        #expect(error?.message.contains(#"stabilise: unknown section (did you mean "stabilize"?)"#) == true)
    }

    @Test("YAML syntax errors carry line and column")
    func syntaxError() throws {
        let error = #expect(throws: ConfigError.self) { try ConfigFile.parse("stabilize:\n  prefix: [a, b\n  other: 1\n", path: "bad.yaml") }
        #expect(error?.file == "bad.yaml")
        #expect(error?.line != nil && error?.column != nil)
        #expect(error?.message.hasPrefix("bad.yaml:") == true)
    }

    @Test("a root that is not a mapping is refused")
    func rootNotMapping() throws {
        let error = #expect(throws: ConfigError.self) { try ConfigFile.parse("- a\n- b\n", path: "kh.yaml") }
        #expect(error?.problem.contains("expected a mapping of sections") == true)
    }

    @Test("a Secret in config registers with the redactor and never prints")
    func secretRegisters() throws {
        let redactor = Redactor()
        let config = try ConfigFile.parse("stabilize:\n  token: hc-0123456789abcdef\n", path: "kh.yaml", redactor: redactor)
        let section = try config.section("stabilize", as: SampleSection.self)
        #expect(section.token?.value == "hc-0123456789abcdef")
        #expect("\(section.token!)" == "[redacted:token]")
        #expect(redactor.redact("Authorization: Bearer hc-0123456789abcdef") == "Authorization: Bearer [redacted:token]")
    }

    @Test("durations parse the way runbooks write them")
    func durations() {
        #expect(KhDuration(parsing: "90s")?.duration == .seconds(90))
        #expect(KhDuration(parsing: "45m")?.duration == .seconds(2700))
        #expect(KhDuration(parsing: "1h30m")?.duration == .seconds(5400))
        #expect(KhDuration(parsing: "500ms")?.duration == .milliseconds(500))
        #expect(KhDuration(parsing: "12")?.duration == .seconds(12))
        #expect(KhDuration(parsing: "soon") == nil)
        #expect(KhDuration(parsing: "5x") == nil)
        #expect(KhDuration(parsing: "") == nil)
        #expect(KhDuration(.seconds(2700)).description == "45m")
    }
}

@Suite("Redactor")
struct RedactorTests {
    @Test("registered values are replaced everywhere, short ones ignored")
    func replaces() {
        let redactor = Redactor()
        redactor.register(name: "HCLOUD_TOKEN", value: "abcdef123456")
        redactor.register(name: "SHORT", value: "abc")
        #expect(redactor.redact("x=abcdef123456 y=abcdef123456") == "x=[redacted:HCLOUD_TOKEN] y=[redacted:HCLOUD_TOKEN]")
        #expect(redactor.redact("abc") == "abc")
        #expect(redactor.registeredNames == ["HCLOUD_TOKEN"])
    }

    @Test("environment secrets and secret-looking flags in command lines")
    func arguments() {
        let redactor = Redactor()
        redactor.registerEnvironment(["GITHUB_TOKEN", "UNSET"], from: ["GITHUB_TOKEN": "ghp_secretvalue1"])
        let args = redactor.redactArguments(["kh", "reviews", "--token", "plain-value", "--api-token=xyz", "--note", "ghp_secretvalue1"])
        #expect(args == ["kh", "reviews", "--token", "[redacted]", "--api-token=[redacted]", "--note", "[redacted:GITHUB_TOKEN]"])
    }

    @Test("JSON-escaped forms are covered")
    func jsonEscaped() throws {
        let redactor = Redactor()
        redactor.register(name: "T", value: "pa\"ss/word\\x")
        let data = try JSONEncoder().encode(["v": "pa\"ss/word\\x"])
        #expect(!String(decoding: redactor.redact(data), as: UTF8.self).contains("ss/word"))
    }
}
