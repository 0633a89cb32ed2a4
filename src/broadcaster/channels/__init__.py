"""Channel adapters: one contract (`base.Adapter`), loaded through the `broadcaster.channels` entry points."""
