import Testing

@testable import KhKube
