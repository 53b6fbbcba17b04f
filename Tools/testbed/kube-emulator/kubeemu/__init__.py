"""kh's Kubernetes API emulation for tests: an in-memory API server that kubectl can use.

Standard library only (Python 3.11+). See docs/testbed.md for what it does and does not do.
"""
