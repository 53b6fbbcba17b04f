import KhCore

/// A semantic version (semver 2.0.0): `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, with an
/// optional leading `v` as tags usually carry (`v1.10.0-rc.1`).
///
/// Ordering is semver precedence (§11): numeric major, minor, patch; a pre-release sorts
/// before its release; pre-release identifiers compare one by one, numeric ones as
/// numbers, alphanumeric ones in ASCII order, numeric before alphanumeric, and a shorter
/// list first when all shared ones are equal. Build metadata and the `v` are ignored,
/// by `==` and `hash` too, so equal values have equal precedence; ``text`` keeps the
/// original spelling.
public struct SemanticVersion: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// One dot-separated pre-release identifier.
    public enum Identifier: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
        /// Digits only, without a leading zero (`1`, `10`).
        case numeric(UInt64)
        /// Letters, digits and hyphens, not digits only (`rc`, `alpha-2`, `0a`).
        case alphanumeric(String)

        public var description: String {
            switch self {
            case .numeric(let value): String(value)
            case .alphanumeric(let text): text
            }
        }

        public static func < (lhs: Identifier, rhs: Identifier) -> Bool {
            switch (lhs, rhs) {
            case (.numeric(let a), .numeric(let b)): a < b
            case (.numeric, .alphanumeric): true
            case (.alphanumeric, .numeric): false
            case (.alphanumeric(let a), .alphanumeric(let b)): a.utf8.lexicographicallyPrecedes(b.utf8)
            }
        }
    }

    public var major: UInt64
    public var minor: UInt64
    public var patch: UInt64
    /// Pre-release identifiers (`["rc", 1]` for `-rc.1`); empty for a release.
    public var prerelease: [Identifier]
    /// Build metadata identifiers (`["build", "5"]` for `+build.5`); ignored by ordering and equality.
    public var build: [String]
    /// The text it was parsed from, or its canonical form (without `v`) when built from parts.
    public var text: String

    /// A version from its parts. Build identifiers are kept as given.
    public init(_ major: UInt64, _ minor: UInt64, _ patch: UInt64, prerelease: [Identifier] = [], build: [String] = []) {
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = prerelease
        self.build = build
        var text = "\(major).\(minor).\(patch)"
        if !prerelease.isEmpty { text += "-" + prerelease.map(\.description).joined(separator: ".") }
        if !build.isEmpty { text += "+" + build.joined(separator: ".") }
        self.text = text
    }

    /// Parses `text`; throws ``SemanticVersionError`` naming what is wrong.
    public init(parsing text: String) throws {
        func fail(_ problem: SemanticVersionError.Problem) -> SemanticVersionError {
            SemanticVersionError(text: text, problem: problem)
        }
        var rest = Substring(text)
        if rest.isEmpty { throw fail(.empty) }
        if rest.first == "v" { rest = rest.dropFirst() }
        var buildPart: Substring?
        if let plus = rest.firstIndex(of: "+") {
            buildPart = rest[rest.index(after: plus)...]
            rest = rest[..<plus]
        }
        var prePart: Substring?
        if let dash = rest.firstIndex(of: "-") {
            prePart = rest[rest.index(after: dash)...]
            rest = rest[..<dash]
        }
        let core = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard core.count == 3 else { throw fail(.coreComponents(found: core.count)) }
        let names = ["major", "minor", "patch"]
        var numbers: [UInt64] = []
        for (index, part) in core.enumerated() {
            guard !part.isEmpty else { throw fail(.emptyComponent(names[index])) }
            guard part.utf8.allSatisfy(Self.isDigit) else { throw fail(.notNumeric(names[index], String(part))) }
            guard part.count == 1 || part.first != "0" else { throw fail(.leadingZero(names[index], String(part))) }
            guard let value = UInt64(part) else { throw fail(.tooLarge(names[index], String(part))) }
            numbers.append(value)
        }
        var prerelease: [Identifier] = []
        if let prePart {
            for part in prePart.split(separator: ".", omittingEmptySubsequences: false) {
                guard !part.isEmpty else { throw fail(.emptyIdentifier("pre-release")) }
                guard part.utf8.allSatisfy(Self.isIdentifierCharacter) else {
                    throw fail(.invalidCharacter("pre-release", String(part)))
                }
                if part.utf8.allSatisfy(Self.isDigit) {
                    guard part.count == 1 || part.first != "0" else { throw fail(.leadingZero("pre-release", String(part))) }
                    guard let value = UInt64(part) else { throw fail(.tooLarge("pre-release", String(part))) }
                    prerelease.append(.numeric(value))
                } else {
                    prerelease.append(.alphanumeric(String(part)))
                }
            }
        }
        var build: [String] = []
        if let buildPart {
            for part in buildPart.split(separator: ".", omittingEmptySubsequences: false) {
                guard !part.isEmpty else { throw fail(.emptyIdentifier("build")) }
                guard part.utf8.allSatisfy(Self.isIdentifierCharacter) else { throw fail(.invalidCharacter("build", String(part))) }
                build.append(String(part))
            }
        }
        self.major = numbers[0]
        self.minor = numbers[1]
        self.patch = numbers[2]
        self.prerelease = prerelease
        self.build = build
        self.text = text
    }

    /// The parsed version, or `nil` when `text` is not a semantic version.
    public init?(_ text: String) {
        guard let value = try? SemanticVersion(parsing: text) else { return nil }
        self = value
    }

    /// Whether this is a pre-release (`1.0.0-rc.1`).
    public var isPrerelease: Bool { !prerelease.isEmpty }

    public var description: String { text }

    public static func < (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        if lhs.major != rhs.major { return lhs.major < rhs.major }
        if lhs.minor != rhs.minor { return lhs.minor < rhs.minor }
        if lhs.patch != rhs.patch { return lhs.patch < rhs.patch }
        switch (lhs.prerelease.isEmpty, rhs.prerelease.isEmpty) {
        case (true, true), (true, false): return false
        case (false, true): return true
        case (false, false): return lhs.prerelease.lexicographicallyPrecedes(rhs.prerelease)
        }
    }

    public static func == (lhs: SemanticVersion, rhs: SemanticVersion) -> Bool {
        lhs.major == rhs.major && lhs.minor == rhs.minor && lhs.patch == rhs.patch && lhs.prerelease == rhs.prerelease
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(patch)
        hasher.combine(prerelease)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= 48 && byte <= 57 }
    private static func isIdentifierCharacter(_ byte: UInt8) -> Bool {
        isDigit(byte) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 45
    }
}

