"""Protocol bytes, built and parsed by pure functions (no sockets here)."""
