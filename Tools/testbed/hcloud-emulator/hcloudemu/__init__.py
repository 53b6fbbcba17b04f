"""kh's Hetzner Cloud API emulator (see ../README.md)."""
