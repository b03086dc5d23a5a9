"""The realm subgraph: groups, memberships, posts, semesters and evaluations of one realm.

Deployed once per realm; every realm-owned row carries ``realm_id`` and the data layer scopes
every query to the realm of the request (``pek.realm.scoping``)."""
