import Testing

@testable import KhGit
