import Foundation
import Yams

/// A loaded configuration file: one YAML document with a section per plugin
/// (`stabilize:`, `gitops:`, `install:`, `reliability:`) and kh's own `kh:` section.
///
/// Sections are decoded on demand into the plugin's Decodable type with
/// ``section(_:as:)``. Every key the type did not ask for is reported as unknown,
/// with its line and column; every type mismatch names the field and what was expected.
public struct ConfigFile: Sendable {
    /// Where the file was read from; nil when no file exists (all defaults).
    public let path: String?
    /// The mapping at the root, or nil for an empty file.
    let root: NodeBox?
    /// Registers secret fields as they are decoded.
    public let redactor: Redactor?

    /// The `kh:` section, kh's own settings.
    public static let coreSection = "kh"

    /// A config with no file: every section decodes from its defaults.
    public static func empty(redactor: Redactor? = nil) -> ConfigFile {
        ConfigFile(path: nil, root: nil, redactor: redactor)
    }

    init(path: String?, root: NodeBox?, redactor: Redactor?) {
        self.path = path
        self.root = root
        self.redactor = redactor
    }

    /// Parses YAML text. Syntax errors carry line and column.
    public static func parse(_ text: String, path: String, redactor: Redactor? = nil) throws -> ConfigFile {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError.fromYams(error, file: path)
        } catch {
            throw ConfigError(file: path, line: nil, column: nil, field: "", problem: "not valid YAML: \(error)")
        }
        guard let node else { return ConfigFile(path: path, root: nil, redactor: redactor) }
        if case .scalar(let scalar) = node, scalar.string.isEmpty || node.null != nil {
            return ConfigFile(path: path, root: nil, redactor: redactor)
        }
        guard case .mapping = node else {
            throw ConfigError(
                file: path, line: node.mark?.line, column: node.mark?.column, field: "",
                problem: "expected a mapping of sections (kh:, stabilize:, gitops:, install:, reliability:), found \(node.kindDescription)")
        }
        return ConfigFile(path: path, root: NodeBox(node), redactor: redactor)
    }

    /// Reads and parses a file.
    public static func load(path: String, fileSystem: any FileSystem = LocalFileSystem(), redactor: Redactor? = nil) throws -> ConfigFile {
        guard fileSystem.exists(path) else {
            throw ConfigError(file: path, line: nil, column: nil, field: "", problem: "config file not found")
        }
        let data = try fileSystem.read(path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, column: nil, field: "", problem: "not UTF-8 text")
        }
        return try parse(text, path: path, redactor: redactor)
    }

    /// The top-level section names present in the file, in file order.
    public var sectionNames: [String] {
        guard case .mapping(let mapping)? = root?.node else { return [] }
        return mapping.keys.compactMap(\.string)
    }

    /// Whether the file has a section.
    public func has(_ section: String) -> Bool { sectionNames.contains(section) }

    /// Reports sections no installed plugin owns, with their location.
    public func checkSections(known: Set<String>) throws {
        guard case .mapping(let mapping)? = root?.node else { return }
        var errors: [ConfigError] = []
        for key in mapping.keys {
            let name = key.string ?? "\(key)"
            if !known.contains(name) {
                errors.append(
                    ConfigError(
                        file: displayPath, line: key.mark?.line, column: key.mark?.column, field: name,
                        problem: "unknown section" + suggestion(for: name, among: known)
                            + "; known sections: \(known.sorted().joined(separator: ", "))"))
            }
        }
        if let first = errors.first {
            var combined = first
            combined.more = Array(errors.dropFirst())
            throw combined
        }
    }

    /// Decodes a section into `T`. A missing section decodes from an empty mapping,
    /// so `T` supplies its defaults. Unknown keys anywhere inside are errors.
    public func section<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let sectionNode: Node
        if let value = root?.node[name], value.null == nil {
            sectionNode = value
        } else {
            sectionNode = Node([(Node, Node)]())
        }
        let tracker = KeyTracker()
        let decoder = NodeDecoder(node: sectionNode, codingPath: [], tracker: tracker, context: decodingContext)
        let value: T
        do {
            value = try T(from: decoder)
        } catch var error as ConfigError {
            // The decoder names fields relative to the section.
            error.field = error.field.isEmpty ? name : error.field.hasPrefix("[") ? name + error.field : name + "." + error.field
            throw error
        } catch let error as DecodingError {
            throw convert(error, section: name, sectionNode: sectionNode)
        }
        let unknown = tracker.unknownKeys()
        if !unknown.isEmpty {
            let errors = unknown.map { item in
                ConfigError(
                    file: displayPath, line: item.key.mark?.line, column: item.key.mark?.column,
                    field: fieldPath(name, item.path + [PathKey(item.name)]),
                    problem: "unknown key" + suggestion(for: item.name, among: item.known))
            }
            var combined = errors[0]
            combined.more = Array(errors.dropFirst())
            throw combined
        }
        return value
    }

    var displayPath: String { path ?? "<defaults>" }

    var decodingContext: DecodingContext { DecodingContext(file: displayPath, redactor: redactor) }

    private func convert(_ error: DecodingError, section: String, sectionNode: Node) -> ConfigError {
        let (context, problem): (DecodingError.Context, String)
        switch error {
        case .typeMismatch(let type, let ctx):
            (context, problem) = (ctx, "expected \(describe(type))" + found(at: ctx.codingPath, in: sectionNode))
        case .valueNotFound(let type, let ctx):
            (context, problem) = (ctx, "expected \(describe(type)), found nothing")
        case .keyNotFound(let key, let ctx):
            let path = ctx.codingPath + [key]
            let mark = sectionNode.lookup(ctx.codingPath)?.mark
            return ConfigError(
                file: displayPath, line: mark?.line, column: mark?.column, field: fieldPath(section, path.map(PathKey.init)),
                problem: "required key is missing")
        case .dataCorrupted(let ctx):
            (context, problem) = (ctx, ctx.debugDescription)
        @unknown default:
            return ConfigError(file: displayPath, line: nil, column: nil, field: section, problem: "\(error)")
        }
        let node = sectionNode.lookup(context.codingPath)
        return ConfigError(
            file: displayPath, line: node?.mark?.line, column: node?.mark?.column,
            field: fieldPath(section, context.codingPath.map(PathKey.init)), problem: problem)
    }

    private func found(at path: [any CodingKey], in node: Node) -> String {
        guard let value = node.lookup(path) else { return "" }
        return ", found \(value.kindDescription)"
    }
}

