"""The sign-in's refusals and answers (sandbox/oidc.py).

Refusals use Microsoft's error shape: redirectable authorize errors go to `redirect_uri?error=&error_description=
&state=`; errors before the client and redirect URI are trusted are an HTML error page (400) naming the AADSTS code;
token errors are JSON `{error, error_description, error_codes, timestamp, trace_id, correlation_id, error_uri}`. The
AADSTS codes and texts are taken from Microsoft's documentation and from real answers quoted in public reports; each
`_ERRORS` entry says which are not verified.
"""

from __future__ import annotations

import base64
import html
import time
import uuid
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

# code -> (error, message, HTTP status on the token endpoint). {0}, {1}: filled in per use.
_ERRORS: dict[str, tuple[str, str, int]] = {
    # Verified: Microsoft Learn "MSAL authentication flows" quotes it for a code redeemed twice.
    "54005": (
        "invalid_grant",
        "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing "
        "refresh token.",
        400,
    ),
    # Verified (text of real answers, e.g. the Azure CLI error quoted in azure-sdk-for-net's tests).
    "70008": (
        "invalid_grant",
        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive "
        "authorization request for this user and resource.",
        400,
    ),
    # Verified from real answers quoted in public reports (2022).
    "501481": (
        "invalid_grant",
        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        400,
    ),
    # Code verified (public reports of redirect mismatches at redemption); text and error value unverified.
    "500112": (
        "invalid_grant",
        "The reply address '{0}' does not match the reply address '{1}' provided when requesting Authorization code.",
        400,
    ),
    # Verified (real answers quoted in public reports).
    "700016": (
        "unauthorized_client",
        "Application with identifier '{0}' was not found in the directory '{1}'. This can happen if the application "
        "has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may "
        "have sent your authentication request to the wrong tenant.",
        400,
    ),
    # Code and start verified; the tail (aka.ms link) from memory of the sign-in page: unverified.
    "50011": (
        "invalid_request",
        "The redirect URI '{0}' specified in the request does not match the redirect URIs configured for the "
        "application '{1}'. Make sure the redirect URI sent in the request matches one added to your application in "
        "the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
        400,
    ),
    # Start verified ("Invalid client secret provided"); the rest and the 401 status unverified.
    "7000215": (
        "invalid_client",
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not "
        "the client secret ID, for a secret added to app '{0}'.",
        401,
    ),
    # Unverified wording.
    "7000218": (
        "invalid_client",
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        401,
    ),
    # Unverified wording.
    "700025": (
        "invalid_client",
        "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        401,
    ),
    # Code known; wording unverified.
    "900144": ("invalid_request", "The request body must contain the following parameter: '{0}'.", 400),
    # Unverified: the code Microsoft gives a code it cannot parse or that belongs to another app.
    "70000": ("invalid_grant", "The provided value for the 'code' parameter is not valid.", 400),
    # Unverified wording (the code appears in public reports).
    "70003": ("unsupported_grant_type", "The app requested an unsupported grant type '{0}'.", 400),
    # Unverified wording.
    "70005": ("unsupported_response_type", "response_type '{0}' is not enabled for the application.", 400),
    # Unverified wording.
    "501491": ("invalid_request", "Invalid size of Code_Challenge parameter.", 400),
    # Unverified wording.
    "501478": ("invalid_request", "Invalid Code_Challenge_Method: '{0}'.", 400),
    # Verified wording (Microsoft Learn, prompt=none without a signed-in user).
    "50058": ("login_required", "A silent sign-in request was sent but no user is signed in.", 400),
    # Wording close to Microsoft's sign-in page; unverified.
    "90002": (
        "invalid_tenant",
        "Tenant '{0}' not found. Check to make sure you have the correct tenant ID and are signing into the correct "
        "cloud.",
        400,
    ),
}


class OidcError(Exception):
    def __init__(self, code: str, *args: str) -> None:
        error, message, status = _ERRORS[code]
        self.code, self.error, self.status = code, error, status
        self.message = f"AADSTS{code}: {message.format(*args)}"
        super().__init__(self.message)

    def description(self, trace: str, correlation: str, timestamp: str) -> str:
        return f"{self.message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {timestamp}"


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (without python-multipart, which the sandbox does not need)."""
    raw = await request.body()
    try:
        return dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        return {}


def basic_auth(header: str | None) -> tuple[str | None, str | None]:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except ValueError:
        return None, None
    return user, password


def deliver(redirect_uri: str, mode: str, answer: dict[str, str | None]) -> Response:
    """The answer to the app, by its response mode (None values left out)."""
    values = {k: v for k, v in answer.items() if v is not None}
    if mode == "form_post":
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k, quote=True)}" value="{html.escape(v, quote=True)}">'
            for k, v in values.items()
        )
        page = (
            '<!doctype html><html><head><title>Working...</title></head><body onload="document.forms[0].submit()">'
            f'<form method="POST" name="hiddenform" action="{html.escape(redirect_uri, quote=True)}">{inputs}'
            '<noscript><p>Script is disabled. Click Submit to continue.</p><input type="submit" value="Submit">'
            "</noscript></form></body></html>"
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})
    sep = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return RedirectResponse(f"{redirect_uri}{sep}{urlencode(values)}", status_code=302)


def error_page(exc: OidcError) -> Response:
    """Microsoft shows these on its sign-in page ("Sorry, but we're having trouble signing you in.")."""
    page = (
        "<!doctype html><html><head><meta charset=utf-8><title>Sign in to your account</title></head><body>"
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f'<p id="error">{html.escape(exc.message)}</p></body></html>'
    )
    return HTMLResponse(page, exc.status, headers={"x-ms-ests-error": exc.error, "Cache-Control": "no-store"})


def token_error(exc: OidcError) -> Response:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    body = {
        "error": exc.error,
        "error_description": exc.description(trace, correlation, timestamp),
        "error_codes": [int(exc.code)],
        "timestamp": timestamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={exc.code}",
    }
    return JSONResponse(body, exc.status, headers={"Cache-Control": "no-store, no-cache"})


__all__ = ["OidcError", "basic_auth", "deliver", "error_page", "read_form", "token_error"]
