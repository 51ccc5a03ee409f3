"""Invites and couriers' links, kept as digests of their tokens: the database alone opens
nobody's account."""

from datetime import datetime

from sqlalchemy import or_, update

from db.models import Invite
from db.repositories.base import Repository, digest


class InviteRepository(Repository):
    async def add(
        self,
        token: str,
        created_by: int | None,
        now: datetime,
        expires_at: datetime,
        courier_id: int | None = None,
    ) -> None:
        """An invite to register; with `courier_id`, a link to that courier."""
        self.session.add(
            Invite(
                token_hash=digest(token),
                created_by=created_by,
                created_at=now,
                expires_at=expires_at,
                courier_id=courier_id,
            )
        )
        await self.session.flush()

    async def get(self, token: str) -> Invite | None:
        return await self.session.get(Invite, digest(token), populate_existing=True)

    async def revoke_links_of(self, courier_id: int, now: datetime) -> None:
        """The unused links made for this courier expire now."""
        await self.session.execute(
            update(Invite)
            .where(
                Invite.courier_id == courier_id, Invite.used_by.is_(None), Invite.expires_at > now
            )
            .values(expires_at=now)
        )

    async def use(self, token: str, courier_id: int, now: datetime) -> bool:
        """Spend an unused, unexpired invite, for registering or for linking this courier;
        False if it is gone or was made for another courier."""
        made_for = or_(Invite.courier_id.is_(None), Invite.courier_id == courier_id)
        return await self._compare_and_set(
            update(Invite)
            .where(
                Invite.token_hash == digest(token),
                Invite.used_by.is_(None),
                Invite.expires_at > now,
                made_for,
            )
            .values(used_by=courier_id)
        )
