"""Text measured the way the channels count it: SMS encodings and segments (GSM-7 / UCS-2), post lengths (X's
weighted characters, Mastodon, Bluesky graphemes), and text made speakable for voice calls. Used by the adapters,
rendering and the fake providers alike."""
