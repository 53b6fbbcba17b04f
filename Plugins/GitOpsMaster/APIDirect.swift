import Foundation
import KhCore
import KhKube
import KhProcess

/// The fastest way to D1: kh's own REST client (``KubeAPI``) straight to the API server,
/// built from the kubeconfig and context kubectl would use. No kubectl process at all.
///
/// Only when kubectl would run on this machine (the kubeconfig is this machine's) and
/// `api_direct` is on; a kubeconfig kh cannot use itself (an `exec` or `auth-provider`
/// user, a `proxy-url`, impersonation, no kubeconfig file) leaves D1 to `kubectl proxy`,
/// then to one kubectl call per group.
enum APIDirect {
    /// Why kubectl does not run on this machine, or nil when it does.
    static func remote(_ cluster: Cluster) -> String? {
        if let ssh = cluster.config.ssh { return "kubectl runs on \(ssh.host) over SSH (gitops.ssh)" }
        if let prefix = cluster.environment.sshCommand, !prefix.isEmpty { return "kubectl runs through the ssh_command prefix" }
        if !(cluster.kubectl.runner is LocalRunner) { return "kubectl does not run on this machine" }
        return nil
    }

    /// Why the direct client is not tried, or nil when it is.
    static func unusable(_ cluster: Cluster) -> String? {
        guard cluster.config.apiDirect else { return "api_direct: false" }
        // A wrapper in kubectl's place may change credentials, context or server on the way:
        // only kubectl itself is known to read the kubeconfig the way KubeConfigLoader does.
        let executable = cluster.kubectl.executable
        if (executable as NSString).lastPathComponent != "kubectl" {
            return "kubectl is \(executable) (gitops.kubectl), a wrapper whose use of the kubeconfig kh cannot know"
        }
        return remote(cluster)
    }

    /// The kubeconfig kubectl would use, resolved for the direct client (throws
    /// ``KubeConfigError`` saying why it cannot be used).
    static func connection(_ cluster: Cluster) throws -> KubeConnection {
        let environment = (cluster.kubectl.runner as? LocalRunner)?.environment ?? ProcessInfo.processInfo.environment
        return try KubeConfigLoader.resolve(
            kubeconfig: cluster.kubectl.kubeconfig, context: cluster.kubectl.context, environment: environment, redactor: cluster.kubectl.redactor)
    }
}
