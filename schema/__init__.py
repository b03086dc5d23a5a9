"""The shared contract: exported SDL of each subgraph and the composed supergraph
(``*.graphql`` files beside this one, kept current by ``pek schema export`` and checked by
``tests/test_schema_check.py``), and the Python pieces both subgraphs share: global IDs,
Relay pagination types and scalars."""
