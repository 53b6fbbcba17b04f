import CKhLazy
import Foundation
import KhCore
import KhProcess
import KhTestSupport
import Testing

/// kh loads libgit2, libssh2 and libcurl on first use (Packages/CKhLazy): the binary must
/// not name them as needed libraries, the loader must explain what is missing, and
/// `kh doctor` must load them for real.
@Suite("C libraries loaded on first use")
struct LazyLibraryTests {
    /// The loader's message for `soname` + `symbol`, or nil when both are found.
    func probe(_ soname: String, _ symbol: String) -> String? {
        guard let message = kh_lazy_probe("libtest", soname, "libtest-pkg", symbol) else { return nil }
        defer { free(message) }
        return String(cString: message)
    }

    @Test("a missing shared object is reported with its name, the loader's words and the package")
    func missingLibrary() throws {
        let message = try #require(probe("libkh-no-such-library.so.7", "anything"))
        #expect(message.contains("libtest (libkh-no-such-library.so.7) is not usable"), "\(message)")
        #expect(message.contains("cannot open shared object file"), "\(message)")
        #expect(message.hasSuffix("install the Debian package libtest-pkg"), "\(message)")
    }

    @Test("a library without a function kh calls is reported with the function's name")
    func missingSymbol() throws {
        #expect(probe("libz.so.1", "zlibVersion") == nil)
        let message = try #require(probe("libz.so.1", "kh_no_such_function"))
        #expect(message.contains("it lacks 1 function kh calls (kh_no_such_function)"), "\(message)")
    }

    @Test("the built kh does not link libgit2, libssh2 or libcurl")
    func notLinked() async throws {
        let result = try await LocalRunner().run(
            Command("readelf", ["--dynamic", "--wide", BuiltProducts.kh]), options: RunOptions(timeout: .seconds(30)))
        try #require(result.exitCode == 0, "readelf: \(result.stderrText)")
        let needed = result.stdoutText.split(separator: "\n").filter { $0.contains("(NEEDED)") }
        #expect(needed.contains { $0.contains("[libc.so.6]") }, "readelf output not understood: \(result.stdoutText.prefix(400))")
        for library in ["libgit2", "libssh2", "libcurl"] {
            #expect(!needed.contains { $0.contains("[\(library).so") }, "kh needs \(library) at start-up: \(needed)")
        }
    }

    @Test("kh doctor loads each library and reports the version pkg-config reports")
    func doctorLoads() async throws {
        let dir = TemporaryDirectory()
        let result = try await KhBinary().run(["doctor", "--output", "json", "--evidence-dir", dir.path + "/ev"], cwd: dir.path)
        let report = try JSONDecoder().decode(JSONValue.self, from: result.stdout)
        guard case .array(let checks)? = report["checks"] else {
            Issue.record("no checks in \(result.stdoutText.prefix(300))")
            return
        }
        for (name, package) in [("libgit2", "libgit2"), ("libssh2", "libssh2"), ("libcurl", "libcurl")] {
            let check = checks.first { $0["name"]?.stringValue == "library:\(name)" }
            #expect(check?["status"] == "pass", "\(name): \(String(describing: check))")
            let version = try await LocalRunner().run(Command("pkg-config", ["--modversion", package]), options: RunOptions(timeout: .seconds(30)))
            try #require(version.exitCode == 0, "pkg-config --modversion \(package): \(version.stderrText)")
            let expected = version.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(check?["message"]?.stringValue?.contains(expected) == true, "\(name): \(String(describing: check)) vs \(expected)")
        }
    }
}
