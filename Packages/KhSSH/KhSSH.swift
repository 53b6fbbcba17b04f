// KhSSH: see issue 3.
import CLibSSH2
import KhCore
