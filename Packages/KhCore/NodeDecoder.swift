import Foundation
import Synchronization
import Yams

/// What a config decoder knows beyond the node: the file, and where secrets go.
struct DecodingContext: Sendable {
    var file: String
    var redactor: Redactor?
}

extension CodingUserInfoKey {
    /// The ``Redactor`` config ``Secret`` values register with.
    public static let khRedactor = CodingUserInfoKey(rawValue: "kh.redactor")!
}

/// Records which keys of each mapping a Decodable type asked for, so that keys it
/// never asked for can be reported as unknown.
final class KeyTracker: @unchecked Sendable {
    struct Visit {
        var node: Node
        var path: [PathKey]
        var asked: Set<String>
    }

    struct Unknown {
        var key: Node
        var name: String
        var path: [PathKey]
        var known: [String]
    }

    private var visits: [String: Visit] = [:]

    private func id(_ path: [PathKey]) -> String { fieldPath("", path) }

    func visit(_ node: Node, path: [PathKey]) {
        let key = id(path)
        if visits[key] == nil { visits[key] = Visit(node: node, path: path, asked: []) }
    }

    func asked(_ name: String, path: [PathKey]) {
        visits[id(path)]?.asked.insert(name)
    }

    func unknownKeys() -> [Unknown] {
        var result: [Unknown] = []
        for visit in visits.values.sorted(by: { ($0.node.mark?.line ?? 0) < ($1.node.mark?.line ?? 0) }) {
            guard case .mapping(let mapping) = visit.node else { continue }
            for key in mapping.keys {
                let name = key.string ?? "\(key)"
                if !visit.asked.contains(name) {
                    result.append(Unknown(key: key, name: name, path: visit.path, known: visit.asked.sorted()))
                }
            }
        }
        return result.sorted { ($0.key.mark?.line ?? 0, $0.key.mark?.column ?? 0) < ($1.key.mark?.line ?? 0, $1.key.mark?.column ?? 0) }
    }
}

/// A Decoder over a Yams node tree that remembers marks (line, column) and asked keys.
struct NodeDecoder: Decoder {
    let node: Node
    let codingPath: [any CodingKey]
    let tracker: KeyTracker
    let context: DecodingContext

    var userInfo: [CodingUserInfoKey: Any] {
        var info: [CodingUserInfoKey: Any] = [:]
        if let redactor = context.redactor { info[.khRedactor] = redactor }
        return info
    }

    var pathKeys: [PathKey] { codingPath.map(PathKey.init) }

    func error(_ problem: String, at node: Node? = nil) -> ConfigError {
        let mark = (node ?? self.node).mark
        return ConfigError(file: context.file, line: mark?.line, column: mark?.column, field: fieldPath("", pathKeys), problem: problem)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping = node else { throw error("expected a mapping, found \(node.kindDescription)") }
        tracker.visit(node, path: pathKeys)
        return KeyedDecodingContainer(KeyedNodeContainer<Key>(decoder: self))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else { throw error("expected a list, found \(node.kindDescription)") }
        return UnkeyedNodeContainer(decoder: self, items: Array(sequence))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { SingleNodeContainer(decoder: self) }

    func child(_ node: Node, key: any CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, codingPath: codingPath + [key], tracker: tracker, context: context)
    }

    // MARK: scalars

    func scalar<T>(_ type: T.Type) throws -> T {
        guard case .scalar(let scalar) = node else {
            throw error("expected \(describe(type)), found \(node.kindDescription)")
        }
        let value: Any?
        switch type {
        case is String.Type:
            value = node.null != nil ? nil : scalar.string
        case is Bool.Type: value = node.bool
        case is Int.Type: value = node.int
        case is Int64.Type: value = node.int.map { Int64($0) }
        case is Int32.Type: value = node.int.flatMap { Int32(exactly: $0) }
        case is UInt.Type: value = node.int.flatMap { UInt(exactly: $0) }
        case is UInt16.Type: value = node.int.flatMap { UInt16(exactly: $0) }
        case is Double.Type: value = node.float ?? node.int.map { Double($0) }
        case is Float.Type: value = (node.float ?? node.int.map { Double($0) }).map { Float($0) }
        default: value = nil
        }
        guard let typed = value as? T else {
            throw error("expected \(describe(type)), found \(node.kindDescription)")
        }
        return typed
    }

    func decodeValue<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is String.Type, is Bool.Type, is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt16.Type, is Double.Type,
            is Float.Type:
            return try scalar(type)
        default:
            return try T(from: self)
        }
    }
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    var mapping: Node.Mapping {
        if case .mapping(let mapping) = decoder.node { return mapping }
        return Node.Mapping([])
    }

    var allKeys: [Key] {
        mapping.keys.compactMap { node in
            guard let name = node.string else { return nil }
            decoder.tracker.asked(name, path: decoder.pathKeys)
            return Key(stringValue: name)
        }
    }

    func value(_ key: Key) -> Node? {
        decoder.tracker.asked(key.stringValue, path: decoder.pathKeys)
        return decoder.node[key.stringValue]
    }

    func contains(_ key: Key) -> Bool { value(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let node = value(key) else { return true }
        return node.null != nil
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let node = value(key) else {
            throw ConfigError(
                file: decoder.context.file, line: decoder.node.mark?.line, column: decoder.node.mark?.column,
                field: fieldPath("", decoder.pathKeys + [PathKey(key.stringValue)]), problem: "required key is missing")
        }
        return try decoder.child(node, key: key).decodeValue(type)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let node = value(key), node.null == nil else { return nil }
        return try decoder.child(node, key: key).decodeValue(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        guard let node = value(key) else { throw decoder.error("missing mapping \(key.stringValue)") }
        return try decoder.child(node, key: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        guard let node = value(key) else { throw decoder.error("missing list \(key.stringValue)") }
        return try decoder.child(node, key: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        decoder.child(value(key) ?? Node([(Node, Node)]()), key: key)
    }
}

struct IndexKey: CodingKey {
    var stringValue: String { "Index \(index)" }
    var intValue: Int? { index }
    let index: Int
    init(_ index: Int) { self.index = index }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.index = intValue }
}

struct UnkeyedNodeContainer: UnkeyedDecodingContainer {
    let decoder: NodeDecoder
    let items: [Node]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(decoder: NodeDecoder, items: [Node]) {
        self.decoder = decoder
        self.items = items
    }

    mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else { throw decoder.error("list has too few items") }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], key: IndexKey(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex].null != nil else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decodeValue(type) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

struct SingleNodeContainer: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }
    func decodeNil() -> Bool { decoder.node.null != nil }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decodeValue(type) }
}

/// A secret value in config: a literal string or `{ env: NAME }`. It registers
/// itself with the run's ``Redactor`` when decoded and never prints its value.
public struct Secret: Decodable, Sendable, CustomStringConvertible, Equatable {
    /// The value; pass it to the API that needs it, never to a log.
    public let value: String
    /// The name it is redacted under (the env variable, or the config field).
    public let name: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    enum Keys: String, CodingKey { case env }

    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: Keys.self) {
            let variable = try container.decode(String.self, forKey: .env)
            guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "environment variable \(variable) is not set"))
            }
            name = variable
            self.value = value
        } else {
            value = try decoder.singleValueContainer().decode(String.self)
            name = decoder.codingPath.map(\.stringValue).joined(separator: ".")
        }
        (decoder.userInfo[.khRedactor] as? Redactor)?.register(name: name, value: value)
    }

    public var description: String { "[redacted:\(name)]" }
}
