-- One database per subgraph instance: the hub, and each realm process its own.
CREATE DATABASE pek_hub;
CREATE DATABASE pek_realm_main;
CREATE DATABASE pek_realm_worker;
