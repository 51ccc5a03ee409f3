"""The HTTP API for shops: FastAPI routers that parse, call one service and render, as the
Telegram handlers do. The seed's paths and fields, on the same services as the bot."""
