"""All tables; importing this module registers every model on `Base.metadata`."""

from broadcaster.models import (
    areas,
    audience,
    changes,
    delivery,
    imports,
    integrations,
    maintenance,
    public,
    responses,
    routing,
    services,
    users,
)
from broadcaster.models.base import Base, utcnow
from broadcaster.models.core import ApiKey, AuditEntry, Category, IdempotencyRecord, Incident, Update
from broadcaster.models.users import ConsoleSession, RoleGrant, User

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Category",
    "ConsoleSession",
    "IdempotencyRecord",
    "Incident",
    "RoleGrant",
    "Update",
    "User",
    "areas",
    "audience",
    "changes",
    "delivery",
    "imports",
    "integrations",
    "maintenance",
    "public",
    "responses",
    "routing",
    "services",
    "users",
    "utcnow",
]
