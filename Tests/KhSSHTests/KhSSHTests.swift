import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

@testable import KhSSH

@Suite("KhSSH smoke")
struct SmokeTests {
    @Test func echo() async throws {
        let server = try await SSHServer.start()
        let connection = try await SSHConnection.connect(server.configuration())
        let result = try await connection.execute("echo out; echo err >&2; exit 3", options: RunOptions(timeout: .seconds(10)))
        print(result.summary, result.pid, result.stdoutText, result.stderrText)
        #expect(result.termination == .exited(3))
        #expect(result.stdoutText == "out\n")
        #expect(result.stderrText == "err\n")
    }
}
