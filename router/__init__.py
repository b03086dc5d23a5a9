"""The router: composes the supergraph, plans and executes operations across subgraphs."""
