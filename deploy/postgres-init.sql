-- One database per subgraph instance: the hub, and each realm its own.
CREATE DATABASE pek_hub;
CREATE DATABASE pek_realm_main;
