"""Talking to registries (distribution-spec over requests): session, retries, auth and tokens, the
client, uploads, and the ordered sources (mirrors, layouts, upstream).
"""
