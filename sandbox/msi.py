"""The managed-identity token endpoint (`GET /msi/token`) as App Service serves it: api-version 2019-08-01 with
`X-IDENTITY-HEADER`, and the legacy 2017-09-01 with `secret`; faults from sandbox/faults.py. A mixin of
sandbox/server.py's `Sandbox`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from sandbox import faults
from sandbox.state import new_id

if TYPE_CHECKING:
    from sandbox.identity import Directory


class ManagedIdentity:
    """`Sandbox`'s token endpoint (its directory, faults and call log)."""

    directory: Directory
    faults: faults.Faults
    identity_header: str
    _log_call: Any

    async def token_endpoint(self, request: Request) -> Response:
        """App Service managed identity (2019-08-01, X-IDENTITY-HEADER) and its legacy form (2017-09-01, secret)."""
        start = time.perf_counter()
        request.state.principal, request.state.throttled = None, False
        correlation = new_id()
        fault = None
        if self.faults.active:  # only rules naming /msi/token reach it
            fault = self.faults.for_request(
                request.method, request.url.path, lambda: self._token_principal(request), token=True
            )
        if fault is not None and fault.kind == "reset" and await faults.reset_connection(self, request):
            self._log_call(request, start, None, "token", correlation, fault)
            return Response(status_code=500)  # never sent
        if fault is not None and fault.kind in ("500", "503", "429"):
            status = int(fault.kind)
            # App Service's token service answers {"statusCode", "message", "correlationId"}; wording not verified.
            message = fault.message or "An unexpected error occured while fetching the AAD Token."
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            response: Response = JSONResponse(
                {"statusCode": status, "message": message, "correlationId": correlation}, status, headers
            )
        else:
            response = self._token(request)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay_ms / 1000)
        self._log_call(request, start, response.status_code, "token", correlation, fault)
        return response

    def _token_principal(self, request: Request) -> Any:
        q = request.query_params
        selectors = {
            "client_id": q.get("client_id") or q.get("clientid"),
            "object_id": q.get("object_id") or q.get("principal_id"),
            "mi_res_id": q.get("mi_res_id") or q.get("msi_res_id"),
        }
        try:
            return self.directory.find(**{k: v for k, v in selectors.items() if v})
        except LookupError:
            return None

    def _token(self, request: Request) -> Response:
        q = request.query_params
        api_version = q.get("api-version", "")
        if api_version == "2017-09-01":
            supplied = request.headers.get("secret")
        else:
            supplied = request.headers.get("x-identity-header")
        if supplied != self.identity_header:
            return JSONResponse({"statusCode": 400, "message": "Missing or invalid identity header."}, 400)
        resource = q.get("resource")
        if not resource:
            return JSONResponse({"statusCode": 400, "message": "Required query parameter 'resource' is missing."}, 400)
        selectors = {
            "client_id": q.get("client_id") or q.get("clientid"),
            "object_id": q.get("object_id") or q.get("principal_id"),
            "mi_res_id": q.get("mi_res_id") or q.get("msi_res_id"),
        }
        try:
            principal = self.directory.find(**{k: v for k, v in selectors.items() if v})
        except LookupError as exc:
            return JSONResponse({"statusCode": 400, "message": str(exc)}, 400)
        request.state.principal = principal
        token, expires_on = self.directory.mint_token(principal, resource, time.time())
        body: dict[str, Any] = {
            "access_token": token,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal.client_id,
        }
        if api_version == "2017-09-01":
            body["expires_on"] = time.strftime("%m/%d/%Y %H:%M:%S +00:00", time.gmtime(expires_on))
        else:
            body["expires_on"] = str(int(expires_on))
        return JSONResponse(body)


__all__ = ["ManagedIdentity"]
