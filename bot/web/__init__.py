"""The web server, in the bot's event loop: the app (the shops' API, the Telegram webhook,
health, metrics) and uvicorn serving it."""
