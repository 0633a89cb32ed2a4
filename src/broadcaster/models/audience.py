"""Who a subscriber wants to hear about: the categories they chose and their tags, one row per pair.

With `subscriber_services` (models/services.py) these replace the `,a,b,` strings the audience filter
used to scan with `LIKE`: an update's audience is an index lookup on `(category_id, subscriber_id)`,
`(service_id, subscriber_id)` or `(tag, subscriber_id)` (delivery/audience.py).
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.models.base import Base, BigId


class SubscriberCategory(Base):
    """A subscriber subscribed to a category (a subscriber with none has `all_categories`)."""

    __tablename__ = "subscriber_categories"

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_subscriber_categories_category_id", "category_id", "subscriber_id"),)


class SubscriberTag(Base):
    """A free-form tag on a subscriber (e.g. a district); an update's `audience.tags` selects by it."""

    __tablename__ = "subscriber_tags"

    subscriber_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_subscriber_tags_tag", "tag", "subscriber_id"),)
