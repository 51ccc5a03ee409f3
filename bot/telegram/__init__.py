"""Talking to Telegram: updates in (polling or the webhook, then the inbox worker), notices out
(the outbox sender), within Telegram's flood limits."""
