"""pek-federation: one GraphQL endpoint over a hub subgraph and many realm subgraphs.

The top-level folders of the repository are the subpackages of this package:
``hub/`` is ``pek.hub``, ``realm/`` is ``pek.realm``, ``router/`` is ``pek.router`` and
``schema/`` is ``pek.schema`` (links in ``pek/`` tie them into one import namespace, so no
importable name collides with a PyPI package such as ``schema`` or ``router``).
"""

__version__ = "0.1.0"
