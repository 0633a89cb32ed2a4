"""Subscriber CSV imports as durable background jobs: upload (streamed to the database), a job runner in the
worker process(es) with a streaming parse and batched upserts, and progress with a per-row error report."""
