"""A small OpenID Connect provider for tests and demos (authorization code flow with PKCE, RS256 ID tokens).

with running_oidc(client_id="broadcaster", client_secret="s3cret") as idp:
    monkeypatch.setenv("OIDC_ISSUER", idp.issuer) ...
    idp.user = TestUser(sub="alice-1", email="alice@example.org", name="Alice", groups=["comms-approvers"])

Endpoints: /.well-known/openid-configuration, /jwks (one RSA key), /authorize (signs in `user` at once, or
with `interactive=True` shows a one-button consent form), /token (checks the client, the redirect URI and the
PKCE verifier), /userinfo. Everything the relying party sent is kept in `requests` for assertions.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class TestUser:
    """The person the provider signs in."""

    sub: str = "test-user-1"
    email: str = "person@example.org"
    name: str = "Test Person"
    groups: list[str] = field(default_factory=list)
    #: the `email_verified` claim as sent (None: the claim is left out, as some providers do)
    email_verified: bool | str | None = True
    #: False: the groups are only in the UserInfo response, not in the ID token (as some providers do)
    groups_in_id_token: bool = True


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    claims: dict[str, Any]


class FakeOIDC:
    """The provider's state and ASGI app (`app`)."""

    def __init__(self, client_id: str, client_secret: str, issuer: str = "") -> None:
        #: merged into every UserInfo answer (a test's way to make the provider answer something else)
        self.userinfo_extra: dict[str, Any] = {}
        self.client_id = client_id
        self.client_secret = client_secret
        self.issuer = issuer
        self.user = TestUser()
        #: show a consent form with a "Continue" button instead of redirecting back at once
        self.interactive = False
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-oidc-1", "use": "sig", "alg": "RS256"})
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._codes: dict[str, _Grant] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize, methods=["GET", "POST"]),
                Route("/token", self.token, methods=["POST"]),
                Route("/userinfo", self.userinfo, methods=["GET", "POST"]),
            ]
        )

    def env(self) -> dict[str, str]:
        """The settings that make Broadcaster use this provider for SSO."""
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": self.client_id,
            "OIDC_CLIENT_SECRET": self.client_secret,
            "OIDC_PROVIDER_NAME": "Test IdP",
            "OIDC_ROLE_MAP": "comms-editors:editor,comms-approvers:approver,it-admins:admin",
        }

    # --- endpoints -----------------------------------------------------------------------------------

    async def discovery(self, _request: Request) -> Response:
        base = self.issuer
        return JSONResponse(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "userinfo_endpoint": f"{base}/userinfo",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "groups"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "code_challenge_methods_supported": ["S256"],
                "claims_supported": ["sub", "email", "email_verified", "name", "groups", "nonce"],
            }
        )

    async def jwks(self, _request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        if request.method == "POST":
            params = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(("authorize", params))
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or not redirect_uri.startswith(("http://", "https://")):
            return JSONResponse({"error": "invalid_request", "error_description": "unknown client"}, status_code=400)
        if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
            return self._back(redirect_uri, {"error": "invalid_request", "state": params.get("state", "")})
        if self.interactive and request.method == "GET":
            hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items())
            return HTMLResponse(
                "<!doctype html><html lang='en'><head><title>Test OpenID provider</title></head><body><main>"
                f"<h1>Test OpenID provider</h1><p>Sign in as {escape(self.user.email)}?</p>"
                f"<form method='post' action='/authorize'>{hidden}<button type='submit'>Continue</button></form>"
                "</main></body></html>"
            )
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Grant(
                client_id=self.client_id,
                redirect_uri=redirect_uri,
                nonce=params.get("nonce"),
                code_challenge=params.get("code_challenge"),
                code_challenge_method=params.get("code_challenge_method"),
                claims=self._claims(),
            )
        return self._back(redirect_uri, {"code": code, "state": params.get("state", "")})

    async def token(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        self.requests.append(("token", {k: v for k, v in form.items() if k not in ("client_secret", "code")}))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            from urllib.parse import unquote

            decoded = base64.b64decode(auth[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            client_id, secret = unquote(client_id), unquote(secret)
        if client_id != self.client_id or secret != self.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)  # a code works once
        if form.get("grant_type") != "authorization_code" or grant is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if grant.redirect_uri != form.get("redirect_uri"):
            return JSONResponse({"error": "invalid_grant", "error_description": "redirect_uri"}, status_code=400)
        if grant.code_challenge:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if grant.code_challenge_method != "S256" or digest != grant.code_challenge:
                return JSONResponse({"error": "invalid_grant", "error_description": "PKCE"}, status_code=400)
        now = int(time.time())
        id_claims = {
            **{k: v for k, v in grant.claims.items() if k != "groups" or self.user.groups_in_id_token},
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
        }
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, id_claims, self.key)
        access = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access] = grant.claims
        return JSONResponse(
            {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token},
            headers={"Cache-Control": "no-store"},
        )

    async def userinfo(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        claims = self._tokens.get(auth[7:]) if auth.lower().startswith("bearer ") else None
        if claims is None:
            return JSONResponse({"error": "invalid_token"}, status_code=401)
        return JSONResponse({**claims, **self.userinfo_extra})

    # --- helpers -------------------------------------------------------------------------------------

    def _claims(self) -> dict[str, Any]:
        u = self.user
        claims: dict[str, Any] = {"sub": u.sub, "email": u.email, "name": u.name, "groups": list(u.groups)}
        if u.email_verified is not None:
            claims["email_verified"] = u.email_verified
        return claims

    @staticmethod
    def _back(redirect_uri: str, params: dict[str, str]) -> Response:
        sep = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)


@contextmanager
def running_oidc(
    client_id: str = "broadcaster",
    client_secret: str = "fake-oidc-secret",  # noqa: S107 (the fake's, not a secret)
    host: str = "127.0.0.1",
) -> Iterator[FakeOIDC]:
    """Serve a `FakeOIDC` under uvicorn in a daemon thread on a free port (issuer http://host:port)."""
    import uvicorn

    from broadcaster.fakes.testing import free_port

    port = free_port(host)
    provider = FakeOIDC(client_id, client_secret, issuer=f"http://{host}:{port}")
    config = uvicorn.Config(provider.app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"fake-oidc-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the fake OpenID provider did not start on {host}:{port}")
        time.sleep(0.01)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(timeout=10)
