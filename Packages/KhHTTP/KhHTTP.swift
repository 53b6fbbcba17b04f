// KhHTTP: see issue 3.
import CCurl
import KhCore
