"""The playground: the bot against an embedded Telegram Bot API emulator, with a page that
shows everyone's chat (`python -m bot demo`). The tests drive the bot through the same
emulator."""
