// The one file that lists the plugins built into kh. Add a plugin: add its target
// under Plugins/, depend on it from the `kh` target in Package.swift, import it
// here and append its type. KhHostTests fail when a folder under Plugins/ is not
// listed here or two plugins share an id.
import AgentReliability
import EKSKarpenterInstall
import GitOpsMaster
import HetznerMatrix
import KhPluginAPI

var installedPlugins: [any KhPlugin.Type] {
    [
        HetznerMatrixPlugin.self,
        GitOpsMasterPlugin.self,
        EKSKarpenterInstallPlugin.self,
        AgentReliabilityPlugin.self,
    ]
}
