"""People who sign in to the console, and their server-side sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId, UTCDateTime, utcnow


class User(Base):
    """A person: password (argon2 hash) and/or an OpenID Connect identity, roles editor/approver/admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: normalised: trimmed, lower case
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    #: argon2id hash (PHC string); None: the person signs in only through SSO
    password_hash: Mapped[str | None] = mapped_column(String(255), nullable=True)
    #: any of editor, approver, admin
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    oidc_issuer: Mapped[str | None] = mapped_column(String(500), nullable=True)
    oidc_subject: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: the newest role grant (`RoleGrant.id`) this person, as an admin, acknowledged in the console
    role_grants_seen_id: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (UniqueConstraint("oidc_issuer", "oidc_subject"),)


class RoleGrant(Base):
    """A person given the approver or admin role, a new key with the publish or admin scope, or the password of
    a person who can approve set by someone else (users.grants): announced to every admin; the holder may
    approve only APPROVER_GRANT_DELAY after `at` when `delays_approval`. Accounts and keys that existed before
    this table have no row: granted long ago."""

    __tablename__ = "role_grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: when (the service clock, `broadcaster.clock`)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who granted: `user:<id>`, `key:<name>`, `cli:<login>`, `sso:<issuer>`
    granted_by: Mapped[str] = mapped_column(String(120))
    #: through which door: api | console | cli | sso
    via: Mapped[str] = mapped_column(String(16))
    #: roles (a person's new roles) | key (a new key's scopes) | password (set by someone else)
    kind: Mapped[str] = mapped_column(String(16))
    #: user | api_key
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int] = mapped_column(Integer)
    #: the person's email or the key's name, as it was then
    target_label: Mapped[str] = mapped_column(String(254))
    #: the roles (or key scopes) granted: approver, admin, publish
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the grant gave a power to approve while another admin existed: the approve delay runs from `at`
    delays_approval: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_role_grants_target", "target_type", "target_id", "id"),)


class ConsoleSession(Base):
    """A signed-in console session: the cookie carries a random id (signed); only its SHA-256 is stored."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    id_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotificationPref(Base):
    """How a person wants to hear of approval requests besides the console (users/notices.py): e-mail to their
    account's address, SMS to a number, a POST to a webhook URL. No row: the console only."""

    __tablename__ = "notification_prefs"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email: Mapped[bool] = mapped_column(Boolean, default=False)
    #: E.164 number, or None
    sms: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: http(s) URL, or None
    webhook: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApprovalNotice(Base):
    """One person told of one approval request (`request_id`: the `update.request_approval` audit entry) in one
    round (`request`, then `escalation`): written in the transaction that queues the messages, unique, so nobody
    is told twice, whatever runs or restarts."""

    __tablename__ = "approval_notices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(BigId)
    update_id: Mapped[int] = mapped_column(BigId, index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: request | escalation
    round: Mapped[str] = mapped_column(String(16))
    #: the channels the notice was queued on (email, sms, webhook)
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("request_id", "round", "user_id"),)


class ApprovalEscalation(Base):
    """An approval request of a critical incident escalated, once, after APPROVAL_ESCALATE_MINUTES."""

    __tablename__ = "approval_escalations"

    #: the `update.request_approval` audit entry
    request_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    update_id: Mapped[int] = mapped_column(BigId, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: who it went to: names (or e-mails) of the people asked
    to: Mapped[list[str]] = mapped_column(JSON, default=list)
