"""The web process: the aiohttp application that takes webhooks in and answers health checks."""
