// kh: the host executable. The plugins it carries are listed in InstalledPlugins.swift.
import KhHost

KhMain.main(plugins: installedPlugins)
