"""The content-addressed cache: placement and locks, safe unpacking, tree digests, gc and verify.
"""
