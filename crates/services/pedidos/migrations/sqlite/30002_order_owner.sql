-- pedidos-service: whose order it is (the customer identity the gateway signed).
-- Orders from before this migration have none: with identity on, only admins see them.
ALTER TABLE orders ADD COLUMN owner TEXT;

CREATE INDEX orders_by_owner ON orders (owner, id);
