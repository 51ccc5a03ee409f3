"""What the bot does for shops beyond the API's requests: their webhooks delivered, and
`python -m bot shops` to manage them."""
