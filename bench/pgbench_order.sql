-- The pgbench bound of the order benchmark: the database work of one order as four short
-- transactions, on the platform's own tables (all three services' migrations in one
-- database). Variables: -D lo=1 -D hi=1 for one hot item, -D lo=1 -D hi=100 spread.
--   1. conditional stock update (the reservation's hold)
--   2. the order with its line
--   3. the payment
--   4. the order's final status
\set item random(:lo, :hi)
BEGIN;
UPDATE items SET quantity = quantity - 1, reserved = reserved + 1, updated_at = now()
 WHERE id = :item AND quantity >= 1 RETURNING name, price_cents;
COMMIT;
BEGIN;
INSERT INTO orders (customer, status, total_cents, payment_method, request_fingerprint, request_id, attempts, lease_until, created_at, updated_at)
 VALUES ('pgbench', 'pending', 1000, 'credit_card', '["pgbench"]', 'pgbench', 0, 0, now(), now()) RETURNING id AS oid \gset
INSERT INTO order_lines (order_id, item_id, item_name, quantity, unit_price_cents) VALUES (:oid, :item, 'pgbench item', 1, 1000);
COMMIT;
INSERT INTO payments (order_id, amount_cents, method, status, created_at, updated_at)
 VALUES (:oid, 1000, 'credit_card', 'approved', now(), now());
UPDATE orders SET status = 'paid', payment_id = :oid, total_cents = 1000, lease_until = NULL, updated_at = now() WHERE id = :oid;
