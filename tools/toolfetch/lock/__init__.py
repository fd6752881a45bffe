"""The two files: tools.yaml and tools.lock.json, their schemas, and resolving references into a
lockfile.
"""
