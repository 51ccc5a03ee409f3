"""Shops and their tokens, kept as digests: the database alone lets nobody in."""

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update

from db.models import Shop, ShopToken
from db.repositories.base import Repository, digest, is_id, table

UNNAMED_KEY = ""  # the name_key of the shop that API_TOKENS stand for


class ShopRepository(Repository):
    async def get(self, shop_id: int) -> Shop | None:
        return await self.session.get(Shop, shop_id) if is_id(shop_id) else None

    async def by_token(self, token: str) -> Shop | None:
        statement = (select(Shop).join(ShopToken, ShopToken.shop_id == Shop.id)).where(
            ShopToken.token_hash == digest(token)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def by_name_key(self, name_key: str) -> Shop | None:
        statement = select(Shop).where(Shop.name_key == name_key)
        return (await self.session.scalars(statement)).one_or_none()

    async def ensure(self, name: str, name_key: str, now: datetime) -> Shop:
        """The shop of this key, made if missing, whoever else makes it at the same time."""
        statement = self._insert(table(Shop)).values(
            sid=uuid.uuid4(), name=name, name_key=name_key, created_at=now, endpoint_disabled=False
        )
        await self.session.execute(statement.on_conflict_do_nothing(index_elements=["name_key"]))
        shop = await self.by_name_key(name_key)
        assert shop is not None
        return shop

    async def add_token(self, shop_id: int, token: str, hint: str, now: datetime) -> None:
        self.session.add(
            ShopToken(token_hash=digest(token), shop_id=shop_id, hint=hint, created_at=now)
        )
        await self.session.flush()

    async def revoke_tokens(self, shop_id: int) -> int:
        result = await self.session.execute(delete(ShopToken).where(ShopToken.shop_id == shop_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def named(self) -> list[tuple[Shop, list[str]]]:
        """Every named shop with the hints of its tokens (their first characters), by name."""
        statement = (
            select(Shop, ShopToken.hint)
            .outerjoin(ShopToken, ShopToken.shop_id == Shop.id)
            .where(Shop.name_key != UNNAMED_KEY)
            .order_by(Shop.name_key, ShopToken.created_at)
        )
        found: dict[int, tuple[Shop, list[str]]] = {}
        for shop, hint in (await self.session.execute(statement)).all():
            hints = found.setdefault(shop.id, (shop, []))[1]
            if hint is not None:
                hints.append(hint)
        return list(found.values())

    async def lock(self, shop_id: int) -> None:
        """Hold the shop's row until the transaction ends (SQLite holds the database)."""
        await self.session.execute(select(Shop.id).where(Shop.id == shop_id).with_for_update())

    async def take_endpoint_notice(self, shop_id: int) -> bool:
        """Clear the shop's "an endpoint was disabled" flag; whether it was set."""
        return await self._compare_and_set(
            update(Shop)
            .where(Shop.id == shop_id, Shop.endpoint_disabled.is_(True))
            .values(endpoint_disabled=False)
        )

    async def flag_endpoint_disabled(self, shop_id: int) -> None:
        await self.session.execute(
            update(Shop).where(Shop.id == shop_id).values(endpoint_disabled=True)
        )
