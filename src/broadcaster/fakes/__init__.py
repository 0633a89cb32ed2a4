"""A local fake provider server speaking the Twilio, SendGrid, X and Mastodon wire formats."""
