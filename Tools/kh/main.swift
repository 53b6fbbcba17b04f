// kh: the host executable. The plugins it carries are listed in InstalledPlugins.swift.
import KhHost

await KhMain.run(plugins: installedPlugins)
