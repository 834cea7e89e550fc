"""Who a request is and what it may do: bearer tokens verified against the Directory (cached until they expire, a
deleted identity's dying with it), and Azure RBAC decided over the stored role assignments and definitions
(sandbox/rbac.py), each check going into the call log. A mixin of sandbox/server.py's `Sandbox`."""

from __future__ import annotations

import contextvars
import time
from typing import TYPE_CHECKING, Any

import jwt
from starlette.requests import Request

from sandbox import arm, conditions, rbac
from sandbox.identity import TokenError

if TYPE_CHECKING:
    from sandbox.hooks import Hooks
    from sandbox.identity import Directory
    from sandbox.state import State

# The RBAC checks the current request made (each request runs in its own task): the call log lists them.
CHECKS: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("checks", default=None)


class Access:
    """Authentication and authorization of `Sandbox` (whose state, directory and hooks these use)."""

    state: State
    directory: Directory
    hooks: Hooks
    _verified: dict[str, tuple[Any, float, set[str]]]

    def authenticate(self, request: Request, audiences: set[str]) -> Any:
        header = request.headers.get("authorization")
        challenge = {"WWW-Authenticate": f'Bearer authorization_uri="https://login.windows.net/{self.state.tenant_id}"'}
        if not header:
            raise arm.ArmError(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.", challenge
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise arm.ArmError(
                401,
                "AuthenticationFailedInvalidHeader",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
                challenge,
            )
        now = time.time()
        cached = self._verified.get(token)
        if (
            cached is not None
            and cached[1] > now
            and cached[2] is audiences
            and self.directory.by_object_id(cached[0].object_id) is cached[0]  # a deleted identity's token dies
        ):
            return cached[0]
        try:
            principal = self.directory.verify_token(token, now, audiences)
        except TokenError as exc:
            raise arm.ArmError(401, exc.code, exc.message, challenge) from exc
        if len(self._verified) > 10_000:
            self._verified.clear()
        expires = float(jwt.decode(token, options={"verify_signature": False}).get("exp", now))
        self._verified[token] = (principal, expires, audiences)
        return principal

    def authorize(
        self,
        principal: Any,
        action: str,
        scope: str,
        *,
        data_action: bool = False,
        attributes: conditions.Attributes | None = None,
    ) -> None:
        decision = self.decide(principal.object_id, action, scope, data_action=data_action, attributes=attributes)
        if decision != rbac.ALLOWED:
            # When a role assignment condition did not hold, ARM says so ("Troubleshoot Azure RBAC", Microsoft Learn,
            # MicrosoftDocs/azure-docs articles/role-based-access-control/troubleshooting.md, "Symptom - Unable to
            # assign a role"; delegate-role-assignments-portal.md links it for a delegate refused by a condition).
            why = " or an ABAC condition not fulfilled" if decision == rbac.CONDITION_NOT_MET else ""
            raise arm.ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{principal.upn or principal.object_id}' with object id '{principal.object_id}' does not "
                f"have authorization{why} to perform action '{action}' over scope '{scope}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials.",
            )

    def allowed(
        self,
        object_id: str,
        action: str,
        scope: str,
        *,
        data_action: bool = False,
        attributes: conditions.Attributes | None = None,
    ) -> bool:
        return self.decide(object_id, action, scope, data_action=data_action, attributes=attributes) == rbac.ALLOWED

    def decide(
        self,
        object_id: str,
        action: str,
        scope: str,
        *,
        data_action: bool = False,
        attributes: conditions.Attributes | None = None,
    ) -> str:
        """rbac.decide over the stored assignments and roles; the check goes into the call log. Assignments above
        the scope count, management groups included (`hooks.scopes_above`); a data action ignores the assignments
        still propagating (rbac.PROPAGATING), which ARM lists and honours at once."""
        assignments = list(self.state.of_type("Microsoft.Authorization/roleAssignments"))
        if data_action:
            assignments = self._propagated(assignments)
        decision = rbac.decide(
            object_id,
            action,
            scope,
            data_action=data_action,
            assignments=assignments,
            role_definitions=self.role_definitions(),
            attributes=attributes,
            above=self.hooks.scopes_above(scope),
        )
        checks = CHECKS.get()
        if checks is not None:
            ok = decision == rbac.ALLOWED
            checks.append(
                {"principal": object_id, "action": action, "dataAction": data_action, "scope": scope, "allowed": ok}
            )
        return decision

    def _propagated(self, assignments: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending = self.state.table(rbac.PROPAGATING)
        if not pending:
            return assignments
        now = self.state.clock.timestamp()
        for key, due in list(pending.items()):
            if due <= now:
                del pending[key]
        return [a for a in assignments if a["id"].lower() not in pending] if pending else assignments

    def role_definitions(self) -> dict[str, dict[str, Any]]:
        """Built-in and custom role definitions by lower-cased GUID."""
        defs = {k.lower(): v for k, v in rbac.BUILTIN_ROLES.items()}
        for body in self.state.of_type("Microsoft.Authorization/roleDefinitions"):
            defs[body["name"].lower()] = body
        return defs


__all__ = ["CHECKS", "Access"]
