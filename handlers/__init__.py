"""aiogram routers: parse a command or a button, call one service, render the reply."""

from aiogram import Router

from handlers import admin, common, courier, dispatcher, errors, fallback, location, roster


def build_router() -> Router:
    """All routers in the order they must see updates; built fresh for every Dispatcher."""
    root = Router(name="root")
    root.include_routers(
        errors.build_router(),
        common.build_router(),
        courier.build_router(),
        dispatcher.build_router(),
        location.build_router(),
        roster.build_router(),
        admin.build_router(),
        fallback.build_router(),
    )
    return root
