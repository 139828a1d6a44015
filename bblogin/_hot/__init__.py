"""The hot path: what kubectl and git run on every call, standard library only.

Placeholder docstring, rewritten below.
"""
