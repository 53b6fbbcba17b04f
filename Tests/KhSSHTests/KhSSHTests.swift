import Testing

@testable import KhSSH
