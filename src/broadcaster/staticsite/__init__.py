"""Static publishing: the public pages (banner, status page, feeds) written as files to a directory or S3-compatible
storage on every change, so they stay up while the service is down."""