/// Why a text is not a semantic version.
public struct SemanticVersionError: KhReportableError, Equatable {
    /// What is wrong with it.
    public enum Problem: Sendable, Equatable {
        /// The text is empty.
        case empty
        /// MAJOR.MINOR.PATCH did not have exactly three parts.
        case coreComponents(found: Int)
        /// `major`, `minor` or `patch` is empty.
        case emptyComponent(String)
        /// A core component has something other than digits.
        case notNumeric(String, String)
        /// A numeric component or identifier starts with 0.
        case leadingZero(String, String)
        /// A number does not fit in 64 bits.
        case tooLarge(String, String)
        /// A pre-release or build identifier is empty (`1.0.0-rc..1`, `1.0.0+`).
        case emptyIdentifier(String)
        /// A pre-release or build identifier has a character outside `[0-9A-Za-z-]`.
        case invalidCharacter(String, String)
    }

    /// The text that failed to parse.
    public var text: String
    /// What is wrong with it.
    public var problem: Problem

    public var exitCode: KhExitCode { .usage }

    public var message: String {
        let why: String
        switch problem {
        case .empty: why = "it is empty"
        case .coreComponents(let found): why = "expected MAJOR.MINOR.PATCH, found \(found) dot-separated part\(found == 1 ? "" : "s")"
        case .emptyComponent(let name): why = "the \(name) version is empty"
        case .notNumeric(let name, let part): why = "the \(name) version \"\(part)\" is not a number"
        case .leadingZero(let name, let part): why = "the \(name) \"\(part)\" has a leading zero"
        case .tooLarge(let name, let part): why = "the \(name) \"\(part)\" is too large"
        case .emptyIdentifier(let kind): why = "a \(kind) identifier is empty"
        case .invalidCharacter(let kind, let part): why = "the \(kind) identifier \"\(part)\" has a character outside [0-9A-Za-z-]"
        }
        return "\"\(text)\" is not a semantic version: \(why)"
    }
}
