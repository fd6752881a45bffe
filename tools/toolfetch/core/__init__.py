"""Standard library only: errors, digests, platforms, references, paths, sizes, file-system
helpers, the tree key. The hit path imports nothing else.
"""