/// A sendable box for Yams' Node tree (immutable once parsed).
struct NodeBox: @unchecked Sendable {
    let node: Node
    init(_ node: Node) { self.node = node }
}

struct PathKey: Sendable {
    var name: String?
    var index: Int?
    init(_ name: String) { self.name = name }
    init(index: Int) { self.index = index }
    init(_ key: any CodingKey) {
        if let index = key.intValue, key.stringValue.hasPrefix("Index ") || Int(key.stringValue) == index {
            self.index = index
        } else {
            self.name = key.stringValue
        }
    }
}

func fieldPath(_ section: String, _ path: [PathKey]) -> String {
    var text = section
    for key in path {
        if let index = key.index { text += "[\(index)]" } else if let name = key.name { text += text.isEmpty ? name : ".\(name)" }
    }
    return text
}

func describe(_ type: Any.Type) -> String {
    switch type {
    case is String.Type: return "a string"
    case is Bool.Type: return "true or false"
    case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt16.Type: return "an integer"
    case is Double.Type, is Float.Type: return "a number"
    default:
        let name = "\(type)"
        if name.hasPrefix("Array<") { return "a list" }
        if name.hasPrefix("Dictionary<") { return "a mapping" }
        return "a mapping (\(name))"
    }
}

/// ` (did you mean "x"?)` when a known name is close to `name`, else empty.
public func suggestion(for name: String, among known: some Collection<String>) -> String {
    closest(to: name, among: known).map { " (did you mean \"\($0)\"?)" } ?? ""
}

/// The known name closest to `name`, if close enough to be a likely typo.
public func closest(to name: String, among known: some Collection<String>) -> String? {
    let best = known.map { ($0, editDistance($0, name)) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= max(2, name.count / 3) else { return nil }
    return best.0
}

/// Levenshtein distance.
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

extension ConfigError {
    static func fromYams(_ error: YamlError, file: String) -> ConfigError {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, field: "", problem: "YAML syntax error: \(problem)")
        case .composer(_, let problem, let mark, _):
            return ConfigError(file: file, line: mark.line, column: mark.column, field: "", problem: "YAML error: \(problem)")
        default:
            return ConfigError(file: file, line: nil, column: nil, field: "", problem: "YAML error: \(error)")
        }
    }
}

extension Node {
    var kindDescription: String {
        switch self {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar):
            if null != nil { return "null" }
            return "\"\(scalar.string)\""
        case .alias: return "an alias"
        }
    }

    func lookup(_ path: [any CodingKey]) -> Node? {
        var current: Node? = self
        for key in path {
            guard let node = current else { return nil }
            switch node {
            case .mapping: current = node[key.stringValue]
            case .sequence(let sequence):
                guard let index = key.intValue, index < sequence.count else { return nil }
                current = sequence[index]
            default: return nil
            }
        }
        return current
    }
}
