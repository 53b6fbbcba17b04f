import Testing

@testable import KhHTTP
