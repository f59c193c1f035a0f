-- Executed once by the postgres image on an empty data volume
-- (/docker-entrypoint-initdb.d). One database per service, as in the seed:
-- each service owns its schema and runs its own migrations.
CREATE DATABASE pedidos_db;
CREATE DATABASE pagamentos_db;
CREATE DATABASE estoque_db;
