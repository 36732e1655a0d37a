"""The ceiling for the stack: a bare aiohttp handler that only verifies the signature and answers 202."""

from __future__ import annotations

import os
import sys

from aiohttp import web

from bot.server.signature import SHA1_HEADER, SIGNATURE_HEADER, SignatureVerdict, verify_signature


def main() -> None:
    secrets = (os.environ["GITHUB_WEBHOOK_SECRET"],)

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        verdict = verify_signature(
            body,
            request.headers.get(SIGNATURE_HEADER),
            secrets,
            signature_sha1=request.headers.get(SHA1_HEADER),
        )
        if verdict is not SignatureVerdict.VALID:
            return web.json_response({"error": verdict.value}, status=401)
        return web.json_response({"status": "accepted"}, status=202)

    async def announce(app: web.Application) -> None:
        print("listening", flush=True, file=sys.stderr)

    app = web.Application(client_max_size=25 * 1024 * 1024)
    app.router.add_post("/webhook", webhook)
    app.on_startup.append(announce)
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None, print=None)


if __name__ == "__main__":
    main()
