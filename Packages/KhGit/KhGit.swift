// KhGit: see issue 3.
import CLibGit2
import KhCore
