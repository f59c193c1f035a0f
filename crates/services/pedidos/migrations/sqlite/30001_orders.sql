-- pedidos-service: orders, their lines, and what the saga needs to finish them after a crash.
CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    customer            TEXT    NOT NULL,
    status              TEXT    NOT NULL CHECK (status IN ('pending', 'paid', 'payment_declined', 'rejected', 'cancelled')),
    total_cents         INTEGER NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    payment_method      TEXT    NOT NULL,
    payment_id          INTEGER,
    payment             TEXT,
    reservation_id      INTEGER,
    failure_status      INTEGER,
    failure             TEXT,
    idempotency_key     TEXT UNIQUE,
    request_fingerprint TEXT    NOT NULL,
    request_id          TEXT    NOT NULL,
    attempts            INTEGER NOT NULL DEFAULT 0,
    lease_until         INTEGER,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
);

CREATE INDEX orders_pending ON orders (id) WHERE status = 'pending';
CREATE INDEX orders_by_status ON orders (status, id);
CREATE INDEX orders_by_customer ON orders (customer, id);

CREATE TABLE order_lines (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id         INTEGER NOT NULL REFERENCES orders (id),
    item_id          INTEGER NOT NULL,
    item_name        TEXT,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents INTEGER CHECK (unit_price_cents >= 0)
);

CREATE INDEX order_lines_by_order ON order_lines (order_id);
