from datetime import datetime

from sqlalchemy import update

from db.models import Invite
from db.repositories.base import Repository


class InviteRepository(Repository):
    async def add(self, token: str, created_by: int, now: datetime, expires_at: datetime) -> None:
        self.session.add(
            Invite(token=token, created_by=created_by, created_at=now, expires_at=expires_at)
        )
        await self.session.flush()

    async def get(self, token: str) -> Invite | None:
        return await self.session.get(Invite, token, populate_existing=True)

    async def use(self, token: str, courier_id: int, now: datetime) -> bool:
        """Spend an unused, unexpired invite; False if it is gone."""
        return await self._compare_and_set(
            update(Invite)
            .where(Invite.token == token, Invite.used_by.is_(None), Invite.expires_at > now)
            .values(used_by=courier_id)
        )
