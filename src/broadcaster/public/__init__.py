"""Public read surfaces: banner, status page, feeds."""
