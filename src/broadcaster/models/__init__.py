"""All tables; importing this module registers every model on `Base.metadata`."""

from broadcaster.models import delivery, imports, public
from broadcaster.models.base import Base, utcnow
from broadcaster.models.core import ApiKey, AuditEntry, Category, IdempotencyRecord, Incident, Update

__all__ = [
    "ApiKey",
    "AuditEntry",
    "Base",
    "Category",
    "IdempotencyRecord",
    "Incident",
    "Update",
    "delivery",
    "imports",
    "public",
    "utcnow",
]
