"""Exposure: optional bearer API keys, the Host header check, and what the index manifest may show."""

from __future__ import annotations

import hmac
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from api.hygiene import ASGIApp, Receive, Scope, Send, send_error


class ApiKeyAuth:
    """Every path but ``exempt`` (liveness probes) needs ``Authorization: Bearer <one of keys>``."""

    def __init__(self, app: ASGIApp, keys: list[SecretStr], exempt: list[str]) -> None:
        self.app = app
        self.keys = [k.get_secret_value().encode() for k in keys]
        self.exempt = frozenset(exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt or self._authorised(scope):
            return await self.app(scope, receive, send)
        await send_error(send, 401, "unauthorized", "a valid API key is required: 'Authorization: Bearer <key>'",
                         {"WWW-Authenticate": "Bearer"})

    def _authorised(self, scope: Scope) -> bool:
        auth = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return False
        # Compare against every key, in constant time each, so timing tells nothing about which is close.
        return any([hmac.compare_digest(token.strip(), key) for key in self.keys])


def document_auth(app: FastAPI, exempt: list[str]) -> None:
    """Publish the bearer scheme, so Swagger UI and schema-driven clients send the key."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer"}
            for path, operations in schema.get("paths", {}).items():
                for operation in operations.values():
                    operation["security"] = [] if path in exempt else [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def without_paths(value: Any) -> Any:
    """The manifest as shown to clients: each absolute path reduced to its last part (no server layout)."""
    if isinstance(value, dict):
        return {k: without_paths(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_paths(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or PureWindowsPath(value).drive):
        return PureWindowsPath(value).name if PureWindowsPath(value).drive else PurePosixPath(value).name
    return value
