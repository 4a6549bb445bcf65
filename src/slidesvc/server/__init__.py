"""The per-deck web service (aiohttp + standard library only; see docs/SERVER.md)."""
