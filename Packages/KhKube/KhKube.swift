// KhKube: see issue 3.
import KhCore
