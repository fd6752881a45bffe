"""OCI data: manifests and indexes, layer formats and names, image layouts on disk.
"""
