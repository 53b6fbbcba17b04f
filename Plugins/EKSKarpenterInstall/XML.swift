import Foundation

/// A small XML reader for AWS query-API answers (IAM, EC2): elements, text and the
/// five predefined entities; attributes, comments and declarations are skipped.
/// Not a general XML parser: AWS answers use no DTDs, CDATA or namespaces prefixes.
public struct XMLElement: Sendable, Equatable {
    public var name: String
    public var children: [XMLElement]
    public var text: String

    /// The first descendant (depth first) named `name`.
    public func first(_ name: String) -> XMLElement? {
        for child in children {
            if child.name == name { return child }
            if let found = child.first(name) { return found }
        }
        return nil
    }

    /// The direct children named `name`.
    public func all(_ name: String) -> [XMLElement] { children.filter { $0.name == name } }

    /// The text of the first descendant named `name`.
    public func value(_ name: String) -> String? { first(name)?.text }

    /// Parses a document; nil when it is not well formed.
    public static func parse(_ text: String) -> XMLElement? {
        var parser = Parser(bytes: Array(text.utf8))
        return parser.document()
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func document() -> XMLElement? {
            while i < bytes.count {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "<") else { return nil }
                if peek("<?") || peek("<!") {
                    skip(past: ">")
                    continue
                }
                return element()
            }
            return nil
        }

        func peek(_ s: String) -> Bool {
            let u = Array(s.utf8)
            return i + u.count <= bytes.count && Array(bytes[i..<i + u.count]) == u
        }

        mutating func skipSpace() { while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 } }

        mutating func skip(past s: String) {
            let u = Array(s.utf8)
            while i < bytes.count {
                if i + u.count <= bytes.count && Array(bytes[i..<i + u.count]) == u {
                    i += u.count
                    return
                }
                i += 1
            }
        }

        mutating func element() -> XMLElement? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "<") else { return nil }
            i += 1
            let start = i
            while i < bytes.count, ![0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/")].contains(bytes[i]) { i += 1 }
            let name = String(decoding: bytes[start..<i], as: UTF8.self)
            // attributes: skipped, honouring quotes
            var quote: UInt8?
            while i < bytes.count {
                let b = bytes[i]
                if let q = quote {
                    if b == q { quote = nil }
                } else if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                    quote = b
                } else if b == UInt8(ascii: ">") || b == UInt8(ascii: "/") {
                    break
                }
                i += 1
            }
            guard i < bytes.count else { return nil }
            if bytes[i] == UInt8(ascii: "/") {
                skip(past: ">")
                return XMLElement(name: name, children: [], text: "")
            }
            i += 1
            var children: [XMLElement] = []
            var text: [UInt8] = []
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "<") {
                    if peek("</") {
                        skip(past: ">")
                        return XMLElement(name: name, children: children, text: Self.unescape(String(decoding: text, as: UTF8.self)))
                    }
                    if peek("<!--") || peek("<?") {
                        skip(past: ">")
                        continue
                    }
                    guard let child = element() else { return nil }
                    children.append(child)
                } else {
                    text.append(bytes[i])
                    i += 1
                }
            }
            return nil
        }

        static func unescape(_ s: String) -> String {
            guard s.contains("&") else { return s }
            return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&#34;", with: "\"").replacingOccurrences(of: "&amp;", with: "&")
        }
    }
}
